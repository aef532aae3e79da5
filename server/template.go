package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/olmhq/olm/api"
)

// templateValues are the names a Modelfile TEMPLATE can use, as in Ollama.
type templateValues struct {
	// System is the system message.
	System string
	// Prompt is the user's prompt (the last user message for chat).
	Prompt string
	// Response is the assistant's answer; empty for the turn being generated.
	Response string
	// Suffix is the text after the insertion point (fill-in-the-middle).
	Suffix string
	// Messages is the whole conversation.
	Messages []templateMessage
	// Tools are the functions the model may call.
	Tools []api.Tool
	// Think says whether reasoning is asked for.
	Think bool
}

// templateMessage is a message as templates see it.
type templateMessage struct {
	Role      string
	Content   string
	Thinking  string
	ToolCalls []api.ToolCall
	ToolName  string
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"currentDate": func() string { return time.Now().Format("2006-01-02") },
}

// parseTemplate parses a Modelfile TEMPLATE.
func parseTemplate(text string) (*template.Template, error) {
	t, err := template.New("TEMPLATE").Option("missingkey=zero").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w: template: %v", ErrBadRequest, err)
	}
	return t, nil
}

// CheckTemplate checks that text parses as a prompt template the server
// can render (a Modelfile TEMPLATE: Go's text/template syntax with the
// json and currentDate functions), so that a model is not created with a
// template every later request would fail on. The error wraps
// ErrBadRequest.
func CheckTemplate(text string) error {
	_, err := parseTemplate(text)
	return err
}

// usesField reports whether the template refers to .name anywhere.
func usesField(t *template.Template, name string) bool {
	found := false
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		if found || n == nil {
			return
		}
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(x.Pipe)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				walk(a)
			}
		case *parse.FieldNode:
			if len(x.Ident) > 0 && x.Ident[0] == name {
				found = true
			}
		case *parse.IfNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.RangeNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.WithNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		}
	}
	if t.Tree != nil {
		walk(t.Tree.Root)
	}
	return found
}

// upToResponse returns a copy of t whose top-level nodes stop after the
// first one that uses .Response, so the rendered prompt ends where the
// model's answer begins.
func upToResponse(t *template.Template) (*template.Template, error) {
	c, err := t.Clone()
	if err != nil {
		return nil, err
	}
	// Clone shares the parse tree; cut a copy of it.
	c.Tree = t.Tree.Copy()
	nodes := c.Tree.Root.Nodes
	for i, n := range nodes {
		single := &template.Template{Tree: &parse.Tree{Root: &parse.ListNode{NodeType: parse.NodeList, Nodes: []parse.Node{n}}}}
		if usesField(single, "Response") {
			c.Tree.Root.Nodes = nodes[:i+1]
			return c, nil
		}
	}
	return c, nil
}

func execute(t *template.Template, v templateValues) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("%w: template: %v", ErrBadRequest, err)
	}
	return b.String(), nil
}

// renderPrompt renders a Go template for a generate request: one turn of
// System, Prompt and Suffix, cut where the response begins.
func renderPrompt(text string, v templateValues) (string, error) {
	t, err := parseTemplate(text)
	if err != nil {
		return "", err
	}
	if len(v.Messages) == 0 && usesField(t, "Messages") {
		if v.System != "" {
			v.Messages = append(v.Messages, templateMessage{Role: "system", Content: v.System})
		}
		v.Messages = append(v.Messages, templateMessage{Role: "user", Content: v.Prompt})
	}
	cut, err := upToResponse(t)
	if err != nil {
		return "", err
	}
	return execute(cut, v)
}

// renderChat renders a Go template for a conversation. A template that
// uses .Messages is rendered once with the whole conversation; an older
// one-turn template (.System/.Prompt/.Response) is rendered once per
// user/assistant exchange, the last one cut where the response begins.
func renderChat(text string, msgs []api.Message, tools []api.Tool, think bool) (string, error) {
	t, err := parseTemplate(text)
	if err != nil {
		return "", err
	}
	if usesField(t, "Messages") {
		v := templateValues{Tools: tools, Think: think}
		for _, m := range msgs {
			if m.Role == "system" && v.System == "" {
				v.System = m.Content
			}
			v.Messages = append(v.Messages, templateMessage{Role: m.Role, Content: m.Content, Thinking: m.Thinking, ToolCalls: m.ToolCalls, ToolName: m.ToolName})
			if m.Role == "user" {
				v.Prompt = m.Content
			}
		}
		cut, err := upToResponse(t)
		if err != nil {
			return "", err
		}
		return execute(cut, v)
	}
	cut, err := upToResponse(t)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	var cur templateValues
	pending := false
	flush := func(full bool) error {
		tt := t
		if !full {
			tt = cut
		}
		s, err := execute(tt, cur)
		if err != nil {
			return err
		}
		out.WriteString(s)
		cur = templateValues{Tools: tools, Think: think}
		pending = false
		return nil
	}
	cur.Tools, cur.Think = tools, think
	for _, m := range msgs {
		switch m.Role {
		case "system":
			if cur.Prompt != "" {
				if err := flush(true); err != nil {
					return "", err
				}
			}
			if cur.System != "" {
				cur.System += "\n\n"
			}
			cur.System += m.Content
			pending = true
		case "assistant":
			cur.Response = m.Content
			if err := flush(true); err != nil {
				return "", err
			}
		default: // user, tool
			if cur.Prompt != "" {
				if err := flush(true); err != nil {
					return "", err
				}
			}
			cur.Prompt = m.Content
			pending = true
		}
	}
	if pending {
		if err := flush(false); err != nil {
			return "", err
		}
	}
	return out.String(), nil
}
