//go:build cgo

package llama

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
)

// ChatTemplates is a model's jinja chat template(s), compiled by llama.cpp's
// common library (which also knows each model family's tool-call and
// reasoning format). Use it from one goroutine at a time.
type ChatTemplates struct {
	closer
	m *Model
	t *C.olm_chat_templates
}

// NewChatTemplates compiles the chat template of m, or override when it is
// not "" (a jinja template, e.g. from a Modelfile or a Docker model
// artifact). m may be nil when override is given; BOS/EOS then render as "".
// A model without a template falls back to ChatML. A template that does
// not parse gives ErrTemplate.
func NewChatTemplates(m *Model, override string) (*ChatTemplates, error) {
	if m == nil && override == "" {
		return nil, fmt.Errorf("%w: no model and no template", ErrTemplate)
	}
	var mp *C.struct_llama_model
	if m != nil {
		if err := m.acquire(); err != nil {
			return nil, err
		}
		mp = m.p
	}
	var cov *C.char
	if override != "" {
		cov = cstr(override)
		defer free(cov)
	}
	var cerr *C.char
	t := C.olm_chat_templates_init(mp, cov, &cerr)
	if t == nil {
		if m != nil {
			m.release()
		}
		return nil, takeErr(ErrTemplate, cerr)
	}
	ct := &ChatTemplates{m: m, t: t}
	runtime.SetFinalizer(ct, (*ChatTemplates).Close)
	return ct, nil
}

// Close frees the templates. It is idempotent.
func (t *ChatTemplates) Close() error {
	if t == nil || !t.markClosed() {
		return nil
	}
	runtime.SetFinalizer(t, nil)
	C.olm_chat_templates_free(t.t)
	t.t = nil
	if t.m != nil {
		t.m.release()
	}
	return nil
}

// Source returns the jinja source of the default template.
func (t *ChatTemplates) Source() string {
	if t == nil || t.t == nil {
		return ""
	}
	return takeString(C.olm_chat_templates_source(t.t))
}

// Caps returns what the template supports, e.g. "supports_tools",
// "supports_tool_calls", "supports_system_role", "supports_thinking".
func (t *ChatTemplates) Caps() map[string]bool {
	if t == nil || t.t == nil {
		return nil
	}
	out := map[string]bool{}
	_ = json.Unmarshal([]byte(takeString(C.olm_chat_templates_caps(t.t))), &out)
	return out
}

// OpenAI-shaped JSON that common_chat_msgs_parse_oaicompat reads.
type oaiFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Arguments   *string         `json:"arguments,omitempty"`
}

type oaiToolCall struct {
	Type     string      `json:"type"`
	ID       string      `json:"id,omitempty"`
	Function oaiFunction `json:"function"`
}

type oaiMessage struct {
	Role             string        `json:"role"`
	Content          string        `json:"content"`
	ReasoningContent string        `json:"reasoning_content,omitempty"`
	ToolCalls        []oaiToolCall `json:"tool_calls,omitempty"`
	Name             string        `json:"name,omitempty"`
	ToolCallID       string        `json:"tool_call_id,omitempty"`
}

type oaiTool struct {
	Type     string      `json:"type"`
	Function oaiFunction `json:"function"`
}

type applyInput struct {
	Messages            []oaiMessage      `json:"messages"`
	Tools               []oaiTool         `json:"tools,omitempty"`
	ToolChoice          string            `json:"tool_choice,omitempty"`
	ParallelToolCalls   bool              `json:"parallel_tool_calls"`
	JSONSchema          string            `json:"json_schema,omitempty"`
	Grammar             string            `json:"grammar,omitempty"`
	AddGenerationPrompt bool              `json:"add_generation_prompt"`
	ContinueFinal       bool              `json:"continue_final"`
	EnableThinking      bool              `json:"enable_thinking"`
	ExtractThinking     bool              `json:"extract_thinking"`
	Kwargs              map[string]string `json:"kwargs,omitempty"`
	Now                 int64             `json:"now,omitempty"`
}

