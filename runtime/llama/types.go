package llama

import (
	"encoding/json"
	"time"
)

// Token is a token id of a model's vocabulary.
type Token int32

// TokenNull is the "no token" value (LLAMA_TOKEN_NULL), returned for special
// tokens a vocabulary does not have.
const TokenNull Token = -1

// LogLevel selects which llama.cpp log lines reach stderr.
type LogLevel int

// Log levels, from quietest to loudest. The default is LogOff.
const (
	LogOff   LogLevel = iota // nothing (the default)
	LogError                 // errors only
	LogWarn                  // warnings and errors
	LogInfo                  // everything but debug output
	LogDebug                 // everything
)

// ModelParams says how to load a model. The zero value loads every layer on
// the CPU without mmap; DefaultModelParams returns the usual settings.
type ModelParams struct {
	// NumGPULayers is how many layers to offload to the GPU: 0 keeps the
	// model on the CPU, a negative value offloads all layers. Ignored by
	// CPU-only builds, and by FitGPU.
	NumGPULayers int

	// FitGPU picks the GPU layers (and, with several GPUs, the split
	// between them) that fit in free device memory, like llama-server's
	// default --fit on (llama.cpp's common_fit_params), leaving
	// FitMarginBytes free per device. When fitting fails llama.cpp's
	// defaults are used (all layers offloaded); Model.Fit says what
	// happened. Without GPU offload (SupportsGPUOffload false) it keeps
	// every layer on the CPU, exactly as NumGPULayers 0, and fits nothing.
	// Fits run one at a time (llama.cpp's fit is not thread safe: it
	// swaps the global logger while it measures, so a concurrent load's
	// log lines may be demoted meanwhile). A split model (LoadModelSplits
	// with several paths) is not fitted and uses the defaults.
	FitGPU bool

	// FitContext is the context the caller will create over the model, so
	// that fitting counts its KV cache and compute buffers. Only read with
	// FitGPU; its NumCtx should be set (0 lets the fit pick a context size
	// that is not used afterwards).
	FitContext ContextParams

	// FitMarginBytes is the device memory fitting leaves free per device.
	// 0 means DefaultFitMargin.
	FitMarginBytes uint64

	// UseMMap maps the file into memory instead of reading it (faster
	// start, pages shared between processes). Default true.
	UseMMap bool

	// UseMLock asks the OS to keep the model in RAM (no swapping).
	UseMLock bool

	// VocabOnly loads the vocabulary and metadata but no weights: enough
	// to tokenize and apply chat templates, not to decode.
	VocabOnly bool
}

// DefaultFitMargin is the device memory ModelParams.FitGPU leaves free
// per device by default: 1 GiB, llama-server's --fit-target default.
const DefaultFitMargin = 1 << 30

// FitStatus is the outcome of fitting model parameters to free device
// memory (common_fit_params' status).
type FitStatus int

// Fit outcomes.
const (
	FitNone    FitStatus = -1 // no fitting ran (not asked, no GPU offload, or a split model)
	FitOK      FitStatus = 0  // parameters projected to fit were found
	FitFailure FitStatus = 1  // no parameters projected to fit: llama.cpp's defaults were used
	FitError   FitStatus = 2  // a hard error (e.g. the model could not be read): defaults were used
)

// FitResult says how a model's GPU layers were chosen.
type FitResult struct {
	// Status is FitNone unless fitting ran.
	Status FitStatus
	// GPULayers is the n_gpu_layers the model was loaded with: 0 on the
	// CPU, -1 all layers (llama.cpp clamps larger counts to the model's
	// layers + 1). Always 0 without GPU offload.
	GPULayers int
	// Message says why fitting did not run or did not succeed ("" when
	// it succeeded or was not asked for).
	Message string
}

// DefaultModelParams returns ModelParams with mmap on and no GPU layers.
func DefaultModelParams() ModelParams {
	return ModelParams{UseMMap: true}
}

// Pooling is how per-token embeddings are combined into one vector per
// sequence.
type Pooling int

// Pooling types. PoolingDefault (the zero value) uses the model's own
// setting (from its GGUF metadata).
const (
	PoolingDefault Pooling = iota // the model's default
	PoolingNone                   // no pooling: per-token embeddings only
	PoolingMean                   // mean of the sequence's token embeddings
	PoolingCLS                    // the first (CLS) token's embedding
	PoolingLast                   // the last token's embedding
	PoolingRank                   // reranking models: a score per sequence
)

