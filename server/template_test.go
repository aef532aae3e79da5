package server

import (
	"errors"
	"testing"

	"github.com/olmhq/olm/api"
)

func TestRenderPrompt(t *testing.T) {
	tests := []struct {
		name, tmpl string
		v          templateValues
		want       string
	}{
		{"system and prompt", "{{ if .System }}<<SYS>>{{ .System }}<</SYS>>{{ end }}[INST] {{ .Prompt }} [/INST]{{ .Response }}</s>",
			templateValues{System: "S", Prompt: "P"}, "<<SYS>>S<</SYS>>[INST] P [/INST]"},
		{"no system", "{{ if .System }}<<SYS>>{{ .System }}<</SYS>>{{ end }}[INST] {{ .Prompt }} [/INST]",
			templateValues{Prompt: "P"}, "[INST] P [/INST]"},
		{"suffix", "<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>", templateValues{Prompt: "a", Suffix: "b"}, "<PRE> a <SUF>b <MID>"},
		{"messages template from a prompt", "{{ range .Messages }}<|{{ .Role }}|>{{ .Content }}{{ end }}<|assistant|>",
			templateValues{System: "S", Prompt: "P"}, "<|system|>S<|user|>P<|assistant|>"},
		{"json func", `{{ json .Prompt }}`, templateValues{Prompt: `a"b`}, `"a\"b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderPrompt(tt.tmpl, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderChat(t *testing.T) {
	msgs := []api.Message{
		{Role: "system", Content: "S"},
		{Role: "user", Content: "u1"},
		{Role: "assistant", Content: "a1"},
		{Role: "user", Content: "u2"},
	}
	got, err := renderChat("{{ if .System }}[S]{{ .System }}{{ end }}[U]{{ .Prompt }}[A]{{ .Response }}[E]", msgs, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[S]S[U]u1[A]a1[E][U]u2[A]"; got != want {
		t.Errorf("one-turn template: got %q, want %q", got, want)
	}
	tools := []api.Tool{{Type: "function", Function: api.ToolFunction{Name: "f"}}}
	got, err = renderChat("{{ if .Tools }}[T]{{ range .Tools }}{{ .Function.Name }}{{ end }}{{ end }}{{ range .Messages }}<{{ .Role }}>{{ .Content }}{{ end }}<assistant>", msgs, tools, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[T]f<system>S<user>u1<assistant>a1<user>u2<assistant>"; got != want {
		t.Errorf("messages template: got %q, want %q", got, want)
	}
}

func TestTemplateErrors(t *testing.T) {
	if _, err := renderPrompt("{{ .Prompt ", templateValues{}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("parse error = %v", err)
	}
	if _, err := renderPrompt("{{ .Nope.Deeper }}", templateValues{}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("exec error = %v", err)
	}
}
