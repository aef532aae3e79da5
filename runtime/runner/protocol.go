package runner

import (
	"encoding/json"
	"time"
)

// HealthResponse is the body of GET /health.
type HealthResponse struct {
	// Status is "ok" when the model is loaded and requests are served.
	Status string `json:"status"`
}

// Capability names reported in Info.Capabilities. They match the names
// Ollama's /api/show returns.
const (
	CapCompletion = "completion"
	CapEmbedding  = "embedding"
	CapTools      = "tools"
	CapThinking   = "thinking"
	CapInsert     = "insert"
	CapVision     = "vision"
)

// Info describes the loaded model and how the runner serves it (GET /info).
// Model facts come from the GGUF metadata.
type Info struct {
	// ModelPath is the GGUF file the runner loaded.
	ModelPath string `json:"model_path"`
	// Name is general.name from the GGUF metadata ("" when absent).
	Name string `json:"name,omitempty"`
	// Architecture is general.architecture (for example "llama").
	Architecture string `json:"architecture"`
	// Description is llama.cpp's one-line model description
	// (for example "llama 7B Q4_K - Medium").
	Description string `json:"description,omitempty"`
	// ContextTrain is the context length the model was trained with.
	ContextTrain int `json:"n_ctx_train"`
	// Embedding is the embedding width (hidden size).
	Embedding int `json:"n_embd"`
	// Layers is the number of transformer blocks.
	Layers int `json:"n_layer,omitempty"`
	// Vocab is the vocabulary size.
	Vocab int `json:"n_vocab"`
	// Params is the number of parameters.
	Params uint64 `json:"n_params"`
	// Size is the size of the model's tensors in bytes, plus the files of
	// its projector and LoRA adapters (they are loaded into memory too).
	Size uint64 `json:"size"`
	// ChatTemplate reports whether the GGUF carries a chat template
	// (tokenizer.chat_template).
	ChatTemplate bool `json:"chat_template"`
	// Capabilities lists what the runner can do with this model, from the
	// Cap* constants.
	Capabilities []string `json:"capabilities"`
	// Context is the context length of each slot, in tokens.
	Context int `json:"n_ctx"`
	// Batch is the logical batch size used for prompt processing.
	Batch int `json:"n_batch"`
	// Parallel is the number of slots: requests served at the same time.
	Parallel int `json:"parallel"`
	// EmbeddingOnly reports a runner loaded only for embeddings.
	EmbeddingOnly bool `json:"embedding_only,omitempty"`
	// GPULayers is the number of layers offloaded to a GPU (0 on CPU).
	GPULayers int `json:"n_gpu_layers"`
	// SizeVRAM is the number of bytes of model held in GPU memory (0 on CPU).
	SizeVRAM uint64 `json:"size_vram"`
	// Metadata holds the GGUF key/value metadata as strings (arrays are left
	// out; tokenizer.chat_template is included).
	Metadata map[string]string `json:"metadata,omitempty"`
	// FIM holds the vocabulary's fill-in-the-middle tokens; nil when it
	// lacks the prefix, suffix or middle token. The server builds insert
	// (suffix) prompts from it.
	FIM *FIMTokens `json:"fim,omitempty"`
}

// FIMTokens are the token IDs of a fill-in-the-middle prompt, which
// llama-server's /infill builds as
// [BOS] Prefix <prefix text> Suffix <suffix text> Middle,
// after which the model writes the text that goes between.
type FIMTokens struct {
	// Prefix, Suffix and Middle are llama.cpp's llama_vocab_fim_pre, _suf
	// and _mid (for example <|fim_prefix|>, <|fim_suffix|>, <|fim_middle|>).
	Prefix int32 `json:"prefix"`
	Suffix int32 `json:"suffix"`
	Middle int32 `json:"middle"`
	// BOS is the token that starts every sequence, -1 when the vocabulary
	// adds none.
	BOS int32 `json:"bos"`
}

