package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// GenerateRequest is the body of POST /api/generate.
type GenerateRequest struct {
	// Model is the model name (required).
	Model string `json:"model"`
	// Prompt is the prompt; an empty prompt only loads the model (or, with
	// KeepAlive 0, unloads it).
	Prompt string `json:"prompt"`
	// Suffix is the text after the response (fill-in-the-middle models).
	Suffix string `json:"suffix,omitempty"`
	// System overrides the model's system message.
	System string `json:"system,omitempty"`
	// Template overrides the model's prompt template (Go text/template
	// form with .System, .Prompt, .Response, .Suffix, .Messages, .Tools).
	Template string `json:"template,omitempty"`
	// Context is the context returned by an earlier response (deprecated).
	Context []int `json:"context,omitempty"`
	// Stream, when false, asks for one response object instead of a
	// stream; nil means true.
	Stream *bool `json:"stream,omitempty"`
	// Raw sends Prompt to the model with no templating; no context is returned.
	Raw bool `json:"raw,omitempty"`
	// Format is "json" or a JSON schema the output must match.
	Format json.RawMessage `json:"format,omitempty"`
	// Images are images for multimodal models (base64 in JSON).
	Images []ImageData `json:"images,omitempty"`
	// KeepAlive is how long the model stays loaded after the request
	// (default 5m, or the server's OLM_KEEP_ALIVE).
	KeepAlive *Duration `json:"keep_alive,omitempty"`
	// Think turns reasoning on or off for thinking models.
	Think *ThinkValue `json:"think,omitempty"`
	// Options override the model's parameters for this request.
	Options *Options `json:"options,omitempty"`
}

// ImageData is an image file; JSON carries it base64-encoded.
type ImageData []byte

// ThinkValue is the "think" field: true/false, or a level ("high",
// "medium", "low") that olm treats as true.
type ThinkValue struct {
	// Value is a bool or a level string.
	Value any
}

// Enabled reports whether thinking is asked for.
func (t *ThinkValue) Enabled() bool {
	if t == nil {
		return false
	}
	switch v := t.Value.(type) {
	case bool:
		return v
	case string:
		return v != "" && v != "none"
	}
	return false
}

// MarshalJSON writes the bool or the level.
func (t ThinkValue) MarshalJSON() ([]byte, error) { return json.Marshal(t.Value) }

// UnmarshalJSON reads a bool or one of "high", "medium", "low".
func (t *ThinkValue) UnmarshalJSON(b []byte) error {
	var v bool
	if err := json.Unmarshal(b, &v); err == nil {
		t.Value = v
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("think must be true, false, \"high\", \"medium\" or \"low\", got %s", b)
	}
	switch s {
	case "high", "medium", "low":
		t.Value = s
		return nil
	}
	return fmt.Errorf("think must be true, false, \"high\", \"medium\" or \"low\", got %q", s)
}

// Metrics are the counters of a finished generation; durations are in
// nanoseconds on the wire.
type Metrics struct {
	// TotalDuration is the time spent on the whole request.
	TotalDuration time.Duration `json:"total_duration,omitempty"`
	// LoadDuration is the time spent loading the model (near zero when it
	// was already loaded).
	LoadDuration time.Duration `json:"load_duration,omitempty"`
	// PromptEvalCount is the number of prompt tokens evaluated.
	PromptEvalCount int `json:"prompt_eval_count,omitempty"`
	// PromptEvalDuration is the time spent evaluating the prompt.
	PromptEvalDuration time.Duration `json:"prompt_eval_duration,omitempty"`
	// EvalCount is the number of tokens generated.
	EvalCount int `json:"eval_count,omitempty"`
	// EvalDuration is the time spent generating.
	EvalDuration time.Duration `json:"eval_duration,omitempty"`
}