// FlashAttn chooses whether flash attention is used.
type FlashAttn int

// Flash attention modes. FlashAttnAuto (the zero value) lets llama.cpp
// decide per backend.
const (
	FlashAttnAuto FlashAttn = iota
	FlashAttnOff
	FlashAttnOn
)

// ContextParams configures a Context. Zero values pick the documented
// defaults.
type ContextParams struct {
	// NumCtx is the size of the KV cache in tokens, shared by all
	// sequences (each gets NumCtx/NumSeqMax). 0 uses the model's training
	// context length. llama.cpp rounds it up to a multiple of 256.
	NumCtx int

	// NumBatch is the most tokens one Decode call accepts. 0 = 2048
	// (capped at NumCtx).
	NumBatch int

	// NumUBatch is the physical micro-batch size. 0 = 512 (capped at
	// NumBatch).
	NumUBatch int

	// NumSeqMax is the number of distinct sequences (parallel slots) the
	// context holds. 0 = 1.
	NumSeqMax int

	// NumThreads is the number of CPU threads for generation (one token per
	// sequence). 0 = DefaultThreads (llama.cpp's default: the physical
	// cores, at most runtime.NumCPU).
	NumThreads int

	// NumThreadsBatch is the number of threads for prompt processing. 0 =
	// NumThreads.
	NumThreadsBatch int

	// Embeddings makes Decode produce embeddings (read with Embeddings or
	// SeqEmbeddings) in addition to logits.
	Embeddings bool

	// Pooling combines token embeddings per sequence; see Pooling.
	Pooling Pooling

	// FlashAttn selects flash attention; see FlashAttn.
	FlashAttn FlashAttn

	// CacheTypeK and CacheTypeV are the KV cache element types ("f16",
	// "q8_0", "q4_0", ...). "" = f16. Quantized V needs flash attention.
	CacheTypeK, CacheTypeV string

	// KVUnified uses one KV buffer for all sequences (better when they share
	// a long prefix). Default false: one stream per sequence.
	KVUnified bool
}

// Mirostat selects the mirostat sampling algorithm.
type Mirostat int

// Mirostat versions (Ollama's mirostat option). MirostatOff is the zero
// value.
const (
	MirostatOff Mirostat = 0
	MirostatV1  Mirostat = 1
	MirostatV2  Mirostat = 2
)

// TriggerType says how a lazy grammar trigger matches the output.
type TriggerType int

// Trigger types, as in llama.cpp's common_grammar_trigger_type.
const (
	// TriggerWord matches the literal Value anywhere in the output.
	TriggerWord TriggerType = iota
	// TriggerPattern matches the regular expression Value anywhere; the
	// grammar receives the text from the first capture group on.
	TriggerPattern
	// TriggerPatternFull matches the regular expression Value against the
	// whole output.
	TriggerPatternFull
	// TriggerToken fires when Token is generated.
	TriggerToken
)

// GrammarTrigger starts a lazy grammar: until a trigger fires, output is
// unconstrained.
type GrammarTrigger struct {
	Type  TriggerType `json:"type"`
	Value string      `json:"value,omitempty"`
	Token Token       `json:"token,omitempty"`
}

