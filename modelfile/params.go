package modelfile

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Type is the type of a PARAMETER's value.
type Type int

// Parameter value types.
const (
	Int     Type = iota // a base-10 integer, stored as int64
	Float               // a decimal number, stored as float64
	Bool                // true/false (also 1/0, t/f), stored as bool
	Strings             // a string; the parameter may repeat and values collect in a []string
)

// String names the type as error messages show it.
func (t Type) String() string {
	switch t {
	case Int:
		return "integer"
	case Float:
		return "number"
	case Bool:
		return "boolean (true or false)"
	case Strings:
		return "string"
	}
	return "unknown"
}

// Spec describes one parameter the Modelfile accepts.
type Spec struct {
	Name string // lower-case option name, as in Ollama's API options
	Type Type
	// Runner is true for options that take effect when the model is loaded
	// (context size, batch, GPU layers, threads, memory mapping) rather than
	// per request.
	Runner bool
	// Deprecated is true for options Ollama still parses but no longer
	// applies; olm keeps them in the params layer unchanged.
	Deprecated bool
	Help       string
}

// specs is every option of Ollama's API Options and Runner structs.
var specs = []Spec{
	// Sampling and prediction.
	{Name: "num_keep", Type: Int, Help: "tokens of the prompt kept when the context is shifted"},
	{Name: "seed", Type: Int, Help: "random seed; the same seed and prompt give the same text"},
	{Name: "num_predict", Type: Int, Help: "maximum tokens to generate (-1: unlimited)"},
	{Name: "top_k", Type: Int, Help: "sample from the k most likely tokens"},
	{Name: "top_p", Type: Float, Help: "nucleus sampling probability mass"},
	{Name: "min_p", Type: Float, Help: "minimum probability relative to the most likely token"},
	{Name: "typical_p", Type: Float, Help: "locally typical sampling"},
	{Name: "tfs_z", Type: Float, Deprecated: true, Help: "tail-free sampling"},
	{Name: "repeat_last_n", Type: Int, Help: "tokens looked back for repetition penalties (0: off, -1: num_ctx)"},
	{Name: "temperature", Type: Float, Help: "sampling temperature"},
	{Name: "repeat_penalty", Type: Float, Help: "penalty for repeated tokens"},
	{Name: "presence_penalty", Type: Float, Help: "penalty for tokens already present"},
	{Name: "frequency_penalty", Type: Float, Help: "penalty proportional to token frequency"},
	{Name: "mirostat", Type: Int, Deprecated: true, Help: "Mirostat sampling (0 off, 1, 2)"},
	{Name: "mirostat_tau", Type: Float, Deprecated: true, Help: "Mirostat target entropy"},
	{Name: "mirostat_eta", Type: Float, Deprecated: true, Help: "Mirostat learning rate"},
	{Name: "penalize_newline", Type: Bool, Deprecated: true, Help: "apply the repetition penalty to newlines"},
	{Name: "stop", Type: Strings, Help: "stop sequence; repeat the parameter for several"},
	// Load-time (runner) options.
	{Name: "numa", Type: Bool, Runner: true, Help: "NUMA-aware thread placement"},
	{Name: "num_ctx", Type: Int, Runner: true, Help: "context window in tokens"},
	{Name: "num_batch", Type: Int, Runner: true, Help: "prompt processing batch size"},
	{Name: "num_gpu", Type: Int, Runner: true, Help: "layers offloaded to the GPU"},
	{Name: "main_gpu", Type: Int, Runner: true, Help: "GPU for small tensors and scratch"},
	{Name: "low_vram", Type: Bool, Runner: true, Deprecated: true, Help: "reduce VRAM use"},
	{Name: "f16_kv", Type: Bool, Runner: true, Deprecated: true, Help: "16-bit KV cache"},
	{Name: "logits_all", Type: Bool, Runner: true, Deprecated: true, Help: "return logits for all tokens"},
	{Name: "vocab_only", Type: Bool, Runner: true, Deprecated: true, Help: "load only the vocabulary"},
	{Name: "use_mmap", Type: Bool, Runner: true, Help: "memory-map the weights"},
	{Name: "use_mlock", Type: Bool, Runner: true, Deprecated: true, Help: "lock the weights in RAM"},
	{Name: "num_thread", Type: Int, Runner: true, Help: "CPU threads (0: automatic)"},
}

var specByName = func() map[string]Spec {
	m := make(map[string]Spec, len(specs))
	for _, s := range specs {
		m[s.Name] = s
	}
	return m
}()

