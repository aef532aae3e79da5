//go:build cgo

package llama_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/runtime/llama"
)

// template loads a real chat template shipped with llama.cpp.
func template(t testing.TB, m *llama.Model, name string) *llama.ChatTemplates {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(llamaSrc(t), "models", "templates", name+".jinja"))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := llama.NewChatTemplates(m, string(src))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { ct.Close() })
	return ct
}

var weatherTool = llama.Tool{
	Name:        "get_weather",
	Description: "Get the current weather in a city",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
}

var question = []llama.ChatMessage{
	{Role: "system", Content: "Be brief."},
	{Role: "user", Content: "What is the weather in Paris?"},
}

func TestChatToolCalls(t *testing.T) {
	m := tiny(t)
	for _, tc := range []struct {
		template   string
		wantPrompt []string // substrings of the prompt
		wantSuffix string   // how the prompt ends
		output     string   // what a model of that family writes
		content    string   // expected content after parsing
	}{
		{
			template:   "meta-llama-Llama-3.1-8B-Instruct",
			wantPrompt: []string{"<|start_header_id|>system<|end_header_id|>", "Be brief.", `"name": "get_weather"`, "What is the weather in Paris?<|eot_id|>"},
			wantSuffix: "<|start_header_id|>assistant<|end_header_id|>\n\n",
			output:     `{"name": "get_weather", "parameters": {"city": "Paris"}}`,
		},
		{
			template:   "Qwen-Qwen2.5-7B-Instruct",
			wantPrompt: []string{"<|im_start|>system\nBe brief.", "<tools>", "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>"},
			wantSuffix: "<|im_start|>assistant\n",
			output:     "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
			content:    "Let me check.",
		},
		{
			template:   "mistralai-Mistral-Nemo-Instruct-2407",
			wantPrompt: []string{"[AVAILABLE_TOOLS]", "[INST]Be brief.\n\nWhat is the weather in Paris?[/INST]"},
			wantSuffix: "[/INST]",
			output:     `[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF123"}]`,
		},
	} {
		t.Run(tc.template, func(t *testing.T) {
			ct := template(t, m, tc.template)
			if !ct.Caps()["supports_tools"] {
				t.Errorf("caps %v: want supports_tools", ct.Caps())
			}
			p, err := ct.Apply(llama.ChatInput{Messages: question, Tools: []llama.Tool{weatherTool}, AddGenerationPrompt: true, Now: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.wantPrompt {
				if !strings.Contains(p.Prompt, s) {
					t.Errorf("prompt lacks %q:\n%s", s, p.Prompt)
				}
			}
			if !strings.HasSuffix(p.Prompt, tc.wantSuffix) {
				t.Errorf("prompt does not end with %q:\n%s", tc.wantSuffix, p.Prompt)
			}
			// llama 3.x is parsed without a grammar; the others have one
			if tc.content != "" || strings.Contains(tc.template, "Mistral") {
				if !strings.Contains(p.Grammar, "get_weather") {
					t.Errorf("no tool-call grammar: %q", p.Grammar)
				}
			}
			if p.GrammarLazy && len(p.GrammarTriggers) == 0 {
				t.Error("lazy grammar without triggers")
			}
			// the grammar and triggers are usable by a sampler
			var sp llama.SamplerParams
			p.SamplerGrammar(&sp)
			s, err := llama.NewSampler(m, sp)
			if err != nil {
				t.Fatalf("sampler with the template's grammar: %v", err)
			}
			s.Close()

			// parse what a model of this family writes; the parameters survive JSON
			var pp llama.ChatParseParams
			raw, _ := json.Marshal(p.Parse)
			if err := json.Unmarshal(raw, &pp); err != nil {
				t.Fatal(err)
			}
			msg, err := llama.ParseChat(tc.output, false, pp)
			if err != nil {
				t.Fatal(err)
			}
			if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Name != "get_weather" {
				t.Fatalf("ParseChat(%q) = %+v, want one get_weather call", tc.output, msg)
			}
			var args struct{ City string }
			if err := json.Unmarshal([]byte(msg.ToolCalls[0].Arguments), &args); err != nil || args.City != "Paris" {
				t.Errorf("arguments %q (%v), want city Paris", msg.ToolCalls[0].Arguments, err)
			}
			if strings.TrimSpace(msg.Content) != tc.content {
				t.Errorf("content %q, want %q", msg.Content, tc.content)
			}
			// plain text is content
			msg, err = llama.ParseChat("It is sunny.", false, pp)
			if err != nil || msg.Content != "It is sunny." || len(msg.ToolCalls) != 0 {
				t.Errorf("plain answer parsed to %+v, %v", msg, err)
			}

			// a whole tool round trip renders
			turn := append(append([]llama.ChatMessage{}, question...),
				llama.ChatMessage{Role: "assistant", ToolCalls: []llama.ToolCall{{ID: "abcDEF123", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
				llama.ChatMessage{Role: "tool", Content: `{"temperature": 21}`, ToolName: "get_weather", ToolCallID: "abcDEF123"},
			)
			p2, err := ct.Apply(llama.ChatInput{Messages: turn, Tools: []llama.Tool{weatherTool}, AddGenerationPrompt: true})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p2.Prompt, `temperature`) || !strings.Contains(p2.Prompt, "Paris") {
				t.Errorf("tool round trip prompt lacks the call or result:\n%s", p2.Prompt)
			}
		})
	}
}

func TestChatThinking(t *testing.T) {
	m := tiny(t)
	ct := template(t, m, "Qwen-Qwen3-0.6B")
	if !ct.Caps()["supports_thinking"] {
		t.Errorf("Qwen3 caps %v: want supports_thinking", ct.Caps())
	}
	p, err := ct.Apply(llama.ChatInput{Messages: question, AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if !p.SupportsThinking {
		t.Error("SupportsThinking false for Qwen3")
	}
	msg, err := llama.ParseChat("<think>\nThe user wants weather.\n</think>\n\nIt is sunny.", false, p.Parse)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(msg.Thinking) != "The user wants weather." || strings.TrimSpace(msg.Content) != "It is sunny." {
		t.Errorf("parsed %+v", msg)
	}
	// streaming: a partial answer parses without error
	if _, err := llama.ParseChat("<think>\nThe user", true, p.Parse); err != nil {
		t.Errorf("partial parse: %v", err)
	}
	// thinking left in the content when not extracted
	keep := p.Parse
	keep.ExtractThinking = false
	msg, err = llama.ParseChat("<think>\nhmm\n</think>\n\nIt is sunny.", false, keep)
	if err != nil || !strings.Contains(msg.Content, "hmm") {
		t.Errorf("ExtractThinking false: %+v, %v", msg, err)
	}
	off := false
	p, err = ct.Apply(llama.ChatInput{Messages: question, AddGenerationPrompt: true, EnableThinking: &off})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Prompt, "<think>\n\n</think>") {
		t.Errorf("thinking off: Qwen3 should prefill an empty think block:\n%s", p.Prompt)
	}
}

func TestChatApply(t *testing.T) {
	m := tiny(t)
	ct := template(t, m, "meta-llama-Llama-3.2-3B-Instruct")

	// JSON schema: a strict grammar the sampler accepts
	p, err := ct.Apply(llama.ChatInput{Messages: question, AddGenerationPrompt: true, JSONSchema: json.RawMessage(`{"type":"object","properties":{"c":{"type":"number"}},"required":["c"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Grammar == "" || p.GrammarLazy {
		t.Errorf("JSON schema: grammar %q lazy %v", p.Grammar, p.GrammarLazy)
	}
	if _, err := llama.NewSampler(m, llama.SamplerParams{Grammar: p.Grammar}); err != nil {
		t.Errorf("schema grammar: %v", err)
	}

	// a trailing assistant message is continued, not closed
	p, err = ct.Apply(llama.ChatInput{Messages: append(append([]llama.ChatMessage{}, question...), llama.ChatMessage{Role: "assistant", Content: "The weather is"}), AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.Prompt, "The weather is") {
		t.Errorf("continued prompt ends %q", p.Prompt[max(0, len(p.Prompt)-40):])
	}

	// template variables reach the template
	kw, err := llama.NewChatTemplates(m, "{{ greeting }} {{ n + 1 }}{% for m in messages %} {{ m.content }}{% endfor %}")
	if err != nil {
		t.Fatal(err)
	}
	defer kw.Close()
	p, err = kw.Apply(llama.ChatInput{Messages: question[1:], Kwargs: map[string]any{"greeting": "hi", "n": 41}})
	if err != nil || p.Prompt != "hi 42 What is the weather in Paris?" {
		t.Errorf("kwargs: %q, %v", p.Prompt, err)
	}

	// errors
	for name, in := range map[string]llama.ChatInput{
		"two assistants": {Messages: []llama.ChatMessage{{Role: "user", Content: "a"}, {Role: "assistant", Content: "b"}, {Role: "assistant", Content: "c"}}},
		"bad tool":       {Messages: question, Tools: []llama.Tool{{Name: "x", Parameters: json.RawMessage(`{bad`)}}},
		"nameless tool":  {Messages: question, Tools: []llama.Tool{{}}},
	} {
		if _, err := ct.Apply(in); !errors.Is(err, llama.ErrTemplate) {
			t.Errorf("%s: %v, want ErrTemplate", name, err)
		}
	}
	if _, err := ct.Apply(llama.ChatInput{Messages: question, JSONSchema: json.RawMessage(`{`)}); !errors.Is(err, llama.ErrSchema) {
		t.Errorf("bad schema: %v", err)
	}
	if _, err := llama.NewChatTemplates(m, "{% if %}"); !errors.Is(err, llama.ErrTemplate) {
		t.Errorf("broken template: %v", err)
	}
	if _, err := llama.NewChatTemplates(nil, ""); !errors.Is(err, llama.ErrTemplate) {
		t.Errorf("no model, no template: %v", err)
	}

	// the tiny model has no template: ChatML is the fallback
	def, err := llama.NewChatTemplates(m, "")
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	p, err = def.Apply(llama.ChatInput{Messages: question, AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Prompt, "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>") {
		t.Errorf("default template prompt:\n%s", p.Prompt)
	}
	// a template without a model
	nm, err := llama.NewChatTemplates(nil, "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}")
	if err != nil {
		t.Fatal(err)
	}
	defer nm.Close()
	p, err = nm.Apply(llama.ChatInput{Messages: question})
	if err != nil || p.Prompt != "[system] Be brief.\n[user] What is the weather in Paris?\n" {
		t.Errorf("custom template: %q, %v", p.Prompt, err)
	}
}

// TestChatToolCallGrammar checks that a template's forced tool-call
// grammar accepts a well-formed call to a declared tool and rejects a call
// to an undeclared one or with the wrong argument types.
func TestChatToolCallGrammar(t *testing.T) {
	m := tiny(t)
	for _, tc := range []struct{ template, good, unknown, badArgs string }{
		{"Qwen-Qwen2.5-7B-Instruct",
			"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
			"<tool_call>\n{\"name\": \"rm_rf\", ",
			"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": 42"},
		{"mistralai-Mistral-Nemo-Instruct-2407",
			`[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF123"}]`,
			`[TOOL_CALLS][{"name": "rm_rf", `,
			`[TOOL_CALLS][{"name": "get_weather", "arguments": {"town": `},
	} {
		t.Run(tc.template, func(t *testing.T) {
			ct := template(t, m, tc.template)
			p, err := ct.Apply(llama.ChatInput{Messages: question, Tools: []llama.Tool{weatherTool}, AddGenerationPrompt: true, ToolChoice: "required"})
			if err != nil {
				t.Fatal(err)
			}
			if p.GrammarLazy || p.Grammar == "" {
				t.Fatalf("required tool call: lazy %v, grammar %q", p.GrammarLazy, p.Grammar)
			}
			var sp llama.SamplerParams
			p.SamplerGrammar(&sp)
			base := sp.GrammarPrefill
			sp.GrammarPrefill = base + tc.good
			s, err := llama.NewSampler(m, sp)
			if err != nil {
				t.Fatalf("grammar rejects a valid call: %v", err)
			}
			s.Close()
			for _, bad := range []string{tc.unknown, tc.badArgs} {
				sp.GrammarPrefill = base + bad
				if _, err := llama.NewSampler(m, sp); !errors.Is(err, llama.ErrGrammar) {
					t.Errorf("grammar accepted %q: %v", bad, err)
				}
			}
			msg, err := llama.ParseChat(tc.good, false, p.Parse)
			if err != nil || len(msg.ToolCalls) != 1 {
				t.Errorf("ParseChat(%q) = %+v, %v", tc.good, msg, err)
			}
		})
	}
}

func FuzzParseChat(f *testing.F) {
	m := tiny(f)
	src, err := os.ReadFile(filepath.Join(llamaSrc(f), "models", "templates", "Qwen-Qwen3-0.6B.jinja"))
	if err != nil {
		f.Fatal(err)
	}
	ct, err := llama.NewChatTemplates(m, string(src))
	if err != nil {
		f.Fatal(err)
	}
	p, err := ct.Apply(llama.ChatInput{Messages: question, Tools: []llama.Tool{weatherTool}, AddGenerationPrompt: true})
	ct.Close()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "plain", "<think>a</think>b", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"x\"}}\n</tool_call>",
		"<tool_call>\n{\"name\": ", "<think>", "</think></think>", "<tool_call>{}</tool_call>", "\x00\xff"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, text string, partial bool) {
		msg, err := llama.ParseChat(text, partial, p.Parse)
		if err != nil {
			if !errors.Is(err, llama.ErrChatParse) {
				t.Fatalf("error %v does not wrap ErrChatParse", err)
			}
			return
		}
		for _, c := range msg.ToolCalls {
			if c.Name == "" {
				t.Errorf("tool call without a name from %q", text)
			}
		}
	})
}

func FuzzJSONSchemaToGrammar(f *testing.F) {
	tiny(f)
	for _, s := range []string{`{}`, `{"type":"object"}`, `{"type":"array","items":{"type":"integer"}}`, `{"enum":["a","b"]}`,
		`{"type":"string","pattern":"^[a-z]+$"}`, `{"$ref":"#/definitions/x","definitions":{"x":{"type":"number"}}}`, `[]`, `3`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, schema string) {
		g, err := llama.JSONSchemaToGrammar([]byte(schema))
		if err != nil {
			if !errors.Is(err, llama.ErrSchema) {
				t.Fatalf("error %v does not wrap ErrSchema", err)
			}
			return
		}
		if !strings.Contains(g, "root ::=") {
			t.Errorf("grammar for %q has no root:\n%s", schema, g)
		}
	})
}

func TestGrammarPrefill(t *testing.T) {
	m := tiny(t)
	prompt, _ := m.Tokenize("Q: ok?", true, false)
	for seed := int64(0); seed < 3; seed++ {
		s, err := llama.NewSampler(m, llama.SamplerParams{Temperature: 1, Seed: seed, Grammar: `root ::= "Answer: " ("yes" | "no")`, GrammarPrefill: "Answer: "})
		if err != nil {
			t.Fatal(err)
		}
		c := newContext(t, m, llama.ContextParams{NumCtx: 256})
		out := generate(t, c, s, prompt, 8)
		s.Close()
		if text, _ := m.Detokenize(out, false, false); text != "yes" && text != "no" {
			t.Errorf("after the prefill the grammar allows only yes/no, got %q", text)
		}
	}
	if _, err := llama.NewSampler(m, llama.SamplerParams{Grammar: `root ::= "A" "b"`, GrammarPrefill: "X"}); !errors.Is(err, llama.ErrGrammar) {
		t.Errorf("prefill the grammar rejects: %v", err)
	}
}