// SamplerParams configures a Sampler; the fields are Ollama's options. The
// zero value samples greedily with no penalties; DefaultSamplerParams gives
// Ollama's defaults.
type SamplerParams struct {
	// Temperature scales logits; ≤ 0 picks the most likely token (greedy,
	// after penalties and grammar). Ollama default 0.8.
	Temperature float32

	// TopK keeps the K most likely tokens; ≤ 0 disables. Ollama default 40.
	TopK int

	// TopP keeps the smallest set of tokens whose probabilities sum to P;
	// 0 or ≥ 1 disables. Ollama default 0.9.
	TopP float32

	// MinP drops tokens less likely than MinP × the most likely one; ≤ 0
	// disables. Ollama default 0.
	MinP float32

	// TypicalP is locally typical sampling; 0 or ≥ 1 disables. Ollama
	// default 1 (off).
	TypicalP float32

	// RepeatLastN is how many recent tokens the penalties look at: 0
	// disables penalties, -1 means the whole context (NumCtx). Ollama
	// default 64.
	RepeatLastN int

	// RepeatPenalty divides the logits of recent tokens; 0 or 1 disables.
	// Ollama default 1.1.
	RepeatPenalty float32

	// PresencePenalty is subtracted once from recent tokens' logits; 0
	// disables.
	PresencePenalty float32

	// FrequencyPenalty is subtracted per occurrence; 0 disables.
	FrequencyPenalty float32

	// Seed seeds the random choice; a negative seed picks a random one.
	// The same seed, parameters and prompt give the same output.
	Seed int64

	// Mirostat replaces top-k/top-p/min-p/typical sampling with mirostat
	// 1 or 2, steered by MirostatTau (target surprise, Ollama default 5)
	// and MirostatEta (learning rate, Ollama default 0.1).
	Mirostat    Mirostat
	MirostatTau float32
	MirostatEta float32

	// NumCtx is the context length that RepeatLastN = -1 stands for; 0
	// with RepeatLastN = -1 means 4096.
	NumCtx int

	// Grammar is a GBNF grammar (start symbol "root") that output must
	// follow; "" means none. With GrammarLazy, the grammar applies only
	// from the first match of one of GrammarTriggers on.
	Grammar         string
	GrammarLazy     bool
	GrammarTriggers []GrammarTrigger

	// GrammarPrefill is text already in the prompt that a (non-lazy)
	// grammar must consume first: chat templates' tool-call and JSON
	// grammars begin with the generation prompt. ChatPrompt.SamplerGrammar
	// sets it.
	GrammarPrefill string

	// LogitBias adds a bias to the logits of the given tokens
	// (-Inf forbids a token).
	LogitBias map[Token]float32
}

// DefaultSamplerParams returns Ollama's default sampling options.
func DefaultSamplerParams() SamplerParams {
	return SamplerParams{
		Temperature:   0.8,
		TopK:          40,
		TopP:          0.9,
		MinP:          0,
		TypicalP:      1,
		RepeatLastN:   64,
		RepeatPenalty: 1.1,
		Seed:          -1,
		MirostatTau:   5,
		MirostatEta:   0.1,
	}
}

// ChatMessage is one message of a conversation, as chat templates see it
// and as ParseChat returns model output.
type ChatMessage struct {
	// Role is "system", "user", "assistant" or "tool".
	Role string `json:"role"`
	// Content is the message text.
	Content string `json:"content"`
	// Thinking is the model's reasoning (reasoning_content), for models
	// that think.
	Thinking string `json:"thinking,omitempty"`
	// ToolCalls are the calls an assistant message makes.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolName names the tool whose result a "tool" message carries.
	ToolName string `json:"tool_name,omitempty"`
	// ToolCallID is the id of the call a "tool" message answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
}

// ToolCall is one function call made by the model.
type ToolCall struct {
	// ID is the call's id ("" when the format has none).
	ID string `json:"id,omitempty"`
	// Name is the function's name.
	Name string `json:"name"`
	// Arguments is the JSON text of the arguments (an object).
	Arguments string `json:"arguments"`
}

// Tool is a function the model may call.
type Tool struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Parameters is the JSON schema of the arguments; nil means none.
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// ChatInput is what ChatTemplates.Apply renders.
type ChatInput struct {
	// Messages is the conversation. When the last message is from the
	// assistant, that message is continued (prefilled) and no generation
	// prompt is added, as Ollama does.
	Messages []ChatMessage

	// Tools the model may call; with ToolChoice other than "none", Apply
	// returns a (usually lazy) grammar for the calls and ParseChat extracts
	// them.
	Tools []Tool

	// ToolChoice is "auto" (or ""), "required" or "none".
	ToolChoice string

	// ParallelToolCalls allows several calls in one answer.
	ParallelToolCalls bool

	// JSONSchema, when set, constrains the answer to JSON matching the
	// schema (`{}` or `{"type":"object"}` for any object).
	JSONSchema json.RawMessage

	// Grammar is a custom GBNF grammar for the answer (not with Tools).
	Grammar string

	// AddGenerationPrompt ends the prompt with the tokens that start an
	// assistant answer. Callers almost always want true.
	AddGenerationPrompt bool

	// EnableThinking turns a thinking model's reasoning on or off; nil
	// leaves the template's default (on).
	EnableThinking *bool

	// Kwargs are extra variables for the template (chat_template_kwargs),
	// e.g. "reasoning_effort".
	Kwargs map[string]any

	// Now is the time llama.cpp's template inputs carry; zero means
	// time.Now(). (Templates calling strftime_now read the clock.)
	Now time.Time
}