// Has reports whether the model has capability c.
func (i *Info) Has(c string) bool {
	for _, x := range i.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// Done reasons of a finished generation.
const (
	// DoneStop: the model produced an end-of-generation token or a stop string.
	DoneStop = "stop"
	// DoneLength: num_predict tokens were generated, or the slot's context is full.
	DoneLength = "length"
)

// CompletionRequest asks for text generation from a prompt (POST /completion).
type CompletionRequest struct {
	// Prompt is the prompt text. Special tokens written in it (such as
	// "<|im_start|>") are parsed as special tokens. The model's BOS token is
	// added when the vocabulary wants one and the prompt does not already
	// start with it.
	Prompt string `json:"prompt,omitempty"`
	// Tokens, when not empty, is the pre-tokenized prompt and Prompt is
	// ignored (for example the context returned by an earlier request
	// followed by new tokens).
	Tokens []int32 `json:"tokens,omitempty"`
	// Images are raw image files (JPEG, PNG, GIF, BMP, WebP) for a model
	// loaded with a projector. The prompt refers to them with ImageMarker
	// (the next image), Ollama's "[img-N]" (image N) or "[img]" (the
	// next); images it does not refer to go before it. Without a projector,
	// or with bytes that are not an image, the request fails with
	// ErrBadRequest. Prompts with images are never truncated: one that does
	// not fit fails with ErrContextLength.
	Images [][]byte `json:"images,omitempty"`
	// Options are the sampling options; nil means DefaultSampling().
	Options *Sampling `json:"options,omitempty"`
	// Grammar is a GBNF grammar constraining the output ("" for none).
	Grammar string `json:"grammar,omitempty"`
	// JSONSchema is a JSON schema (or the string "json" for any JSON value)
	// that the output must match; it is turned into a grammar. It must not
	// be set together with Grammar.
	JSONSchema json.RawMessage `json:"json_schema,omitempty"`
	// NoStream asks for the answer in one event: the runner sends only the
	// final event, whose Content is the whole generated text (what the
	// streamed pieces would add up to). False (the default) streams a
	// piece per token.
	NoStream bool `json:"no_stream,omitempty"`
}

// ImageMarker is the text that stands for one image in a prompt, in the
// order of the request's Images.
const ImageMarker = "<__image__>"

// Timings are the counters of one generation. Durations are in
// nanoseconds on the wire, as in Ollama's API.
type Timings struct {
	// PromptEvalCount is the number of prompt tokens evaluated (not counting
	// tokens reused from the slot's cache).
	PromptEvalCount int `json:"prompt_eval_count,omitempty"`
	// PromptEvalDuration is the time spent evaluating the prompt.
	PromptEvalDuration time.Duration `json:"prompt_eval_duration,omitempty"`
	// EvalCount is the number of tokens generated.
	EvalCount int `json:"eval_count,omitempty"`
	// EvalDuration is the time spent generating.
	EvalDuration time.Duration `json:"eval_duration,omitempty"`
	// PromptCached is the number of prompt tokens reused from the slot's
	// cache of its previous request.
	PromptCached int `json:"prompt_cached,omitempty"`
}

// CompletionEvent is one line of a /completion stream. Events before the
// last carry Content pieces; the last has Done set, DoneReason, Timings and
// Context. Concatenating every Content gives the generated text; a stop
// string is never part of it.
type CompletionEvent struct {
	// Content is the next piece of generated text (may be empty).
	Content string `json:"content,omitempty"`
	// Done marks the final event.
	Done bool `json:"done,omitempty"`
	// DoneReason is DoneStop or DoneLength on the final event.
	DoneReason string `json:"done_reason,omitempty"`
	Timings
	// Context is the prompt and generated tokens, on the final event; passing
	// it back as Tokens (followed by more) continues the conversation.
	Context []int32 `json:"context,omitempty"`
	// Truncated reports on the final event that the prompt did not fit in
	// the context and tokens after the first num_keep were dropped from its
	// start.
	Truncated bool `json:"truncated,omitempty"`
	// Error is set on a final event when generation failed midway.
	Error string `json:"error,omitempty"`
	// Code is the error code when Error is set (Code* constants).
	Code string `json:"code,omitempty"`
}

// ToolCall is a function call parsed from a model's output.
type ToolCall struct {
	// ID is the call ID the model gave, if its format has one.
	ID string `json:"id,omitempty"`
	// Function is the call.
	Function ToolCallFunction `json:"function"`
}

// ToolCallFunction is the function part of a ToolCall.
type ToolCallFunction struct {
	// Index is the position of the call in the message.
	Index int `json:"index"`
	// Name is the function name.
	Name string `json:"name"`
	// Arguments are the call's arguments, a JSON object.
	Arguments json.RawMessage `json:"arguments"`
}

// Message is one chat message.
type Message struct {
	// Role is "system", "user", "assistant" or "tool".
	Role string `json:"role"`
	// Content is the message text.
	Content string `json:"content"`
	// Thinking is an assistant's reasoning, for templates that render it.
	Thinking string `json:"thinking,omitempty"`
	// Images are raw image files attached to the message (see
	// CompletionRequest.Images). With the model's jinja template each
	// image goes where the content says "[img]" or "[img-N]" (N counts the
	// request's images), else at the start of the content.
	Images [][]byte `json:"images,omitempty"`
	// ToolCalls are the calls an assistant message made.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolName is the function whose result a "tool" message carries.
	ToolName string `json:"tool_name,omitempty"`
	// ToolCallID is the ID of the call a "tool" message answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
}

// ChatRequest asks for the next assistant message of a conversation
// (POST /chat, and POST /render which only templates it).
type ChatRequest struct {
	// Messages is the conversation so far.
	Messages []Message `json:"messages"`
	// Tools is a JSON array of tool definitions in OpenAI/Ollama form
	// ({"type":"function","function":{"name","description","parameters"}}).
	Tools json.RawMessage `json:"tools,omitempty"`
	// ToolChoice is "auto" (or ""): the model may call Tools; "required":
	// it must call one; "none": it must not.
	ToolChoice string `json:"tool_choice,omitempty"`
	// Format constrains the output: the JSON string "json" for any JSON
	// value, or a JSON schema object. Empty for free text.
	Format json.RawMessage `json:"format,omitempty"`
	// Think turns the model's reasoning on (true) or off (false); nil
	// leaves the template's default.
	Think *bool `json:"think,omitempty"`
	// ThinkLevel is a reasoning effort ("low", "medium" or "high") for
	// models whose templates take one (gpt-oss); it implies Think.
	ThinkLevel string `json:"think_level,omitempty"`
	// Template is a jinja chat template to use instead of the model's own
	// ("" for the model's).
	Template string `json:"template,omitempty"`
	// Prompt, when set, is a prompt the server already rendered (for
	// example from a Modelfile's Go template): the runner generates from it
	// as is. When Messages are given too and the model (or Template) has a
	// jinja template, that template's chat format still parses the output
	// into content, thinking and tool calls and supplies the tool-call
	// grammar and stops; otherwise the output is plain content.
	Prompt string `json:"prompt,omitempty"`
	// Options are the sampling options; nil means DefaultSampling().
	Options *Sampling `json:"options,omitempty"`
	// NoStream asks for the answer in one event: the runner sends only the
	// final event, whose Content and Thinking are the whole answer's (what
	// the streamed pieces would add up to) and whose Message is as when
	// streaming. False (the default) streams pieces as they are generated.
	NoStream bool `json:"no_stream,omitempty"`
}

// ChatEvent is one line of a /chat stream: pieces of content and thinking
// while the model generates, and a final event with the parsed message.
type ChatEvent struct {
	// Content is the next piece of the answer's content.
	Content string `json:"content,omitempty"`
	// Thinking is the next piece of the answer's reasoning.
	Thinking string `json:"thinking,omitempty"`
	// Done marks the final event.
	Done bool `json:"done,omitempty"`
	// DoneReason is DoneStop or DoneLength on the final event.
	DoneReason string `json:"done_reason,omitempty"`
	// Truncated reports on the final event that the prompt did not fit in
	// the context and was cut (see CompletionEvent.Truncated).
	Truncated bool `json:"truncated,omitempty"`
	// Message is the complete parsed assistant message, on the final event:
	// content and thinking (also streamed before) and tool calls (only here).
	Message *Message `json:"message,omitempty"`
	Timings
	// Error is set on a final event when generation failed midway.
	Error string `json:"error,omitempty"`
	// Code is the error code when Error is set.
	Code string `json:"code,omitempty"`
}

// RenderResponse is the answer to POST /render: what /chat would feed the
// model.
type RenderResponse struct {
	// Prompt is the rendered prompt text.
	Prompt string `json:"prompt"`
	// Grammar is the grammar the output would be constrained with ("" for none).
	Grammar string `json:"grammar,omitempty"`
	// Format is llama.cpp's name of the chat format used to parse the output.
	Format string `json:"format,omitempty"`
	// PromptTokens is the number of tokens of Prompt.
	PromptTokens int `json:"prompt_tokens"`
}

// TokenizeRequest asks for the tokens of a text (POST /tokenize).
type TokenizeRequest struct {
	// Content is the text.
	Content string `json:"content"`
	// AddSpecial adds the BOS/EOS tokens the vocabulary asks for.
	AddSpecial bool `json:"add_special,omitempty"`
	// ParseSpecial turns special-token text (like "<s>") into special tokens.
	ParseSpecial bool `json:"parse_special,omitempty"`
}

// TokenizeResponse is the answer to POST /tokenize.
type TokenizeResponse struct {
	// Tokens are the token IDs.
	Tokens []int32 `json:"tokens"`
}

// DetokenizeRequest asks for the text of tokens (POST /detokenize).
type DetokenizeRequest struct {
	// Tokens are the token IDs.
	Tokens []int32 `json:"tokens"`
	// Special renders special tokens as their text.
	Special bool `json:"special,omitempty"`
}

// DetokenizeResponse is the answer to POST /detokenize.
type DetokenizeResponse struct {
	// Content is the text.
	Content string `json:"content"`
}

// EmbedRequest asks for embeddings (POST /embed).
type EmbedRequest struct {
	// Input are the texts to embed, one vector each.
	Input []string `json:"input"`
	// Truncate cuts inputs longer than the context to fit; when false such
	// an input fails the request with ErrContextLength.
	Truncate bool `json:"truncate,omitempty"`
	// Raw returns each vector as the model pools it; by default vectors
	// are L2-normalized, as Ollama's /api/embed returns them (its legacy
	// /api/embeddings returns them raw).
	Raw bool `json:"raw,omitempty"`
}

// EmbedResponse is the answer to POST /embed.
type EmbedResponse struct {
	// Embeddings holds one vector per input, in order (L2-normalized
	// unless the request was Raw).
	Embeddings [][]float32 `json:"embeddings"`
	// PromptEvalCount is the total number of input tokens evaluated.
	PromptEvalCount int `json:"prompt_eval_count,omitempty"`
	// Duration is the time the runner spent on the request.
	Duration time.Duration `json:"total_duration"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	// Error is a human-readable message.
	Error string `json:"error"`
	// Code is one of the Code* constants.
	Code string `json:"code,omitempty"`
}