// Specs returns every parameter the Modelfile accepts, sorted by name.
// The slice is a copy.
func Specs() []Spec {
	out := slices.Clone(specs)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupParameter returns the spec of the named parameter (case-insensitive).
func LookupParameter(name string) (Spec, bool) {
	s, ok := specByName[strings.ToLower(name)]
	return s, ok
}

// ParameterNames returns the names of every parameter, sorted.
func ParameterNames() []string {
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names
}

// ParseValue parses the text of a PARAMETER value into its typed form:
// int64, float64, bool, or string for Strings parameters. The error wraps
// ErrUnknownParameter or ErrInvalidParameterValue.
func ParseValue(name, text string) (any, error) {
	spec, ok := LookupParameter(name)
	if !ok {
		return nil, fmt.Errorf("%w %q; valid parameters: %s", ErrUnknownParameter, name, strings.Join(ParameterNames(), ", "))
	}
	return spec.parse(text)
}

func (s Spec) parse(text string) (any, error) {
	bad := func() error {
		return fmt.Errorf("%w: %s must be a %s, got %q", ErrInvalidParameterValue, s.Name, s.Type, text)
	}
	switch s.Type {
	case Int:
		v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return nil, bad()
		}
		return v, nil
	case Float:
		v, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, bad()
		}
		return v, nil
	case Bool:
		v, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			return nil, bad()
		}
		return v, nil
	default:
		return text, nil
	}
}

// Parameters are typed parameter values keyed by name: int64, float64, bool
// or []string (for stop). They marshal to the JSON object of Ollama's params
// layer.
type Parameters map[string]any

// Merge returns base with every key of over replacing base's value; neither
// input is modified. A nil result is never returned.
func Merge(base, over Parameters) Parameters {
	out := make(Parameters, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// Normalize converts values decoded from JSON (float64 numbers, []any
// arrays) to the parameters' types, and rejects unknown names and
// mistyped values. The input is not modified.
func Normalize(in map[string]any) (Parameters, error) {
	out := make(Parameters, len(in))
	for name, v := range in {
		spec, ok := LookupParameter(name)
		if !ok {
			return nil, fmt.Errorf("%w %q; valid parameters: %s", ErrUnknownParameter, name, strings.Join(ParameterNames(), ", "))
		}
		nv, err := spec.normalize(v)
		if err != nil {
			return nil, err
		}
		out[spec.Name] = nv
	}
	return out, nil
}

func (s Spec) normalize(v any) (any, error) {
	bad := fmt.Errorf("%w: %s must be a %s, got %v (%T)", ErrInvalidParameterValue, s.Name, s.Type, v, v)
	switch s.Type {
	case Int:
		switch n := v.(type) {
		case int:
			return int64(n), nil
		case int64:
			return n, nil
		case float64:
			if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
				return nil, bad
			}
			return int64(n), nil
		case string:
			return s.parse(n)
		}
	case Float:
		switch n := v.(type) {
		case float64:
			if math.IsNaN(n) || math.IsInf(n, 0) {
				return nil, bad
			}
			return n, nil
		case float32:
			return float64(n), nil
		case int:
			return float64(n), nil
		case int64:
			return float64(n), nil
		case string:
			return s.parse(n)
		}
	case Bool:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			return s.parse(b)
		}
	case Strings:
		switch l := v.(type) {
		case string:
			return []string{l}, nil
		case []string:
			return slices.Clone(l), nil
		case []any:
			out := make([]string, 0, len(l))
			for _, e := range l {
				str, ok := e.(string)
				if !ok {
					return nil, bad
				}
				out = append(out, str)
			}
			return out, nil
		}
	}
	return nil, bad
}

// FormatValue returns the Modelfile text of a typed parameter value (one
// entry per stop string for Strings parameters).
func FormatValue(v any) []string {
	switch x := v.(type) {
	case int64:
		return []string{strconv.FormatInt(x, 10)}
	case int:
		return []string{strconv.Itoa(x)}
	case float64:
		return []string{strconv.FormatFloat(x, 'g', -1, 64)}
	case float32:
		return []string{strconv.FormatFloat(float64(x), 'g', -1, 32)}
	case bool:
		return []string{strconv.FormatBool(x)}
	case string:
		return []string{x}
	case []string:
		return slices.Clone(x)
	}
	return []string{fmt.Sprint(v)}
}

// Commands returns p as PARAMETER commands, sorted by name (stop strings
// keep their order), so the output is deterministic.
func (p Parameters) Commands() []Command {
	names := make([]string, 0, len(p))
	for k := range p {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []Command
	for _, k := range names {
		for _, s := range FormatValue(p[k]) {
			out = append(out, Command{Instruction: Parameter, Name: k, Value: s})
		}
	}
	return out
}
