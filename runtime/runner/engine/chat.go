package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
)

// chatPlan is a chat request made ready to generate.
type chatPlan struct {
	prompt string
	cp     *llama.ChatPrompt // nil for a pre-rendered prompt
	images [][]byte          // the messages' images, in order; prompt refers to them
}

// toolDef is a tool definition in OpenAI/Ollama form.
type toolDef struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// render applies the chat template to req.
func (e *Engine) render(req *runner.ChatRequest) (*chatPlan, error) {
	var images [][]byte
	for _, m := range req.Messages {
		images = append(images, m.Images...)
	}
	if len(images) > 0 && e.proj == nil {
		return nil, errNoVision()
	}
	if req.Prompt != "" {
		plain := &chatPlan{prompt: req.Prompt, images: images}
		if len(req.Messages) == 0 || (e.tmpl == nil && req.Template == "") {
			return plain, nil
		}
		// Parse the output with the model's own chat format.
		r := *req
		r.Prompt = ""
		plan, err := e.render(&r)
		if errors.Is(err, llama.ErrTemplate) {
			// The jinja template cannot render these messages; the
			// prompt is still usable, as plain content.
			return plain, nil
		}
		if err != nil {
			return nil, err
		}
		plan.prompt = req.Prompt
		plan.cp.Prompt = req.Prompt
		return plan, nil
	}
	if len(req.Messages) == 0 {
		return nil, fmt.Errorf("%w: no messages", runner.ErrBadRequest)
	}
	switch req.ToolChoice {
	case "", "auto", "required", "none":
	default:
		return nil, fmt.Errorf("%w: tool_choice must be auto, required or none, not %q", runner.ErrBadRequest, req.ToolChoice)
	}
	in := llama.ChatInput{AddGenerationPrompt: true, EnableThinking: req.Think, ParallelToolCalls: true, ToolChoice: req.ToolChoice}
	switch req.ThinkLevel {
	case "":
	case "low", "medium", "high":
		on := true
		in.EnableThinking = &on
		in.Kwargs = map[string]any{"reasoning_effort": req.ThinkLevel}
	default:
		return nil, fmt.Errorf("%w: think level must be low, medium or high, not %q", runner.ErrBadRequest, req.ThinkLevel)
	}
	nImages := 0
	for _, m := range req.Messages {
		content := m.Content
		if len(m.Images) > 0 {
			content = markMessageImages(content, nImages, len(m.Images))
			nImages += len(m.Images)
		}
		cm := llama.ChatMessage{Role: m.Role, Content: content, Thinking: m.Thinking, ToolName: m.ToolName, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			args := string(tc.Function.Arguments)
			if args == "" {
				args = "{}"
			}
			cm.ToolCalls = append(cm.ToolCalls, llama.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: args})
		}
		in.Messages = append(in.Messages, cm)
	}
	if len(req.Tools) > 0 && string(req.Tools) != "null" {
		var defs []toolDef
		if err := json.Unmarshal(req.Tools, &defs); err != nil {
			return nil, fmt.Errorf("%w: tools: %v", runner.ErrBadRequest, err)
		}
		for i, d := range defs {
			if d.Function.Name == "" {
				return nil, fmt.Errorf("%w: tools[%d] has no function name", runner.ErrBadRequest, i)
			}
			in.Tools = append(in.Tools, llama.Tool{Name: d.Function.Name, Description: d.Function.Description, Parameters: d.Function.Parameters})
		}
	}
	// req.Format is not given to the template: common's format grammars
	// start with the generation prompt and need the sampler to be prefilled
	// with it, which runtime/llama's Sampler cannot do yet. The handler
	// constrains the answer with the plain grammar of the format instead.
	tmpl := e.tmpl
	if req.Template != "" {
		t, err := llama.NewChatTemplates(e.model, req.Template)
		if err != nil {
			return nil, fmt.Errorf("%w: template: %w", runner.ErrBadRequest, err)
		}
		defer t.Close()
		tmpl = t
	} else if tmpl == nil {
		return nil, fmt.Errorf("%w: the model has no chat template; send a template or a rendered prompt", runner.ErrUnsupported)
	}
	if req.Template == "" {
		e.tmplMu.Lock()
		defer e.tmplMu.Unlock()
	}
	cp, err := tmpl.Apply(in)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", runner.ErrBadRequest, err)
	}
	return &chatPlan{prompt: cp.Prompt, cp: cp, images: images}, nil
}