// ChatFormat identifies how a template's model output is parsed.
type ChatFormat int

// ChatPrompt is the result of ChatTemplates.Apply.
type ChatPrompt struct {
	// Prompt is the rendered text to tokenize (with parseSpecial true and
	// addSpecial false: templates emit their own BOS).
	Prompt string `json:"prompt"`

	// Grammar constrains the answer (tool calls or JSON schema); "" means
	// free text. With GrammarLazy it applies only after a trigger.
	Grammar         string           `json:"grammar,omitempty"`
	GrammarLazy     bool             `json:"grammar_lazy,omitempty"`
	GrammarTriggers []GrammarTrigger `json:"grammar_triggers,omitempty"`

	// PreservedTokens are special tokens the format uses in its output.
	PreservedTokens []string `json:"preserved_tokens,omitempty"`

	// AdditionalStops are stop strings the caller should add.
	AdditionalStops []string `json:"additional_stops,omitempty"`

	// Parse holds what ParseChat needs to parse this prompt's answer.
	Parse ChatParseParams `json:"parse"`

	// SupportsThinking reports whether the template has a reasoning mode;
	// ThinkingStartTag and ThinkingEndTags delimit the reasoning.
	SupportsThinking bool     `json:"supports_thinking,omitempty"`
	ThinkingStartTag string   `json:"thinking_start_tag,omitempty"`
	ThinkingEndTags  []string `json:"thinking_end_tags,omitempty"`
}

// SamplerGrammar copies the prompt's grammar settings into p (Grammar,
// GrammarLazy, GrammarTriggers and GrammarPrefill).
func (cp *ChatPrompt) SamplerGrammar(p *SamplerParams) {
	p.Grammar = cp.Grammar
	p.GrammarLazy = cp.GrammarLazy
	p.GrammarTriggers = append([]GrammarTrigger(nil), cp.GrammarTriggers...)
	p.GrammarPrefill = ""
	if cp.Grammar != "" && !cp.GrammarLazy {
		p.GrammarPrefill = cp.Parse.GenerationPrompt
	}
}

// ChatParseParams tells ParseChat how to split model output. It is plain
// data (JSON-serializable), so a process that applied the template can hand
// it to another.
type ChatParseParams struct {
	// Format is the chat format id; FormatName its name (for logs).
	Format     ChatFormat `json:"format"`
	FormatName string     `json:"format_name,omitempty"`
	// Parser is the serialized parser of the format (opaque).
	Parser string `json:"parser,omitempty"`
	// GenerationPrompt is the text the prompt ended with (the start of
	// the answer), which the parser may need.
	GenerationPrompt string `json:"generation_prompt,omitempty"`
	// ExtractThinking moves reasoning into ChatMessage.Thinking; when
	// false it stays in Content, between ThinkingStartTag and
	// ThinkingEndTag.
	ExtractThinking  bool   `json:"extract_thinking,omitempty"`
	ThinkingStartTag string `json:"thinking_start_tag,omitempty"`
	ThinkingEndTag   string `json:"thinking_end_tag,omitempty"`
	// ParseToolCalls extracts tool calls into ChatMessage.ToolCalls.
	ParseToolCalls bool `json:"parse_tool_calls,omitempty"`
}

// QuantizeParams configures Quantize.
type QuantizeParams struct {
	// FileType is the target type, e.g. "q4_K_M", "Q8_0", "f16"
	// (case-insensitive); FileTypes lists them.
	FileType string
	// Threads is the number of threads; ≤ 0 uses all cores.
	Threads int
	// AllowRequantize lets an already quantized input be quantized again
	// (with quality loss). Default false: such input is refused with
	// ErrAlreadyQuantized.
	AllowRequantize bool
}
