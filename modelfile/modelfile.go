package modelfile

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Instruction is a Modelfile instruction keyword, in upper case.
type Instruction string

// The instructions of the Modelfile language.
const (
	From      Instruction = "FROM"
	Parameter Instruction = "PARAMETER"
	Template  Instruction = "TEMPLATE"
	System    Instruction = "SYSTEM"
	Adapter   Instruction = "ADAPTER"
	License   Instruction = "LICENSE"
	Message   Instruction = "MESSAGE"
	Requires  Instruction = "REQUIRES"
)

// Instructions lists every instruction in the order Format documents them.
var Instructions = []Instruction{From, Parameter, Template, System, Adapter, License, Message, Requires}

// Roles are the MESSAGE roles.
var Roles = []string{"system", "user", "assistant"}

// Command is one instruction of a Modelfile.
type Command struct {
	Instruction Instruction
	// Name is the parameter name (lower case) for PARAMETER and the role for
	// MESSAGE; empty otherwise.
	Name string
	// Value is the instruction's argument with quotes removed: a model
	// reference or path for FROM and ADAPTER, text for the others.
	Value string
	// Pos is where the instruction starts; zero for commands built in code.
	Pos Position
}

// Modelfile is a parsed Modelfile: its commands in order. The zero value is
// an empty Modelfile (which Validate rejects for lack of FROM).
type Modelfile struct {
	Commands []Command
}

// Equal reports whether m and o hold the same commands, ignoring positions.
func (m *Modelfile) Equal(o *Modelfile) bool {
	return slices.EqualFunc(m.Commands, o.Commands, func(a, b Command) bool {
		return a.Instruction == b.Instruction && a.Name == b.Name && a.Value == b.Value
	})
}

// Froms returns the values of the FROM instructions in order: the first is
// the model, later ones add projectors or more weights.
func (m *Modelfile) Froms() []string { return m.values(From) }

// Adapters returns the values of the ADAPTER instructions.
func (m *Modelfile) Adapters() []string { return m.values(Adapter) }

// Licenses returns the values of the LICENSE instructions.
func (m *Modelfile) Licenses() []string { return m.values(License) }

// Template returns the last TEMPLATE and whether there is one.
func (m *Modelfile) Template() (string, bool) { return m.last(Template) }

// System returns the last SYSTEM and whether there is one.
func (m *Modelfile) System() (string, bool) { return m.last(System) }

// Requires returns the last REQUIRES and whether there is one.
func (m *Modelfile) Requires() (string, bool) { return m.last(Requires) }

// ChatMessage is a MESSAGE instruction: a turn of the conversation the model
// starts from. It marshals like an Ollama API message.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Messages returns the MESSAGE instructions in order.
func (m *Modelfile) Messages() []ChatMessage {
	var out []ChatMessage
	for _, c := range m.Commands {
		if c.Instruction == Message {
			out = append(out, ChatMessage{Role: c.Name, Content: c.Value})
		}
	}
	return out
}

// Parameters returns the typed PARAMETER values; repeated stop values
// collect in order, a repeated scalar keeps its last value. It fails only
// for commands built in code with unknown names or mistyped values.
func (m *Modelfile) Parameters() (Parameters, error) {
	p := Parameters{}
	for _, c := range m.Commands {
		if c.Instruction != Parameter {
			continue
		}
		spec, ok := LookupParameter(c.Name)
		if !ok {
			return nil, &Error{Pos: c.Pos, Err: ErrUnknownParameter, Msg: unknownParamMsg(c.Name)}
		}
		v, err := spec.parse(c.Value)
		if err != nil {
			return nil, &Error{Pos: c.Pos, Err: ErrInvalidParameterValue, Msg: err.Error()}
		}
		if spec.Type == Strings {
			prev, _ := p[spec.Name].([]string)
			p[spec.Name] = append(prev, v.(string))
		} else {
			p[spec.Name] = v
		}
	}
	return p, nil
}

func (m *Modelfile) values(in Instruction) []string {
	var out []string
	for _, c := range m.Commands {
		if c.Instruction == in {
			out = append(out, c.Value)
		}
	}
	return out
}

func (m *Modelfile) last(in Instruction) (string, bool) {
	for i := len(m.Commands) - 1; i >= 0; i-- {
		if m.Commands[i].Instruction == in {
			return m.Commands[i].Value, true
		}
	}
	return "", false
}

