//go:build !cgo

package llama

import (
	"context"
	"runtime"
)

// This file gives a build without cgo the same API as the cgo build; every
// entry point returns ErrNoCGO (or a zero value), so olm still compiles and
// says clearly what is missing. Keep it in step with the cgo files; the
// exported API is documented there.

// Model is a loaded GGUF model. Without cgo no model can be loaded.
type Model struct{}

// Context is an inference context. Without cgo none can be created.
type Context struct{}

// Batch is a batch of tokens for Decode. Without cgo none can be created.
type Batch struct{}

// Sampler is a token sampler chain. Without cgo none can be created.
type Sampler struct{}

// ChatTemplates holds a model's chat templates. Without cgo none can be
// created.
type ChatTemplates struct{}

// LoRA is a LoRA adapter. Without cgo none can be loaded.
type LoRA struct{}

// Perf holds llama.cpp's timing counters of a Context.
type Perf struct {
	PromptTokens int
	PromptMS     float64
	EvalTokens   int
	EvalMS       float64
}

// Available reports whether this build can run inference (false: no cgo).
func Available() bool { return false }

// SetLogLevel sets which llama.cpp log lines reach stderr.
func SetLogLevel(LogLevel) {}

// SystemInfo describes the CPU features llama.cpp was built for.
func SystemInfo() string { return "no cgo" }

// SupportsGPUOffload reports whether layers can be offloaded to a GPU.
func SupportsGPUOffload() bool { return false }

// SupportsMMap reports whether models can be memory-mapped.
func SupportsMMap() bool { return false }

// SupportsMLock reports whether models can be locked in RAM.
func SupportsMLock() bool { return false }

// DefaultThreads is the default thread count; without cgo,
// runtime.NumCPU.
func DefaultThreads() int { return runtime.NumCPU() }

// LoadModel loads a GGUF model; without cgo it returns ErrNoCGO.
func LoadModel(ctx context.Context, path string, p ModelParams) (*Model, error) {
	return nil, ErrNoCGO
}

// LoadModelSplits loads a split GGUF model; without cgo it returns ErrNoCGO.
func LoadModelSplits(ctx context.Context, paths []string, p ModelParams) (*Model, error) {
	return nil, ErrNoCGO
}

func (m *Model) Close() error                   { return nil }
func (m *Model) Path() string                   { return "" }
func (m *Model) Meta(key string) (string, bool) { return "", false }
func (m *Model) Metadata() map[string]string    { return nil }
func (m *Model) Arch() string                   { return "" }
func (m *Model) Description() string            { return "" }
func (m *Model) NumCtxTrain() int               { return 0 }
func (m *Model) NumEmbd() int                   { return 0 }
func (m *Model) NumLayer() int                  { return 0 }
func (m *Model) Fit() FitResult                 { return FitResult{Status: FitNone} }
func (m *Model) NumHead() int                   { return 0 }
func (m *Model) NumHeadKV() int                 { return 0 }
func (m *Model) NumParams() uint64              { return 0 }
func (m *Model) Size() uint64                   { return 0 }
func (m *Model) FileType() string               { return "" }
func (m *Model) ChatTemplate(name string) string {
	return ""
}
func (m *Model) HasEncoder() bool  { return false }
func (m *Model) HasDecoder() bool  { return false }
func (m *Model) IsRecurrent() bool { return false }
func (m *Model) NumVocab() int     { return 0 }
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]Token, error) {
	return nil, ErrNoCGO
}
func (m *Model) TokenToPiece(t Token, special bool) string { return "" }
func (m *Model) AppendPiece(dst []byte, t Token, special bool) []byte {
	return dst
}
func (m *Model) Detokenize(tokens []Token, removeSpecial, unparseSpecial bool) (string, error) {
	return "", ErrNoCGO
}
func (m *Model) TokenText(t Token) string { return "" }
func (m *Model) BOS() Token               { return TokenNull }
func (m *Model) EOS() Token               { return TokenNull }
func (m *Model) EOT() Token               { return TokenNull }
func (m *Model) NL() Token                { return TokenNull }
func (m *Model) SEP() Token               { return TokenNull }
func (m *Model) PAD() Token               { return TokenNull }
func (m *Model) AddBOS() bool             { return false }
func (m *Model) AddEOS() bool             { return false }
func (m *Model) IsEOG(t Token) bool       { return false }
func (m *Model) IsControl(t Token) bool   { return false }

// NewContext creates an inference context; without cgo it returns ErrNoCGO.
func NewContext(m *Model, p ContextParams) (*Context, error) { return nil, ErrNoCGO }