type applyOutput struct {
	Prompt          string `json:"prompt"`
	Grammar         string `json:"grammar"`
	GrammarLazy     bool   `json:"grammar_lazy"`
	GrammarTriggers []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
		Token int32  `json:"token"`
	} `json:"grammar_triggers"`
	PreservedTokens  []string `json:"preserved_tokens"`
	AdditionalStops  []string `json:"additional_stops"`
	Format           int      `json:"format"`
	FormatName       string   `json:"format_name"`
	Parser           string   `json:"parser"`
	GenerationPrompt string   `json:"generation_prompt"`
	SupportsThinking bool     `json:"supports_thinking"`
	ThinkingStartTag string   `json:"thinking_start_tag"`
	ThinkingEndTags  []string `json:"thinking_end_tags"`
}

// Apply renders the conversation in. It returns the prompt, the grammar
// and triggers that make tool calls or JSON-schema answers well-formed, the
// extra stop strings, and the parameters ParseChat needs for the answer.
// Bad input (a tool with invalid JSON, two trailing assistant messages, a
// template error) gives ErrTemplate.
func (t *ChatTemplates) Apply(in ChatInput) (*ChatPrompt, error) {
	if t == nil || t.t == nil {
		return nil, ErrClosed
	}
	ai := applyInput{
		Messages:            make([]oaiMessage, 0, len(in.Messages)),
		ToolChoice:          in.ToolChoice,
		ParallelToolCalls:   in.ParallelToolCalls,
		Grammar:             in.Grammar,
		AddGenerationPrompt: in.AddGenerationPrompt,
		EnableThinking:      in.EnableThinking == nil || *in.EnableThinking,
		ExtractThinking:     true,
	}
	if ai.ToolChoice == "" {
		ai.ToolChoice = "auto"
	}
	for _, m := range in.Messages {
		om := oaiMessage{Role: m.Role, Content: m.Content, ReasoningContent: m.Thinking, Name: m.ToolName, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			args := tc.Arguments
			if args == "" {
				args = "{}"
			}
			om.ToolCalls = append(om.ToolCalls, oaiToolCall{Type: "function", ID: tc.ID, Function: oaiFunction{Name: tc.Name, Arguments: &args}})
		}
		ai.Messages = append(ai.Messages, om)
	}
	if n := len(in.Messages); n > 0 && in.Messages[n-1].Role == "assistant" {
		if n > 1 && in.Messages[n-2].Role == "assistant" {
			return nil, fmt.Errorf("%w: two assistant messages at the end of the conversation", ErrTemplate)
		}
		if len(in.Messages[n-1].ToolCalls) == 0 {
			ai.ContinueFinal = true
			ai.AddGenerationPrompt = false
		}
	}
	for _, tool := range in.Tools {
		if tool.Name == "" {
			return nil, fmt.Errorf("%w: a tool has no name", ErrTemplate)
		}
		if len(tool.Parameters) > 0 && !json.Valid(tool.Parameters) {
			return nil, fmt.Errorf("%w: tool %q: parameters are not valid JSON", ErrTemplate, tool.Name)
		}
		ai.Tools = append(ai.Tools, oaiTool{Type: "function", Function: oaiFunction{Name: tool.Name, Description: tool.Description, Parameters: tool.Parameters}})
	}
	if len(in.JSONSchema) > 0 {
		if !json.Valid(in.JSONSchema) {
			return nil, fmt.Errorf("%w: the JSON schema is not valid JSON", ErrSchema)
		}
		ai.JSONSchema = string(in.JSONSchema)
		if s := string(in.JSONSchema); s == "{}" {
			ai.JSONSchema = `{"type":"object"}`
		}
	}
	if len(in.Kwargs) > 0 {
		ai.Kwargs = make(map[string]string, len(in.Kwargs))
		for k, v := range in.Kwargs {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("%w: template variable %q: %w", ErrTemplate, k, err)
			}
			ai.Kwargs[k] = string(b)
		}
	}
	if !in.Now.IsZero() {
		ai.Now = in.Now.Unix()
	}
	js, err := json.Marshal(ai)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	cin := cstr(string(js))
	defer free(cin)
	var cerr *C.char
	res := C.olm_chat_apply(t.t, cin, &cerr)
	if res == nil {
		return nil, takeErr(ErrTemplate, cerr)
	}
	var out applyOutput
	if err := json.Unmarshal([]byte(takeString(res)), &out); err != nil {
		return nil, fmt.Errorf("%w: shim output: %w", ErrTemplate, err)
	}
	cp := &ChatPrompt{
		Prompt:          out.Prompt,
		Grammar:         out.Grammar,
		GrammarLazy:     out.GrammarLazy,
		PreservedTokens: out.PreservedTokens,
		AdditionalStops: out.AdditionalStops,
		Parse: ChatParseParams{
			Format:           ChatFormat(out.Format),
			FormatName:       out.FormatName,
			Parser:           out.Parser,
			GenerationPrompt: out.GenerationPrompt,
			ExtractThinking:  true,
			ThinkingStartTag: out.ThinkingStartTag,
			ParseToolCalls:   len(in.Tools) > 0 && in.ToolChoice != "none",
		},
		SupportsThinking: out.SupportsThinking,
		ThinkingStartTag: out.ThinkingStartTag,
		ThinkingEndTags:  out.ThinkingEndTags,
	}
	if len(out.ThinkingEndTags) > 0 {
		cp.Parse.ThinkingEndTag = out.ThinkingEndTags[0]
	}
	for _, g := range out.GrammarTriggers {
		tr := GrammarTrigger{Value: g.Value}
		switch g.Type {
		case "token":
			tr.Type, tr.Token = TriggerToken, Token(g.Token)
		case "pattern":
			tr.Type = TriggerPattern
		case "pattern_full":
			tr.Type = TriggerPatternFull
		default:
			tr.Type = TriggerWord
		}
		cp.GrammarTriggers = append(cp.GrammarTriggers, tr)
	}
	return cp, nil
}

