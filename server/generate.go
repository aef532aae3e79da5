package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/runner"
)

// resolve finds a model by a request's name field.
func (s *Server) resolve(ctx context.Context, field, name string) (*Model, error) {
	if strings.TrimSpace(name) == "" {
		return nil, fmt.Errorf("%w: %s is required", ErrBadRequest, field)
	}
	m, err := s.opts.Models.Resolve(ctx, name)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: model %q not found, try pulling it first", ErrNotFound, name)
		}
		return nil, err
	}
	return m, nil
}

// acquired is a runner checked out of the engine.
type acquired struct {
	r       Runner
	release func()
	load    time.Duration
	// opts are the model's options with the request's over them.
	opts api.Options
}

// acquire checks a runner for m out of the engine, loaded with the model's
// options with reqOpts (nil for none) over them.
func (s *Server) acquire(ctx context.Context, m *Model, reqOpts *api.Options, ka *api.Duration, embedding bool) (*acquired, error) {
	opts := m.Options
	if reqOpts != nil {
		opts = opts.Merge(*reqOpts)
	}
	start := time.Now()
	r, release, err := s.opts.Engine.Acquire(ctx, Target{Model: m, Load: loadOptions(m, opts, embedding), KeepAlive: keepAlive(ka)})
	if err != nil {
		return nil, err
	}
	return &acquired{r: r, release: release, load: time.Since(start), opts: opts}, nil
}

// metrics returns the metrics of a final response object: the request's
// total time since start, a's load time and the runner's timings.
// prompt_eval_count is every token of the prompt, those the runner reused
// from its cache included, as in Ollama ("number of tokens in the prompt");
// prompt_eval_duration is the time spent on the ones it evaluated.
func (a *acquired) metrics(start time.Time, t runner.Timings) api.Metrics {
	return api.Metrics{
		TotalDuration: time.Since(start), LoadDuration: a.load,
		PromptEvalCount: t.PromptEvalCount + t.PromptCached, PromptEvalDuration: t.PromptEvalDuration,
		EvalCount: t.EvalCount, EvalDuration: t.EvalDuration,
	}
}

// defaultTemplate is the prompt template of a model that has neither a
// Modelfile TEMPLATE nor a chat template in its GGUF (base models), as
// Ollama's "{{ .Prompt }}" but keeping the system message.
const defaultTemplate = "{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}{{ .Response }}"

// fallbackTemplate returns defaultTemplate when the runner has no chat
// template for m, "" when it does (the runner then applies it).
func (s *Server) fallbackTemplate(ctx context.Context, m *Model, r Runner) (string, error) {
	if m.ChatTemplate != "" {
		return "", nil
	}
	info, err := r.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.ChatTemplate {
		return "", nil
	}
	return defaultTemplate, nil
}

// isUnload reports a keep_alive of zero.
func isUnload(d *api.Duration) bool { return d != nil && d.Duration == 0 }