// Validate checks a Modelfile built in code the way Parse checks text: a
// FROM is present, instructions are known, parameters are known and typed,
// roles and REQUIRES are valid.
func (m *Modelfile) Validate() error {
	hasFrom := false
	for _, c := range m.Commands {
		if err := c.validate(); err != nil {
			return err
		}
		hasFrom = hasFrom || c.Instruction == From
	}
	if !hasFrom {
		return &Error{Err: ErrMissingFrom, Msg: "no FROM instruction: a Modelfile starts with FROM <model name, reference, GGUF file or safetensors folder>"}
	}
	return nil
}

func (c Command) validate() error {
	switch c.Instruction {
	case Parameter:
		spec, ok := LookupParameter(c.Name)
		if !ok {
			return &Error{Pos: c.Pos, Err: ErrUnknownParameter, Msg: unknownParamMsg(c.Name)}
		}
		if _, err := spec.parse(c.Value); err != nil {
			return &Error{Pos: c.Pos, Err: ErrInvalidParameterValue, Msg: strings.TrimPrefix(err.Error(), ErrInvalidParameterValue.Error()+": ")}
		}
	case Message:
		if !slices.Contains(Roles, c.Name) {
			return &Error{Pos: c.Pos, Err: ErrInvalidRole, Msg: fmt.Sprintf("invalid message role %q: expected system, user or assistant", c.Name)}
		}
	case Requires:
		if !semver.MatchString(c.Value) {
			return &Error{Pos: c.Pos, Err: ErrInvalidRequires, Msg: fmt.Sprintf("REQUIRES %q is not a semantic version: expected MAJOR.MINOR.PATCH such as 0.5.0", c.Value)}
		}
	case From, Template, System, Adapter, License:
	default:
		return &Error{Pos: c.Pos, Err: ErrUnknownInstruction, Msg: unknownInstructionMsg(string(c.Instruction))}
	}
	if c.Instruction != Parameter && c.Instruction != Message && c.Name != "" {
		return &Error{Pos: c.Pos, Err: ErrUnknownInstruction, Msg: fmt.Sprintf("%s takes no name (got %q)", c.Instruction, c.Name)}
	}
	if (c.Instruction == From || c.Instruction == Adapter) && strings.TrimSpace(c.Value) == "" {
		return &Error{Pos: c.Pos, Err: ErrMissingValue, Msg: fmt.Sprintf("%s needs a value", c.Instruction)}
	}
	return nil
}

// semver accepts MAJOR.MINOR.PATCH with an optional "v", pre-release and build.
var semver = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

func unknownParamMsg(name string) string {
	return fmt.Sprintf("unknown parameter %q; valid parameters: %s", name, strings.Join(ParameterNames(), ", "))
}

func unknownInstructionMsg(word string) string {
	names := make([]string, len(Instructions))
	for i, in := range Instructions {
		names[i] = string(in)
	}
	return fmt.Sprintf("unknown instruction %q: expected one of %s", word, strings.Join(names, ", "))
}

// IsPath reports whether a FROM or ADAPTER value names a file system path
// rather than a model: it starts with "/", "./", "../", "~/" (or their
// Windows forms), or ends in ".gguf", ".safetensors" or ".bin". A value that
// is neither may still name an existing file; callers check the file system
// first and fall back to a model name.
func IsPath(v string) bool {
	for _, p := range []string{"/", "./", "../", "~/", `.\`, `..\`, `~\`} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	if v == "." || v == ".." || v == "~" || filepath.IsAbs(v) {
		return true
	}
	lv := strings.ToLower(v)
	for _, s := range []string{".gguf", ".safetensors", ".bin"} {
		if strings.HasSuffix(lv, s) {
			return true
		}
	}
	return false
}

// ResolvePath returns the file system path a FROM or ADAPTER value names:
// "~" and "~/x" expand under home, relative paths resolve against dir (the
// Modelfile's folder), absolute paths are cleaned.
func ResolvePath(dir, home, v string) string {
	switch {
	case v == "~":
		return filepath.Clean(home)
	case strings.HasPrefix(v, "~/") || strings.HasPrefix(v, `~\`):
		return filepath.Join(home, v[2:])
	case filepath.IsAbs(v):
		return filepath.Clean(v)
	}
	return filepath.Join(dir, v)
}
