package runner

import (
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Sampling holds every generation option of Ollama's API, with Ollama's
// names on the wire. Every field is significant (0 is a real value for most
// of them), so start from DefaultSampling and override what a request sets.
type Sampling struct {
	// NumKeep is the number of prompt tokens kept from the start when a
	// prompt longer than the context is truncated (-1: keep the whole
	// prompt prefix it can; default 4).
	NumKeep int `json:"num_keep"`
	// Seed seeds the random sampler; -1 (the default) picks a random seed.
	Seed int `json:"seed"`
	// NumPredict is the maximum number of tokens to generate; -1 (default)
	// or -2 means until the context is full.
	NumPredict int `json:"num_predict"`
	// TopK keeps the K most likely tokens (0 disables; default 40).
	TopK int `json:"top_k"`
	// TopP is nucleus sampling's probability mass (1 disables; default 0.9).
	TopP float32 `json:"top_p"`
	// MinP drops tokens less likely than MinP × the best (0 disables; default 0).
	MinP float32 `json:"min_p"`
	// TypicalP is locally typical sampling's mass (1 disables; default 1).
	TypicalP float32 `json:"typical_p"`
	// RepeatLastN is how many recent tokens the penalties look at
	// (0 disables, -1 = the context size; default 64).
	RepeatLastN int `json:"repeat_last_n"`
	// Temperature scales the logits; 0 is greedy decoding (default 0.8).
	Temperature float32 `json:"temperature"`
	// RepeatPenalty penalizes repeated tokens (1 disables; default 1.1).
	RepeatPenalty float32 `json:"repeat_penalty"`
	// PresencePenalty penalizes tokens that appeared at all (default 0).
	PresencePenalty float32 `json:"presence_penalty"`
	// FrequencyPenalty penalizes tokens by how often they appeared (default 0).
	FrequencyPenalty float32 `json:"frequency_penalty"`
	// Mirostat selects Mirostat sampling: 0 off (default), 1 or 2.
	Mirostat int `json:"mirostat"`
	// MirostatTau is Mirostat's target entropy (default 5).
	MirostatTau float32 `json:"mirostat_tau"`
	// MirostatEta is Mirostat's learning rate (default 0.1).
	MirostatEta float32 `json:"mirostat_eta"`
	// Stop are strings that end generation when produced; they are not
	// part of the output.
	Stop []string `json:"stop,omitempty"`
}

// DefaultSampling returns Ollama's default sampling options.
func DefaultSampling() Sampling {
	return Sampling{
		NumKeep:       4,
		Seed:          -1,
		NumPredict:    -1,
		TopK:          40,
		TopP:          0.9,
		MinP:          0,
		TypicalP:      1,
		RepeatLastN:   64,
		Temperature:   0.8,
		RepeatPenalty: 1.1,
		MirostatTau:   5,
		MirostatEta:   0.1,
	}
}

// Greedy returns options for deterministic greedy decoding: temperature 0
// and no penalties.
func Greedy() Sampling {
	s := DefaultSampling()
	s.Temperature = 0
	s.RepeatPenalty = 1
	s.Seed = 0
	return s
}

// LoadOptions say how a runner loads its model. The zero value of every
// field except Model picks a default.
type LoadOptions struct {
	// Model is the path of the GGUF file (the first part of a split GGUF).
	Model string `json:"model"`
	// Parts are the paths of a split GGUF's other parts, in order after
	// Model (none for a whole GGUF). The paths may have any names, such as
	// the blob store's digests.
	Parts []string `json:"parts,omitempty"`
	// Projector is the path of a multimodal projector GGUF (llama.cpp's
	// mmproj, Ollama's projector layer; "" for none). With one the runner
	// takes images and reports the vision capability. One that does not
	// fit the model stops the runner at start, naming the file.
	Projector string `json:"projector,omitempty"`
	// Adapters are LoRA adapter GGUF files (Modelfile ADAPTER), applied
	// together at scale 1 to every context. One made for another
	// architecture or shape stops the runner at start, naming the file.
	Adapters []string `json:"adapters,omitempty"`
	// NumCtx is the context length of each slot in tokens; 0 means 4096,
	// capped at the model's training context. The runner's context holds
	// NumCtx × Parallel tokens.
	NumCtx int `json:"num_ctx,omitempty"`
	// NumBatch is the logical batch size for prompt processing; 0 means 512.
	NumBatch int `json:"num_batch,omitempty"`
	// NumGPU is the number of layers offloaded to the GPU; 0 keeps
	// everything on the CPU, -1 (any other negative value) offloads all
	// layers, NumGPUAuto offloads as many as fit in free GPU memory (the
	// server's choice when a request does not set num_gpu). Builds without
	// GPU offload keep every layer on the CPU whatever the value.
	NumGPU int `json:"num_gpu,omitempty"`
	// NumThread is the number of CPU threads; 0 lets llama.cpp choose
	// (its default, from the number of CPU cores).
	NumThread int `json:"num_thread,omitempty"`
	// NoMmap reads the model into memory instead of mapping it (Ollama's
	// use_mmap=false).
	NoMmap bool `json:"no_mmap,omitempty"`
	// Mlock locks the model's memory so it is not swapped out.
	Mlock bool `json:"use_mlock,omitempty"`
	// Parallel is the number of slots (requests decoded together); 0 means 1.
	Parallel int `json:"parallel,omitempty"`
	// EmbeddingOnly loads the model for embeddings only (no generation).
	EmbeddingOnly bool `json:"embedding_only,omitempty"`
	// FlashAttention is "on", "off", or "" for llama.cpp's choice per
	// backend (Ollama's OLLAMA_FLASH_ATTENTION).
	FlashAttention string `json:"flash_attention,omitempty"`
	// KVCacheType is the KV cache element type: "f16" (the default when
	// ""), "q8_0" or "q4_0" (Ollama's OLLAMA_KV_CACHE_TYPE; quantized
	// types need flash attention).
	KVCacheType string `json:"kv_cache_type,omitempty"`
	// Verbose makes the runner log one line per request (slot, tokens,
	// speed, done reason) and llama.cpp's warnings.
	Verbose bool `json:"verbose,omitempty"`
}

// NumGPUAuto is the LoadOptions.NumGPU value that offloads as many layers
// as fit in free GPU memory (llama.cpp's fit, like llama-server's default
// --fit on), keeping 1 GiB free per device. `olm runner` takes it as
// --gpu-layers auto.
const NumGPUAuto = math.MinInt32

// Defaults used when a LoadOptions field is zero.
const (
	DefaultNumCtx   = 4096
	DefaultNumBatch = 512
)

// Args returns the command-line arguments of `olm runner` for these options
// and socket path (without the program name and "runner").
func (o LoadOptions) Args(socket string) []string {
	a := []string{"--model", o.Model, "--socket", socket}
	for _, p := range o.Parts {
		a = append(a, "--model-part", p)
	}
	if o.Projector != "" {
		a = append(a, "--projector", o.Projector)
	}
	for _, l := range o.Adapters {
		a = append(a, "--lora", l)
	}
	if o.NumCtx > 0 {
		a = append(a, "--ctx-size", strconv.Itoa(o.NumCtx))
	}
	if o.NumBatch > 0 {
		a = append(a, "--batch-size", strconv.Itoa(o.NumBatch))
	}
	if o.NumGPU != 0 {
		a = append(a, "--gpu-layers", gpuLayers(o.NumGPU).String())
	}
	if o.NumThread > 0 {
		a = append(a, "--threads", strconv.Itoa(o.NumThread))
	}
	if o.NoMmap {
		a = append(a, "--no-mmap")
	}
	if o.Mlock {
		a = append(a, "--mlock")
	}
	if o.Parallel > 0 {
		a = append(a, "--parallel", strconv.Itoa(o.Parallel))
	}
	if o.EmbeddingOnly {
		a = append(a, "--embedding-only")
	}
	if o.FlashAttention != "" {
		a = append(a, "--flash-attn", o.FlashAttention)
	}
	if o.KVCacheType != "" {
		a = append(a, "--kv-cache-type", o.KVCacheType)
	}
	if o.Verbose {
		a = append(a, "--verbose")
	}
	return a
}

// gpuLayers is the --gpu-layers flag: a layer count or "auto".
type gpuLayers int

func (g gpuLayers) String() string {
	if g == NumGPUAuto {
		return "auto"
	}
	return strconv.Itoa(int(g))
}

func (g *gpuLayers) Set(v string) error {
	if v == "auto" {
		*g = NumGPUAuto
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("want a layer count, -1 for all, or auto")
	}
	*g = gpuLayers(n)
	return nil
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// ParseArgs parses the command-line arguments written by LoadOptions.Args
// and returns the options and socket path. It is the one parser of
// `olm runner`'s flags; usage text goes to w on error or -h.
func ParseArgs(args []string, w io.Writer) (LoadOptions, string, error) {
	var o LoadOptions
	var socket string
	fs := flag.NewFlagSet("olm runner", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.StringVar(&o.Model, "model", "", "GGUF model file to load (required)")
	fs.StringVar(&socket, "socket", "", "unix socket to serve on (required)")
	fs.Var((*stringList)(&o.Parts), "model-part", "next part of a split GGUF, after --model (repeatable, in order)")
	fs.StringVar(&o.Projector, "projector", "", "multimodal projector GGUF")
	adapters := (*stringList)(&o.Adapters)
	fs.Var(adapters, "lora", "LoRA adapter GGUF (repeatable)")
	fs.IntVar(&o.NumCtx, "ctx-size", 0, "context length per slot in tokens (default 4096)")
	fs.IntVar(&o.NumBatch, "batch-size", 0, "logical batch size (default 512)")
	fs.Var((*gpuLayers)(&o.NumGPU), "gpu-layers", "layers to offload to the GPU: 0 none (default), -1 all, auto as many as fit")
	fs.IntVar(&o.NumThread, "threads", 0, "CPU threads (default: llama.cpp's choice)")
	fs.BoolVar(&o.NoMmap, "no-mmap", false, "read the model instead of mapping it")
	fs.BoolVar(&o.Mlock, "mlock", false, "lock the model in memory")
	fs.IntVar(&o.Parallel, "parallel", 0, "number of parallel slots (default 1)")
	fs.BoolVar(&o.EmbeddingOnly, "embedding-only", false, "load for embeddings only")
	fs.StringVar(&o.FlashAttention, "flash-attn", "", "flash attention: on, off (default: llama.cpp's choice)")
	fs.StringVar(&o.KVCacheType, "kv-cache-type", "", "KV cache type: f16 (default), q8_0, q4_0")
	fs.BoolVar(&o.Verbose, "verbose", false, "log every request and llama.cpp's warnings")
	if err := fs.Parse(args); err != nil {
		return o, "", err
	}
	if fs.NArg() > 0 {
		return o, "", fmt.Errorf("olm runner: unexpected argument %q", fs.Arg(0))
	}
	if o.Model == "" || socket == "" {
		return o, "", fmt.Errorf("olm runner: --model and --socket are required")
	}
	switch o.FlashAttention {
	case "", "on", "off":
	default:
		return o, "", fmt.Errorf("olm runner: --flash-attn must be on or off, not %q", o.FlashAttention)
	}
	switch o.KVCacheType {
	case "", "f16", "q8_0", "q4_0":
	default:
		return o, "", fmt.Errorf("olm runner: --kv-cache-type must be f16, q8_0 or q4_0, not %q", o.KVCacheType)
	}
	if o.NumCtx < 0 || o.NumBatch < 0 || o.NumThread < 0 || o.Parallel < 0 {
		return o, "", fmt.Errorf("olm runner: --ctx-size, --batch-size, --threads and --parallel must not be negative")
	}
	return o, socket, nil
}