// GenerateResponse is one object of a /api/generate stream, or the whole
// answer with "stream": false.
type GenerateResponse struct {
	// Model is the model name as requested.
	Model string `json:"model"`
	// CreatedAt is when this object was made.
	CreatedAt time.Time `json:"created_at"`
	// Response is the next piece of text (the whole text when not
	// streaming; empty on the final streamed object).
	Response string `json:"response"`
	// Thinking is the next piece of the model's reasoning.
	Thinking string `json:"thinking,omitempty"`
	// Done marks the final object.
	Done bool `json:"done"`
	// DoneReason is "stop", "length", "load" or "unload" on the final object.
	DoneReason string `json:"done_reason,omitempty"`
	// Context encodes the conversation, to send back in the next request.
	Context []int `json:"context,omitempty"`
	Metrics
}

// Message is a chat message.
type Message struct {
	// Role is "system", "user", "assistant" or "tool".
	Role string `json:"role"`
	// Content is the message text.
	Content string `json:"content"`
	// Thinking is an assistant's reasoning.
	Thinking string `json:"thinking,omitempty"`
	// Images are images attached to the message (base64 in JSON).
	Images []ImageData `json:"images,omitempty"`
	// ToolCalls are the tool calls of an assistant message.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolName is the tool whose result a "tool" message carries.
	ToolName string `json:"tool_name,omitempty"`
	// ToolCallID is the ID of the call a "tool" message answers (set by the
	// OpenAI-compatible API; Ollama clients leave it out).
	ToolCallID string `json:"tool_call_id,omitempty"`
}

// ToolCall is a function call made by the model.
type ToolCall struct {
	// ID is the call's ID when the model's format has one.
	ID string `json:"id,omitempty"`
	// Function is the call.
	Function ToolCallFunction `json:"function"`
}

// ToolCallFunction names the function and its arguments.
type ToolCallFunction struct {
	// Index is the position of the call among the message's calls.
	Index int `json:"index,omitempty"`
	// Name is the function's name.
	Name string `json:"name"`
	// Arguments are the call's arguments.
	Arguments map[string]any `json:"arguments"`
}

// Tool describes a function the model may call.
type Tool struct {
	// Type is "function".
	Type string `json:"type"`
	// Function is the function's description.
	Function ToolFunction `json:"function"`
}

// ToolFunction is a function's name, description and JSON-schema
// parameters.
type ToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ChatRequest is the body of POST /api/chat.
type ChatRequest struct {
	// Model is the model name (required).
	Model string `json:"model"`
	// Messages is the conversation; empty only loads (or, with KeepAlive 0,
	// unloads) the model.
	Messages []Message `json:"messages"`
	// Stream, when false, asks for one response object; nil means true.
	Stream *bool `json:"stream,omitempty"`
	// Format is "json" or a JSON schema the output must match.
	Format json.RawMessage `json:"format,omitempty"`
	// KeepAlive is how long the model stays loaded after the request.
	KeepAlive *Duration `json:"keep_alive,omitempty"`
	// Tools are functions the model may call.
	Tools []Tool `json:"tools,omitempty"`
	// Think turns reasoning on or off for thinking models.
	Think *ThinkValue `json:"think,omitempty"`
	// Options override the model's parameters for this request.
	Options *Options `json:"options,omitempty"`
}

// ChatResponse is one object of a /api/chat stream, or the whole answer
// with "stream": false.
type ChatResponse struct {
	// Model is the model name as requested.
	Model string `json:"model"`
	// CreatedAt is when this object was made.
	CreatedAt time.Time `json:"created_at"`
	// Message is the next piece of the assistant's message (the whole
	// message when not streaming).
	Message Message `json:"message"`
	// DoneReason is "stop", "length", "load" or "unload" on the final object.
	DoneReason string `json:"done_reason,omitempty"`
	// Done marks the final object.
	Done bool `json:"done"`
	Metrics
}

// LicenseList is CreateRequest.License: a string or a list of strings on
// the wire.
type LicenseList []string

// UnmarshalJSON reads a string or a list of strings.
func (l *LicenseList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = LicenseList{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("license must be a string or a list of strings")
	}
	*l = list
	return nil
}