func (e *Engine) handleRender(w http.ResponseWriter, r *http.Request) {
	var req runner.ChatRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	plan, err := e.render(&req)
	if err != nil {
		writeError(w, err)
		return
	}
	toks, _, chunks, err := e.tokenize(plan.prompt, plan.images)
	if err != nil {
		writeError(w, err)
		return
	}
	chunks.Close()
	resp := runner.RenderResponse{Prompt: plan.prompt, PromptTokens: len(toks)}
	if plan.cp != nil {
		resp.Grammar = plan.cp.Grammar
		resp.Format = plan.cp.Parse.FormatName
	}
	g, err := grammarFor(req.Format)
	if err != nil {
		writeError(w, err)
		return
	}
	if g != "" {
		resp.Grammar = g
	}
	writeJSON(w, http.StatusOK, resp)
}

func (e *Engine) handleChat(w http.ResponseWriter, r *http.Request) {
	var req runner.ChatRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	plan, err := e.render(&req)
	if err != nil {
		writeError(w, err)
		return
	}
	prompt, images, chunks, err := e.tokenize(plan.prompt, plan.images)
	if err != nil {
		writeError(w, err)
		return
	}
	defer func() { // unless a task took them
		if chunks != nil {
			chunks.Close()
		}
	}()
	var t *task
	parse := false
	var pp llama.ChatParseParams
	if cp := plan.cp; cp != nil {
		t = e.newTask(r.Context(), prompt, req.Options, "", cp.AdditionalStops)
		cp.SamplerGrammar(&t.sp)
		g, err := grammarFor(req.Format)
		if err != nil {
			writeError(w, err)
			return
		}
		if g != "" { // a format wins over a tool-call grammar
			t.sp.Grammar, t.sp.GrammarLazy, t.sp.GrammarTriggers, t.sp.GrammarPrefill = g, false, nil, ""
		}
		if len(cp.PreservedTokens) > 0 {
			t.special = map[llama.Token]bool{}
			for _, s := range cp.PreservedTokens {
				if toks, err := e.model.Tokenize(s, false, true); err == nil && len(toks) == 1 {
					t.special[toks[0]] = true
				}
			}
		}
		pp = cp.Parse
		parse = pp.ExtractThinking || pp.ParseToolCalls
	} else {
		g, err := grammarFor(req.Format)
		if err != nil {
			writeError(w, err)
			return
		}
		t = e.newTask(r.Context(), prompt, req.Options, g, nil)
	}
	t.images, t.chunks = images, chunks
	t.noStream = req.NoStream
	if err := e.generate(t); err != nil {
		writeError(w, err)
		return
	}
	chunks = nil // the decode loop frees them

	var full, sentContent, sentThinking strings.Builder
	// delta returns the events that bring what was sent up to msg.
	delta := func(content, thinking string) (pieceEvent, bool) {
		var ev pieceEvent
		if s := sentContent.String(); len(content) > len(s) && strings.HasPrefix(content, s) {
			ev.content = content[len(s):]
			sentContent.WriteString(ev.content)
		}
		if s := sentThinking.String(); len(thinking) > len(s) && strings.HasPrefix(thinking, s) {
			ev.thinking = thinking[len(s):]
			sentThinking.WriteString(ev.thinking)
		}
		return ev, ev.content != "" || ev.thinking != ""
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	stream(w, r, t, func(ev genEvent) any {
		if !ev.done {
			full.WriteString(ev.piece)
			if !parse {
				if ev.piece == "" {
					return nil
				}
				sentContent.WriteString(ev.piece)
				return pieceEvent{content: ev.piece}
			}
			msg, err := llama.ParseChat(full.String(), true, pp)
			if err != nil {
				return nil // wait for more text
			}
			if d, ok := delta(msg.Content, msg.Thinking); ok {
				return d
			}
			return nil
		}
		if ev.err != nil {
			return runner.ChatEvent{Done: true, Error: wireMessage(ev.err), Code: runner.CodeOf(ev.err)}
		}
		full.WriteString(ev.piece) // the whole text when not streaming
		final := runner.ChatEvent{Done: true, DoneReason: ev.reason, Timings: ev.timings, Truncated: ev.truncated}
		msg := llama.ChatMessage{Role: "assistant", Content: full.String()}
		if parse {
			if m, err := llama.ParseChat(full.String(), false, pp); err == nil {
				msg = m
			}
		}
		// Send what the partial parses held back with the final event.
		if d, ok := delta(msg.Content, msg.Thinking); ok {
			final.Content, final.Thinking = d.content, d.thinking
		}
		out := &runner.Message{Role: "assistant", Content: msg.Content, Thinking: msg.Thinking}
		for i, tc := range msg.ToolCalls {
			args := json.RawMessage(tc.Arguments)
			if !json.Valid(args) {
				b, _ := json.Marshal(tc.Arguments)
				args = b
			}
			out.ToolCalls = append(out.ToolCalls, runner.ToolCall{ID: tc.ID,
				Function: runner.ToolCallFunction{Index: i, Name: tc.Name, Arguments: args}})
		}
		final.Message = out
		return final
	})
}
