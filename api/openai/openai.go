// Package openai holds the request and response types of olm's
// OpenAI-compatible API: /v1/chat/completions (with streaming chunks,
// tools and response_format), /v1/completions, /v1/embeddings and
// /v1/models. Field names are OpenAI's.
package openai

import (
	"encoding/json"
	"fmt"
)

// Error is the body of every error of the OpenAI-compatible API:
// {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}.
type Error struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes an error.
type ErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// StringOrList is a field that is a string or a list of strings on the
// wire (stop, prompt, input).
type StringOrList []string

// UnmarshalJSON reads a string or a list of strings.
func (s *StringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StringOrList{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want a string or a list of strings, got %s", truncate(b))
	}
	*s = list
	return nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// StreamOptions are the options of a streamed answer.
type StreamOptions struct {
	// IncludeUsage adds a last chunk with token usage and no choices.
	IncludeUsage bool `json:"include_usage"`
}

// ResponseFormat constrains the output: {"type": "text"},
// {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is the json_schema of a ResponseFormat.
type JSONSchema struct {
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Content is a message's content: a string, or a list of parts
// ({"type":"text","text":...} or {"type":"image_url","image_url":{"url":...}})
// on the wire. It marshals as a string when it has only text.
type Content struct {
	// Text is the concatenated text parts.
	Text string
	// Images are the image_url URLs ("data:image/png;base64,..." or http URLs).
	Images []string
	// Null records a JSON null (an assistant message with only tool calls).
	Null bool
}

// ContentPart is one element of a list-form Content.
type ContentPart struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
}

// ImageURL is an image_url content part's value.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// UnmarshalJSON reads a string, null or a list of parts.
func (c *Content) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = Content{Null: true}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = Content{Text: s}
		return nil
	}
	var parts []ContentPart
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("content must be a string or a list of content parts")
	}
	*c = Content{}
	for _, p := range parts {
		switch p.Type {
		case "text":
			c.Text += p.Text
		case "image_url":
			if p.ImageURL == nil {
				return fmt.Errorf("content part image_url has no url")
			}
			c.Images = append(c.Images, p.ImageURL.URL)
		default:
			return fmt.Errorf("content part type %q is not supported (use text or image_url)", p.Type)
		}
	}
	return nil
}

// MarshalJSON writes a string (or null), or parts when there are images.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Null && c.Text == "" && len(c.Images) == 0 {
		return []byte("null"), nil
	}
	if len(c.Images) == 0 {
		return json.Marshal(c.Text)
	}
	parts := []ContentPart{{Type: "text", Text: c.Text}}
	for _, u := range c.Images {
		parts = append(parts, ContentPart{Type: "image_url", ImageURL: &ImageURL{URL: u}})
	}
	return json.Marshal(parts)
}

// Message is a chat message.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
	Name    string  `json:"name,omitempty"`
	// Reasoning is a thinking model's reasoning (Ollama's extension).
	Reasoning  string     `json:"reasoning,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// ToolCall is a function call in an assistant message.
type ToolCall struct {
	// Index is set in streamed deltas.
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name string `json:"name,omitempty"`
		// Arguments is a JSON object encoded as a string.
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// Tool is a function the model may call.
type Tool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
		Strict      *bool           `json:"strict,omitempty"`
	} `json:"function"`
}

// ChatCompletionRequest is the body of POST /v1/chat/completions.
type ChatCompletionRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Temperature         *float32        `json:"temperature,omitempty"`
	TopP                *float32        `json:"top_p,omitempty"`
	Seed                *int            `json:"seed,omitempty"`
	Stop                StringOrList    `json:"stop,omitempty"`
	FrequencyPenalty    *float32        `json:"frequency_penalty,omitempty"`
	PresencePenalty     *float32        `json:"presence_penalty,omitempty"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	ReasoningEffort     *string         `json:"reasoning_effort,omitempty"`
	N                   *int            `json:"n,omitempty"`
	User                string          `json:"user,omitempty"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ChatCompletion is the answer to a non-streamed chat completion.
type ChatCompletion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"` // "chat.completion"
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	SystemFingerprint string   `json:"system_fingerprint"`
	Choices           []Choice `json:"choices"`
	Usage             Usage    `json:"usage"`
}

// Choice is one answer of a ChatCompletion.
type Choice struct {
	Index        int     `json:"index"`
	Message      Message `json:"message"`
	FinishReason *string `json:"finish_reason"`
}

// ChatCompletionChunk is one server-sent event of a streamed chat completion.
type ChatCompletionChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"` // "chat.completion.chunk"
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []ChunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
}

// ChunkChoice is one choice of a chunk.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is the part of the message a chunk adds.
type Delta struct {
	Role      string     `json:"role,omitempty"`
	Content   string     `json:"content,omitempty"`
	Reasoning string     `json:"reasoning,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// CompletionRequest is the body of POST /v1/completions.
type CompletionRequest struct {
	Model            string         `json:"model"`
	Prompt           StringOrList   `json:"prompt"`
	Suffix           string         `json:"suffix,omitempty"`
	MaxTokens        *int           `json:"max_tokens,omitempty"`
	Temperature      *float32       `json:"temperature,omitempty"`
	TopP             *float32       `json:"top_p,omitempty"`
	Seed             *int           `json:"seed,omitempty"`
	Stop             StringOrList   `json:"stop,omitempty"`
	FrequencyPenalty *float32       `json:"frequency_penalty,omitempty"`
	PresencePenalty  *float32       `json:"presence_penalty,omitempty"`
	Stream           bool           `json:"stream,omitempty"`
	StreamOptions    *StreamOptions `json:"stream_options,omitempty"`
	Echo             bool           `json:"echo,omitempty"`
	N                *int           `json:"n,omitempty"`
	User             string         `json:"user,omitempty"`
}

// Completion is the answer to /v1/completions, and each streamed chunk of it.
type Completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"` // "text_completion"
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []CompletionChoice `json:"choices"`
	Usage             *Usage             `json:"usage,omitempty"`
}

// CompletionChoice is one answer of a Completion.
type CompletionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

// EmbeddingRequest is the body of POST /v1/embeddings.
type EmbeddingRequest struct {
	Model string       `json:"model"`
	Input StringOrList `json:"input"`
	// EncodingFormat is "float" (default) or "base64" (little-endian
	// float32 values, base64-encoded).
	EncodingFormat string `json:"encoding_format,omitempty"`
	Dimensions     int    `json:"dimensions,omitempty"`
	User           string `json:"user,omitempty"`
}

// EmbeddingList is the answer to /v1/embeddings.
type EmbeddingList struct {
	Object string      `json:"object"` // "list"
	Data   []Embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  EmbedUsage  `json:"usage"`
}

// Embedding is one vector; Embedding holds []float32 or a base64 string.
type Embedding struct {
	Object    string `json:"object"` // "embedding"
	Embedding any    `json:"embedding"`
	Index     int    `json:"index"`
}

// EmbedUsage counts an embedding request's tokens.
type EmbedUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// Model is one model of /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the answer to GET /v1/models.
type ModelList struct {
	Object string  `json:"object"` // "list"
	Data   []Model `json:"data"`
}
