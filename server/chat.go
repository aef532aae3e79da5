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

// chat runs a chat request, calling emit for every response object, the
// final one (Done, with tool calls) last.
func (s *Server) chat(ctx context.Context, req *api.ChatRequest, emit func(*api.ChatResponse) error) error {
	_, err := s.chatParsed(ctx, req, emit)
	return err
}

// chatParsed is chat that also returns the runner's parsed final message
// (nil for load and unload requests).
func (s *Server) chatParsed(ctx context.Context, req *api.ChatRequest, emit func(*api.ChatResponse) error) (*runner.Message, error) {
	start := time.Now()
	format, err := validateFormat("format", req.Format)
	if err != nil {
		return nil, err
	}
	if err := validateOptions(req.Options); err != nil {
		return nil, err
	}
	for i, t := range req.Tools {
		if t.Function.Name == "" {
			return nil, fmt.Errorf("%w: tools[%d].function.name is required", ErrBadRequest, i)
		}
	}
	if _, err := toRunnerMessages(req.Messages); err != nil {
		return nil, err
	}
	m, err := s.resolve(ctx, "model", req.Model)
	if err != nil {
		return nil, err
	}
	done := func(reason string, load time.Duration) error {
		return emit(&api.ChatResponse{Model: req.Model, CreatedAt: s.now().UTC(), Message: api.Message{Role: "assistant"},
			Done: true, DoneReason: reason, Metrics: api.Metrics{LoadDuration: load, TotalDuration: time.Since(start)}})
	}
	if len(req.Messages) == 0 && isUnload(req.KeepAlive) {
		if err := s.opts.Engine.Unload(ctx, m.Name); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, done("unload", 0)
	}
	a, err := s.acquire(ctx, m, req.Options, req.KeepAlive, false)
	if err != nil {
		return nil, err
	}
	defer a.release()
	if len(req.Messages) == 0 {
		return nil, done("load", a.load)
	}

	// The model's MESSAGE lines come first, then its SYSTEM unless the
	// conversation has its own system message.
	msgs := append([]api.Message(nil), m.Messages...)
	hasSystem := false
	for _, x := range req.Messages {
		if x.Role == "system" {
			hasSystem = true
			break
		}
	}
	if m.System != "" && !hasSystem {
		msgs = append([]api.Message{{Role: "system", Content: m.System}}, msgs...)
	}
	msgs = append(msgs, req.Messages...)
	rmsgs, err := toRunnerMessages(msgs)
	if err != nil {
		return nil, err
	}
	samp := sampling(a.opts)
	// A client that does not stream gets the runner's answer in one event.
	creq := runner.ChatRequest{Messages: rmsgs, Format: format, Options: &samp, Template: m.ChatTemplate, NoStream: !streaming(req.Stream)}
	if len(req.Tools) > 0 {
		if creq.Tools, err = json.Marshal(req.Tools); err != nil {
			return nil, fmt.Errorf("%w: tools: %v", ErrBadRequest, err)
		}
	}
	if req.Think != nil {
		t := req.Think.Enabled()
		creq.Think = &t
	}
	tmpl := m.Template
	if tmpl == "" {
		if tmpl, err = s.fallbackTemplate(ctx, m, a.r); err != nil {
			return nil, err
		}
	}
	if tmpl != "" {
		if creq.Prompt, err = renderChat(tmpl, msgs, req.Tools, req.Think.Enabled()); err != nil {
			return nil, err
		}
	}

	var final *runner.ChatEvent
	_, err = a.r.Chat(ctx, creq, func(ev runner.ChatEvent) error {
		if ev.Done {
			e := ev
			final = &e
			if ev.Content == "" && ev.Thinking == "" {
				return nil
			}
		}
		return emit(&api.ChatResponse{Model: req.Model, CreatedAt: s.now().UTC(),
			Message: api.Message{Role: "assistant", Content: ev.Content, Thinking: ev.Thinking}})
	})
	if err != nil {
		return nil, err
	}
	if final == nil {
		return nil, fmt.Errorf("runner ended the stream without a final event")
	}
	resp := &api.ChatResponse{Model: req.Model, CreatedAt: s.now().UTC(), Message: api.Message{Role: "assistant"},
		Done: true, DoneReason: final.DoneReason, Metrics: a.metrics(start, final.Timings)}
	if final.Message != nil {
		resp.Message.ToolCalls = fromRunnerToolCalls(final.Message.ToolCalls)
	}
	return final.Message, emit(resp)
}

// chatAll runs a chat request to the end and returns one response with the
// whole message. The runner's parsed final message wins over the streamed
// pieces (tool-call markup is not content).
func (s *Server) chatAll(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	var all api.ChatResponse
	var text, thinking strings.Builder
	parsed, err := s.chatParsed(ctx, req, func(c *api.ChatResponse) error {
		text.WriteString(c.Message.Content)
		thinking.WriteString(c.Message.Thinking)
		if c.Done {
			all = *c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	all.Message.Content, all.Message.Thinking = text.String(), thinking.String()
	if parsed != nil && (parsed.Content != "" || parsed.Thinking != "" || len(parsed.ToolCalls) > 0) {
		all.Message.Content, all.Message.Thinking = parsed.Content, parsed.Thinking
	}
	return &all, nil
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var req api.ChatRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if streaming(req.Stream) {
		out := &ndjson{w: w}
		return nil, s.chat(r.Context(), &req, func(c *api.ChatResponse) error { return out.send(c) })
	}
	return s.chatAll(r.Context(), &req)
}