// CreateRequest is the body of POST /api/create.
type CreateRequest struct {
	// Model is the name of the model to create (required).
	Model string `json:"model"`
	// From is an existing model to start from.
	From string `json:"from,omitempty"`
	// Files maps file names to blob digests (sha256:...) of GGUF or
	// safetensors files uploaded with POST /api/blobs/:digest.
	Files map[string]string `json:"files,omitempty"`
	// Adapters maps file names to blob digests of LoRA adapters.
	Adapters map[string]string `json:"adapters,omitempty"`
	// Template is the prompt template.
	Template string `json:"template,omitempty"`
	// License is the license text or texts.
	License LicenseList `json:"license,omitempty"`
	// System is the system message.
	System string `json:"system,omitempty"`
	// Parameters are model parameters (Modelfile PARAMETER names).
	Parameters map[string]any `json:"parameters,omitempty"`
	// Messages are a conversation stored with the model.
	Messages []Message `json:"messages,omitempty"`
	// Stream, when false, asks for one response object; nil means true.
	Stream *bool `json:"stream,omitempty"`
	// Quantize is the quantization to apply ("q4_K_M", "q8_0", ...).
	Quantize string `json:"quantize,omitempty"`
	// Modelfile is a whole Modelfile (older clients send this instead of
	// the fields above).
	Modelfile string `json:"modelfile,omitempty"`
	// Name is the deprecated spelling of Model.
	Name string `json:"name,omitempty"`
}

// ProgressResponse is one object of a /api/create, /api/pull or /api/push
// stream.
type ProgressResponse struct {
	// Status says what is happening ("pulling manifest",
	// "downloading sha256:...", "success", ...).
	Status string `json:"status"`
	// Digest is the layer being transferred.
	Digest string `json:"digest,omitempty"`
	// Total is the layer's size in bytes.
	Total int64 `json:"total,omitempty"`
	// Completed is the number of bytes transferred so far.
	Completed int64 `json:"completed,omitempty"`
}

// ModelDetails summarizes a model's weights.
type ModelDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

// ListResponse is the answer to GET /api/tags.
type ListResponse struct {
	Models []ListModelResponse `json:"models"`
}

// ListModelResponse is one local model.
type ListModelResponse struct {
	// Name and Model are both the model's name ("llama3.2:latest").
	Name  string `json:"name"`
	Model string `json:"model"`
	// ModifiedAt is when the model was last created or pulled.
	ModifiedAt time.Time `json:"modified_at"`
	// Size is the total size of the model's layers in bytes.
	Size int64 `json:"size"`
	// Digest is the manifest's sha256 (hex, without the "sha256:" prefix).
	Digest  string       `json:"digest"`
	Details ModelDetails `json:"details"`
}

// ShowRequest is the body of POST /api/show.
type ShowRequest struct {
	// Model is the model name.
	Model string `json:"model"`
	// Verbose returns large metadata arrays (tokens, merges) in full.
	Verbose bool `json:"verbose,omitempty"`
	// Name is the deprecated spelling of Model.
	Name string `json:"name,omitempty"`
	// System and Template are accepted for compatibility and ignored.
	System   string `json:"system,omitempty"`
	Template string `json:"template,omitempty"`
}

// ShowResponse is the answer to POST /api/show.
type ShowResponse struct {
	License       string         `json:"license,omitempty"`
	Modelfile     string         `json:"modelfile,omitempty"`
	Parameters    string         `json:"parameters,omitempty"`
	Template      string         `json:"template,omitempty"`
	System        string         `json:"system,omitempty"`
	Details       ModelDetails   `json:"details"`
	Messages      []Message      `json:"messages,omitempty"`
	ModelInfo     map[string]any `json:"model_info,omitempty"`
	ProjectorInfo map[string]any `json:"projector_info,omitempty"`
	Capabilities  []string       `json:"capabilities,omitempty"`
	ModifiedAt    time.Time      `json:"modified_at"`
}