// ParseChat splits model output text into content, thinking and tool calls
// with the parser that Apply chose. partial is true while the output is
// still streaming (incomplete tool calls are then not errors). Malformed
// output gives ErrChatParse.
func ParseChat(text string, partial bool, p ChatParseParams) (ChatMessage, error) {
	pj, err := json.Marshal(map[string]any{
		"format": int(p.Format), "parser": p.Parser, "generation_prompt": p.GenerationPrompt,
		"extract_thinking": p.ExtractThinking, "parse_tool_calls": p.ParseToolCalls,
	})
	if err != nil {
		return ChatMessage{}, fmt.Errorf("%w: %w", ErrChatParse, err)
	}
	ct := cstr(text)
	defer free(ct)
	cp := cstr(string(pj))
	defer free(cp)
	var cerr *C.char
	res := C.olm_chat_parse(ct, C.bool(partial), cp, &cerr)
	if res == nil {
		return ChatMessage{}, takeErr(ErrChatParse, cerr)
	}
	var out struct {
		Role             string     `json:"role"`
		Content          string     `json:"content"`
		ReasoningContent string     `json:"reasoning_content"`
		ToolCalls        []ToolCall `json:"tool_calls"`
	}
	if err := json.Unmarshal([]byte(takeString(res)), &out); err != nil {
		return ChatMessage{}, fmt.Errorf("%w: shim output: %w", ErrChatParse, err)
	}
	msg := ChatMessage{Role: out.Role, Content: out.Content, Thinking: out.ReasoningContent, ToolCalls: out.ToolCalls}
	if !p.ExtractThinking && msg.Thinking != "" {
		start, end := p.ThinkingStartTag, p.ThinkingEndTag
		if start == "" {
			start = "<think>"
		}
		if end == "" {
			end = "</think>"
		}
		msg.Content = start + msg.Thinking + end + msg.Content
		msg.Thinking = ""
	}
	return msg, nil
}

// JSONSchemaToGrammar converts a JSON schema (JSON text) into a GBNF grammar
// whose sentences are the JSON documents the schema accepts. An invalid or
// unsupported schema gives ErrSchema.
func JSONSchemaToGrammar(schema []byte) (string, error) {
	if !json.Valid(schema) {
		return "", fmt.Errorf("%w: not valid JSON", ErrSchema)
	}
	cs := cstr(string(schema))
	defer free(cs)
	var cerr *C.char
	res := C.olm_json_schema_to_grammar(cs, &cerr)
	if res == nil {
		return "", takeErr(ErrSchema, cerr)
	}
	return takeString(res), nil
}

var jsonGrammar = sync.OnceValues(func() (string, error) {
	return JSONSchemaToGrammar([]byte(`{"type":"object"}`))
})

// JSONGrammar returns a grammar for any JSON object: what Ollama's
// `format: "json"` means.
func JSONGrammar() (string, error) { return jsonGrammar() }