// generate runs a generate request, calling emit for every response
// object, the final one (Done) last. Errors before the first emit are
// request errors (status codes apply).
func (s *Server) generate(ctx context.Context, req *api.GenerateRequest, emit func(*api.GenerateResponse) error) error {
	start := time.Now()
	format, err := validateFormat("format", req.Format)
	if err != nil {
		return err
	}
	if err := validateOptions(req.Options); err != nil {
		return err
	}
	m, err := s.resolve(ctx, "model", req.Model)
	if err != nil {
		return err
	}
	if req.Prompt == "" && len(req.Images) == 0 && req.Suffix == "" {
		if isUnload(req.KeepAlive) {
			if err := s.opts.Engine.Unload(ctx, m.Name); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			return emit(&api.GenerateResponse{Model: req.Model, CreatedAt: s.now().UTC(), Done: true, DoneReason: "unload"})
		}
	}
	a, err := s.acquire(ctx, m, req.Options, req.KeepAlive, false)
	if err != nil {
		return err
	}
	defer a.release()
	if req.Prompt == "" && len(req.Images) == 0 && req.Suffix == "" {
		return emit(&api.GenerateResponse{Model: req.Model, CreatedAt: s.now().UTC(), Done: true, DoneReason: "load",
			Metrics: api.Metrics{LoadDuration: a.load, TotalDuration: time.Since(start)}})
	}

	system := m.System
	if req.System != "" {
		system = req.System
	}
	tmpl := m.Template
	if req.Template != "" {
		tmpl = req.Template
	}
	if tmpl == "" && !req.Raw {
		if tmpl, err = s.fallbackTemplate(ctx, m, a.r); err != nil {
			return err
		}
	}
	samp := sampling(a.opts)
	// A client that does not stream gets the runner's answer in one event.
	creq := runner.CompletionRequest{Options: &samp, JSONSchema: format, NoStream: !streaming(req.Stream)}
	for _, img := range req.Images {
		creq.Images = append(creq.Images, []byte(img))
	}
	var prompt string
	// A suffix is rendered by a template that uses .Suffix, else built
	// from the vocabulary's fill-in-the-middle tokens (fim.go).
	var fim *runner.FIMTokens
	var fimCtx int
	if req.Suffix != "" && !req.Raw {
		if fim, fimCtx, err = fimTokens(ctx, req.Model, tmpl, a.r); err != nil {
			return err
		}
	}
	switch {
	case req.Raw:
		if req.Suffix != "" {
			return fmt.Errorf("%w: suffix cannot be used with raw", ErrBadRequest)
		}
		prompt = req.Prompt
	case fim != nil:
		if len(req.Images) > 0 {
			return fmt.Errorf("%w: images cannot be used with a suffix on this model (its fill-in-the-middle prompt is text only)", ErrBadRequest)
		}
		numPredict := -1
		if a.opts.NumPredict != nil {
			numPredict = *a.opts.NumPredict
		}
		toks, err := fimPrompt(ctx, a.r, fim, req.Prompt, req.Suffix, fimCtx, numPredict)
		if err != nil {
			return err
		}
		for _, t := range req.Context {
			creq.Tokens = append(creq.Tokens, int32(t))
		}
		creq.Tokens = append(creq.Tokens, toks...)
	case tmpl != "":
		v := templateValues{System: system, Prompt: req.Prompt, Suffix: req.Suffix, Think: req.Think.Enabled()}
		if prompt, err = renderPrompt(tmpl, v); err != nil {
			return err
		}
	default:
		var msgs []runner.Message
		if system != "" {
			msgs = append(msgs, runner.Message{Role: "system", Content: system})
		}
		msgs = append(msgs, runner.Message{Role: "user", Content: req.Prompt, Images: creq.Images})
		var think *bool
		if req.Think != nil {
			t := req.Think.Enabled()
			think = &t
		}
		if req.Think.Enabled() && len(req.Context) == 0 {
			// The runner's chat path separates reasoning from the answer;
			// it returns no context, which a thinking request gives up.
			return s.generateThinking(ctx, req, a, runner.ChatRequest{Messages: msgs, Template: m.ChatTemplate, Think: think,
				Format: format, Options: &samp, NoStream: !streaming(req.Stream)}, start, emit)
		}
		rr, err := a.r.Render(ctx, runner.ChatRequest{Messages: msgs, Template: m.ChatTemplate, Think: think})
		if err != nil {
			return err
		}
		prompt = rr.Prompt
	}
	if len(req.Images) > 0 && !strings.Contains(prompt, runner.ImageMarker) {
		prompt = strings.Repeat(runner.ImageMarker, len(req.Images)) + prompt
	}
	switch {
	case fim != nil: // creq.Tokens holds the whole prompt
	case len(req.Context) > 0 && !req.Raw:
		toks, err := a.r.Tokenize(ctx, runner.TokenizeRequest{Content: prompt, ParseSpecial: true})
		if err != nil {
			return err
		}
		for _, t := range req.Context {
			creq.Tokens = append(creq.Tokens, int32(t))
		}
		creq.Tokens = append(creq.Tokens, toks...)
	default:
		creq.Prompt = prompt
	}

	var final *runner.CompletionEvent
	_, err = a.r.Completion(ctx, creq, func(ev runner.CompletionEvent) error {
		if ev.Done {
			e := ev
			final = &e
			if ev.Content == "" {
				return nil
			}
		}
		return emit(&api.GenerateResponse{Model: req.Model, CreatedAt: s.now().UTC(), Response: ev.Content})
	})
	if err != nil {
		return err
	}
	if final == nil {
		return fmt.Errorf("runner ended the stream without a final event")
	}
	resp := &api.GenerateResponse{Model: req.Model, CreatedAt: s.now().UTC(), Done: true, DoneReason: final.DoneReason,
		Metrics: a.metrics(start, final.Timings)}
	if !req.Raw {
		for _, t := range final.Context {
			resp.Context = append(resp.Context, int(t))
		}
	}
	return emit(resp)
}