// CopyRequest is the body of POST /api/copy.
type CopyRequest struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// DeleteRequest is the body of DELETE /api/delete.
type DeleteRequest struct {
	// Model is the model to delete.
	Model string `json:"model"`
	// Name is the deprecated spelling of Model.
	Name string `json:"name,omitempty"`
}

// PullRequest is the body of POST /api/pull.
type PullRequest struct {
	// Model is the model to pull.
	Model string `json:"model"`
	// Insecure allows plain HTTP and self-signed TLS.
	Insecure bool `json:"insecure,omitempty"`
	// Stream, when false, asks for one response object; nil means true.
	Stream *bool `json:"stream,omitempty"`
	// Name is the deprecated spelling of Model.
	Name string `json:"name,omitempty"`
}

// PushRequest is the body of POST /api/push.
type PushRequest struct {
	// Model is the model to push.
	Model string `json:"model"`
	// Insecure allows plain HTTP and self-signed TLS.
	Insecure bool `json:"insecure,omitempty"`
	// Stream, when false, asks for one response object; nil means true.
	Stream *bool `json:"stream,omitempty"`
	// Name is the deprecated spelling of Model.
	Name string `json:"name,omitempty"`
}

// EmbedInput is EmbedRequest.Input: a string or a list of strings on the
// wire.
type EmbedInput []string

// UnmarshalJSON reads a string or a list of strings.
func (e *EmbedInput) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*e = EmbedInput{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("input must be a string or a list of strings")
	}
	*e = list
	return nil
}

// EmbedRequest is the body of POST /api/embed.
type EmbedRequest struct {
	// Model is the model name.
	Model string `json:"model"`
	// Input is the text or texts to embed.
	Input EmbedInput `json:"input"`
	// Truncate cuts inputs to the context length (nil means true); with
	// false an input that does not fit is an error.
	Truncate *bool `json:"truncate,omitempty"`
	// Dimensions, when > 0, shortens each vector to this many leading
	// values and renormalizes it.
	Dimensions int `json:"dimensions,omitempty"`
	// KeepAlive is how long the model stays loaded after the request.
	KeepAlive *Duration `json:"keep_alive,omitempty"`
	// Options override the model's parameters.
	Options *Options `json:"options,omitempty"`
}

// EmbedResponse is the answer to POST /api/embed.
type EmbedResponse struct {
	Model           string        `json:"model"`
	Embeddings      [][]float32   `json:"embeddings"`
	TotalDuration   time.Duration `json:"total_duration,omitempty"`
	LoadDuration    time.Duration `json:"load_duration,omitempty"`
	PromptEvalCount int           `json:"prompt_eval_count,omitempty"`
}

// EmbeddingRequest is the body of the legacy POST /api/embeddings.
type EmbeddingRequest struct {
	Model     string    `json:"model"`
	Prompt    string    `json:"prompt"`
	KeepAlive *Duration `json:"keep_alive,omitempty"`
	Options   *Options  `json:"options,omitempty"`
}

// EmbeddingResponse is the answer to POST /api/embeddings.
type EmbeddingResponse struct {
	Embedding []float64 `json:"embedding"`
}

// ProcessResponse is the answer to GET /api/ps.
type ProcessResponse struct {
	Models []ProcessModelResponse `json:"models"`
}

// ProcessModelResponse is one loaded model.
type ProcessModelResponse struct {
	Name    string       `json:"name"`
	Model   string       `json:"model"`
	Size    int64        `json:"size"`
	Digest  string       `json:"digest"`
	Details ModelDetails `json:"details"`
	// ExpiresAt is when the model will be unloaded if unused.
	ExpiresAt time.Time `json:"expires_at"`
	// SizeVRAM is the part of Size held in GPU memory.
	SizeVRAM int64 `json:"size_vram"`
	// ContextLength is the context window of each slot, in tokens.
	ContextLength int `json:"context_length,omitempty"`
}

// VersionResponse is the answer to GET /api/version.
type VersionResponse struct {
	Version string `json:"version"`
}