func (c *Context) Close() error                               { return nil }
func (c *Context) Model() *Model                              { return nil }
func (c *Context) NumCtx() int                                { return 0 }
func (c *Context) NumCtxSeq() int                             { return 0 }
func (c *Context) NumBatch() int                              { return 0 }
func (c *Context) NumUBatch() int                             { return 0 }
func (c *Context) NumSeqMax() int                             { return 0 }
func (c *Context) Decode(ctx context.Context, b *Batch) error { return ErrNoCGO }
func (c *Context) Encode(ctx context.Context, b *Batch) error { return ErrNoCGO }
func (c *Context) Logits(i int) ([]float32, error)            { return nil, ErrNoCGO }
func (c *Context) Embeddings(i int) ([]float32, error)        { return nil, ErrNoCGO }
func (c *Context) SeqEmbeddings(seq int) ([]float32, error)   { return nil, ErrNoCGO }
func (c *Context) SetEmbeddings(on bool)                      {}
func (c *Context) SetThreads(n, nBatch int)                   {}
func (c *Context) KVClear()                                   {}
func (c *Context) KVSeqRemove(seq, p0, p1 int) bool           { return false }
func (c *Context) KVSeqCopy(src, dst, p0, p1 int)             {}
func (c *Context) KVSeqKeep(seq int)                          {}
func (c *Context) KVSeqAdd(seq, p0, p1, delta int)            {}
func (c *Context) KVSeqPosMin(seq int) int                    { return -1 }
func (c *Context) KVSeqPosMax(seq int) int                    { return -1 }
func (c *Context) KVCanShift() bool                           { return false }
func (c *Context) Perf() Perf                                 { return Perf{} }
func (c *Context) PerfReset()                                 {}

// NewBatch allocates a batch; without cgo it returns ErrNoCGO.
func NewBatch(capacity, maxSeqsPerToken int) (*Batch, error) { return nil, ErrNoCGO }

func (b *Batch) Add(t Token, pos int, logits bool, seqs ...int) error { return ErrNoCGO }
func (b *Batch) Len() int                                             { return 0 }
func (b *Batch) Cap() int                                             { return 0 }
func (b *Batch) Clear()                                               {}
func (b *Batch) SetLogits(i int, on bool)                             {}
func (b *Batch) Close() error                                         { return nil }

// NewSampler builds a sampler chain; without cgo it returns ErrNoCGO.
func NewSampler(m *Model, p SamplerParams) (*Sampler, error) { return nil, ErrNoCGO }

func (s *Sampler) Sample(c *Context, idx int) (Token, error) { return TokenNull, ErrNoCGO }
func (s *Sampler) Accept(t Token)                            {}
func (s *Sampler) Reset()                                    {}
func (s *Sampler) Close() error                              { return nil }

// NewChatTemplates compiles chat templates; without cgo it returns ErrNoCGO.
func NewChatTemplates(m *Model, override string) (*ChatTemplates, error) {
	return nil, ErrNoCGO
}

func (t *ChatTemplates) Close() error                            { return nil }
func (t *ChatTemplates) Source() string                          { return "" }
func (t *ChatTemplates) Caps() map[string]bool                   { return nil }
func (t *ChatTemplates) Apply(in ChatInput) (*ChatPrompt, error) { return nil, ErrNoCGO }

// ParseChat parses model output; without cgo it returns ErrNoCGO.
func ParseChat(text string, partial bool, p ChatParseParams) (ChatMessage, error) {
	return ChatMessage{}, ErrNoCGO
}

// JSONSchemaToGrammar converts a JSON schema to GBNF; without cgo it returns
// ErrNoCGO.
func JSONSchemaToGrammar(schema []byte) (string, error) { return "", ErrNoCGO }

// JSONGrammar returns a grammar for any JSON object; without cgo it returns
// ErrNoCGO.
func JSONGrammar() (string, error) { return "", ErrNoCGO }

// Quantize quantizes a GGUF model; without cgo it returns ErrNoCGO.
func Quantize(ctx context.Context, in, out string, p QuantizeParams) error { return ErrNoCGO }

// LoadLoRA loads a LoRA adapter; without cgo it returns ErrNoCGO.
func (m *Model) LoadLoRA(path string) (*LoRA, error) { return nil, ErrNoCGO }

func (l *LoRA) Close() error                                        { return nil }
func (c *Context) SetLoRA(adapters []*LoRA, scales []float32) error { return ErrNoCGO }