// generateThinking answers a generate request through the runner's chat
// path so that reasoning comes back in "thinking", apart from "response".
func (s *Server) generateThinking(ctx context.Context, req *api.GenerateRequest, a *acquired, creq runner.ChatRequest, start time.Time, emit func(*api.GenerateResponse) error) error {
	var final *runner.ChatEvent
	_, err := a.r.Chat(ctx, creq, func(ev runner.ChatEvent) error {
		if ev.Done {
			e := ev
			final = &e
			if ev.Content == "" && ev.Thinking == "" {
				return nil
			}
		}
		return emit(&api.GenerateResponse{Model: req.Model, CreatedAt: s.now().UTC(), Response: ev.Content, Thinking: ev.Thinking})
	})
	if err != nil {
		return err
	}
	if final == nil {
		return fmt.Errorf("runner ended the stream without a final event")
	}
	return emit(&api.GenerateResponse{Model: req.Model, CreatedAt: s.now().UTC(), Done: true, DoneReason: final.DoneReason,
		Metrics: a.metrics(start, final.Timings)})
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var req api.GenerateRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if streaming(req.Stream) {
		out := &ndjson{w: w}
		return nil, s.generate(r.Context(), &req, func(g *api.GenerateResponse) error { return out.send(g) })
	}
	var all api.GenerateResponse
	var text, thinking strings.Builder
	err := s.generate(r.Context(), &req, func(g *api.GenerateResponse) error {
		text.WriteString(g.Response)
		thinking.WriteString(g.Thinking)
		if g.Done {
			all = *g
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	all.Response, all.Thinking = text.String(), thinking.String()
	return &all, nil
}

// toRunnerMessages converts API messages for the runner.
func toRunnerMessages(msgs []api.Message) ([]runner.Message, error) {
	out := make([]runner.Message, 0, len(msgs))
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return nil, fmt.Errorf("%w: messages[%d].role must be system, user, assistant or tool, got %q", ErrBadRequest, i, m.Role)
		}
		rm := runner.Message{Role: m.Role, Content: m.Content, Thinking: m.Thinking, ToolName: m.ToolName, ToolCallID: m.ToolCallID}
		for _, img := range m.Images {
			rm.Images = append(rm.Images, []byte(img))
		}
		for j, tc := range m.ToolCalls {
			args, err := json.Marshal(tc.Function.Arguments)
			if err != nil {
				return nil, fmt.Errorf("%w: messages[%d].tool_calls[%d].function.arguments: %v", ErrBadRequest, i, j, err)
			}
			if tc.Function.Arguments == nil {
				args = []byte("{}")
			}
			rm.ToolCalls = append(rm.ToolCalls, runner.ToolCall{ID: tc.ID, Function: runner.ToolCallFunction{Index: tc.Function.Index, Name: tc.Function.Name, Arguments: args}})
		}
		out = append(out, rm)
	}
	return out, nil
}

// fromRunnerToolCalls converts parsed tool calls for the API.
func fromRunnerToolCalls(calls []runner.ToolCall) []api.ToolCall {
	var out []api.ToolCall
	for i, c := range calls {
		args := map[string]any{}
		if len(c.Function.Arguments) > 0 {
			if err := json.Unmarshal(c.Function.Arguments, &args); err != nil {
				// Arguments that are not an object are kept under one key
				// rather than dropped.
				args = map[string]any{"arguments": string(c.Function.Arguments)}
			}
		}
		out = append(out, api.ToolCall{ID: c.ID, Function: api.ToolCallFunction{Index: i, Name: c.Function.Name, Arguments: args}})
	}
	return out
}
