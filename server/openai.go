package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/api/openai"
)

// handleOpenAI adapts a handler to the OpenAI-compatible routes, whose
// errors have OpenAI's shape.
func (s *Server) handleOpenAI(h handlerFunc) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		tw := &trackingWriter{ResponseWriter: w}
		v, err := h(tw, r, ps)
		switch {
		case err != nil && tw.started:
			s.logError(r, err)
			b, _ := json.Marshal(openaiError(err))
			_, _ = fmt.Fprintf(tw, "data: %s\n\n", b)
			tw.Flush()
		case err != nil:
			s.logError(r, err)
			writeJSON(tw, statusOf(err), openaiError(err))
		case v == nil:
			if !tw.started {
				tw.WriteHeader(http.StatusOK)
			}
		default:
			writeJSON(tw, http.StatusOK, v)
		}
	}
}

func openaiError(err error) openai.Error {
	typ := "api_error"
	switch statusOf(err) {
	case http.StatusBadRequest:
		typ = "invalid_request_error"
	case http.StatusNotFound:
		typ = "not_found_error"
	case http.StatusUnauthorized:
		typ = "authentication_error"
	case http.StatusServiceUnavailable:
		typ = "server_busy"
	}
	return openai.Error{Error: openai.ErrorDetail{Message: err.Error(), Type: typ}}
}

// sse writes server-sent events.
type sse struct {
	w       http.ResponseWriter
	started bool
}

func (e *sse) send(v any) error {
	if !e.started {
		h := e.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("Connection", "keep-alive")
		e.w.WriteHeader(http.StatusOK)
		e.started = true
	}
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", b); err != nil {
		return err
	}
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// openaiOptions maps OpenAI sampling fields to options.
func openaiOptions(temp, topP *float32, seed *int, stop []string, freq, pres *float32, maxTokens ...*int) *api.Options {
	o := &api.Options{Temperature: temp, TopP: topP, Seed: seed, FrequencyPenalty: freq, PresencePenalty: pres}
	if len(stop) > 0 {
		o.Stop = stop
	}
	for _, m := range maxTokens {
		if m != nil {
			o.NumPredict = m
		}
	}
	return o
}

// dataURLImage decodes a data: URL's base64 payload.
func dataURLImage(field, u string) (api.ImageData, error) {
	if !strings.HasPrefix(u, "data:") {
		return nil, fmt.Errorf("%w: %s: only data: URLs are accepted (this server fetches nothing from the network)", ErrBadRequest, field)
	}
	_, payload, ok := strings.Cut(u, ",")
	if !ok || !strings.Contains(u[:len(u)-len(payload)], ";base64") {
		return nil, fmt.Errorf("%w: %s: want data:<type>;base64,<data>", ErrBadRequest, field)
	}
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: invalid base64: %v", ErrBadRequest, field, err)
	}
	return b, nil
}

// fromOpenAIChat converts a chat completion request.
func fromOpenAIChat(req *openai.ChatCompletionRequest) (*api.ChatRequest, error) {
	if req.N != nil && *req.N != 1 {
		return nil, fmt.Errorf("%w: n must be 1", ErrBadRequest)
	}
	out := &api.ChatRequest{
		Model:   req.Model,
		Stream:  &req.Stream,
		Options: openaiOptions(req.Temperature, req.TopP, req.Seed, req.Stop, req.FrequencyPenalty, req.PresencePenalty, req.MaxTokens, req.MaxCompletionTokens),
	}
	for i, m := range req.Messages {
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		am := api.Message{Role: role, Content: m.Content.Text, Thinking: m.Reasoning, ToolCallID: m.ToolCallID}
		for j, u := range m.Content.Images {
			img, err := dataURLImage(fmt.Sprintf("messages[%d].content[%d].image_url", i, j), u)
			if err != nil {
				return nil, err
			}
			am.Images = append(am.Images, img)
		}
		for j, tc := range m.ToolCalls {
			args := map[string]any{}
			if strings.TrimSpace(tc.Function.Arguments) != "" {
				if err := json.Unmarshal([]byte(tc.Function.Arguments), &args); err != nil {
					return nil, fmt.Errorf("%w: messages[%d].tool_calls[%d].function.arguments must be a JSON object: %v", ErrBadRequest, i, j, err)
				}
			}
			am.ToolCalls = append(am.ToolCalls, api.ToolCall{ID: tc.ID, Function: api.ToolCallFunction{Index: j, Name: tc.Function.Name, Arguments: args}})
		}
		if role == "tool" && m.Name != "" {
			am.ToolName = m.Name
		}
		out.Messages = append(out.Messages, am)
	}
	if len(out.Messages) == 0 {
		return nil, fmt.Errorf("%w: messages must not be empty", ErrBadRequest)
	}
	for _, t := range req.Tools {
		out.Tools = append(out.Tools, api.Tool{Type: t.Type, Function: api.ToolFunction{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters}})
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			out.Format = json.RawMessage(`"json"`)
		case "json_schema":
			if rf.JSONSchema == nil || len(rf.JSONSchema.Schema) == 0 {
				return nil, fmt.Errorf("%w: response_format.json_schema.schema is required", ErrBadRequest)
			}
			out.Format = rf.JSONSchema.Schema
		default:
			return nil, fmt.Errorf("%w: response_format.type must be text, json_object or json_schema, got %q", ErrBadRequest, rf.Type)
		}
	}
	if req.ReasoningEffort != nil {
		switch *req.ReasoningEffort {
		case "none":
			out.Think = &api.ThinkValue{Value: false}
		case "low", "medium", "high":
			out.Think = &api.ThinkValue{Value: *req.ReasoningEffort}
		default:
			return nil, fmt.Errorf("%w: reasoning_effort must be none, low, medium or high", ErrBadRequest)
		}
	}
	return out, nil
}

func toOpenAIToolCalls(calls []api.ToolCall, withIndex bool) []openai.ToolCall {
	var out []openai.ToolCall
	for i, c := range calls {
		var tc openai.ToolCall
		tc.ID = c.ID
		if tc.ID == "" {
			tc.ID = newID("call_")
		}
		tc.Type = "function"
		tc.Function.Name = c.Function.Name
		b, _ := json.Marshal(c.Function.Arguments)
		tc.Function.Arguments = string(b)
		if withIndex {
			idx := i
			tc.Index = &idx
		}
		out = append(out, tc)
	}
	return out
}

func finishReason(doneReason string, toolCalls bool) *string {
	r := "stop"
	switch {
	case toolCalls:
		r = "tool_calls"
	case doneReason == "length":
		r = "length"
	}
	return &r
}

func usage(m api.Metrics) openai.Usage {
	return openai.Usage{PromptTokens: m.PromptEvalCount, CompletionTokens: m.EvalCount, TotalTokens: m.PromptEvalCount + m.EvalCount}
}

func (s *Server) handleChatCompletions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var oreq openai.ChatCompletionRequest
	if err := decode(r, &oreq); err != nil {
		return nil, err
	}
	if oreq.Model == "" {
		return nil, fmt.Errorf("%w: model is required", ErrBadRequest)
	}
	req, err := fromOpenAIChat(&oreq)
	if err != nil {
		return nil, err
	}
	id, created := newID("chatcmpl-"), s.now().Unix()
	if !oreq.Stream {
		res, err := s.chatAll(r.Context(), req)
		if err != nil {
			return nil, err
		}
		msg := openai.Message{Role: "assistant", Content: openai.Content{Text: res.Message.Content}, Reasoning: res.Message.Thinking,
			ToolCalls: toOpenAIToolCalls(res.Message.ToolCalls, false)}
		return &openai.ChatCompletion{
			ID: id, Object: "chat.completion", Created: created, Model: oreq.Model, SystemFingerprint: "fp_olm",
			Choices: []openai.Choice{{Index: 0, Message: msg, FinishReason: finishReason(res.DoneReason, len(res.Message.ToolCalls) > 0)}},
			Usage:   usage(res.Metrics),
		}, nil
	}
	out := &sse{w: w}
	chunk := func(d openai.Delta, finish *string) *openai.ChatCompletionChunk {
		return &openai.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: oreq.Model, SystemFingerprint: "fp_olm",
			Choices: []openai.ChunkChoice{{Index: 0, Delta: d, FinishReason: finish}}}
	}
	err = s.chat(r.Context(), req, func(c *api.ChatResponse) error {
		if !c.Done {
			return out.send(chunk(openai.Delta{Role: "assistant", Content: c.Message.Content, Reasoning: c.Message.Thinking}, nil))
		}
		d := openai.Delta{Role: "assistant", ToolCalls: toOpenAIToolCalls(c.Message.ToolCalls, true)}
		if err := out.send(chunk(d, finishReason(c.DoneReason, len(c.Message.ToolCalls) > 0))); err != nil {
			return err
		}
		if oreq.StreamOptions != nil && oreq.StreamOptions.IncludeUsage {
			u := usage(c.Metrics)
			return out.send(&openai.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: oreq.Model,
				SystemFingerprint: "fp_olm", Choices: []openai.ChunkChoice{}, Usage: &u})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return nil, out.send("[DONE]")
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var oreq openai.CompletionRequest
	if err := decode(r, &oreq); err != nil {
		return nil, err
	}
	if oreq.Model == "" {
		return nil, fmt.Errorf("%w: model is required", ErrBadRequest)
	}
	if len(oreq.Prompt) > 1 {
		return nil, fmt.Errorf("%w: prompt: only one prompt per request is supported", ErrBadRequest)
	}
	if oreq.N != nil && *oreq.N != 1 {
		return nil, fmt.Errorf("%w: n must be 1", ErrBadRequest)
	}
	prompt := ""
	if len(oreq.Prompt) == 1 {
		prompt = oreq.Prompt[0]
	}
	if prompt == "" {
		return nil, fmt.Errorf("%w: prompt is required", ErrBadRequest)
	}
	req := &api.GenerateRequest{Model: oreq.Model, Prompt: prompt, Suffix: oreq.Suffix, Stream: &oreq.Stream,
		Options: openaiOptions(oreq.Temperature, oreq.TopP, oreq.Seed, oreq.Stop, oreq.FrequencyPenalty, oreq.PresencePenalty, oreq.MaxTokens)}
	id, created := newID("cmpl-"), s.now().Unix()
	mk := func(text string, finish *string) *openai.Completion {
		return &openai.Completion{ID: id, Object: "text_completion", Created: created, Model: oreq.Model, SystemFingerprint: "fp_olm",
			Choices: []openai.CompletionChoice{{Text: text, Index: 0, FinishReason: finish}}}
	}
	if !oreq.Stream {
		var text strings.Builder
		var final *api.GenerateResponse
		if oreq.Echo {
			text.WriteString(prompt)
		}
		err := s.generate(r.Context(), req, func(g *api.GenerateResponse) error {
			text.WriteString(g.Response)
			if g.Done {
				final = g
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		c := mk(text.String(), finishReason(final.DoneReason, false))
		u := usage(final.Metrics)
		c.Usage = &u
		return c, nil
	}
	out := &sse{w: w}
	if oreq.Echo {
		if err := out.send(mk(prompt, nil)); err != nil {
			return nil, err
		}
	}
	err := s.generate(r.Context(), req, func(g *api.GenerateResponse) error {
		if !g.Done {
			return out.send(mk(g.Response, nil))
		}
		if err := out.send(mk(g.Response, finishReason(g.DoneReason, false))); err != nil {
			return err
		}
		if oreq.StreamOptions != nil && oreq.StreamOptions.IncludeUsage {
			u := usage(g.Metrics)
			c := mk("", nil)
			c.Choices = []openai.CompletionChoice{}
			c.Usage = &u
			return out.send(c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return nil, out.send("[DONE]")
}

func (s *Server) handleOpenAIEmbeddings(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var oreq openai.EmbeddingRequest
	if err := decode(r, &oreq); err != nil {
		return nil, err
	}
	if oreq.Model == "" {
		return nil, fmt.Errorf("%w: model is required", ErrBadRequest)
	}
	if len(oreq.Input) == 0 {
		return nil, fmt.Errorf("%w: input is required", ErrBadRequest)
	}
	switch oreq.EncodingFormat {
	case "", "float", "base64":
	default:
		return nil, fmt.Errorf("%w: encoding_format must be float or base64, got %q", ErrBadRequest, oreq.EncodingFormat)
	}
	res, err := s.embed(r.Context(), &api.EmbedRequest{Model: oreq.Model, Input: api.EmbedInput(oreq.Input), Dimensions: oreq.Dimensions}, false)
	if err != nil {
		return nil, err
	}
	out := &openai.EmbeddingList{Object: "list", Model: oreq.Model, Data: []openai.Embedding{},
		Usage: openai.EmbedUsage{PromptTokens: res.PromptEvalCount, TotalTokens: res.PromptEvalCount}}
	for i, e := range res.Embeddings {
		var v any = e
		if oreq.EncodingFormat == "base64" {
			b := make([]byte, 4*len(e))
			for j, x := range e {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
			}
			v = base64.StdEncoding.EncodeToString(b)
		}
		out.Data = append(out.Data, openai.Embedding{Object: "embedding", Embedding: v, Index: i})
	}
	return out, nil
}

func ownedBy(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		return name[:i]
	}
	return "library"
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	ms, err := s.opts.Models.List(r.Context())
	if err != nil {
		return nil, err
	}
	out := &openai.ModelList{Object: "list", Data: []openai.Model{}}
	for _, m := range ms {
		out.Data = append(out.Data, openai.Model{ID: m.Name, Object: "model", Created: m.ModifiedAt.Unix(), OwnedBy: ownedBy(m.Name)})
	}
	return out, nil
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (any, error) {
	name := strings.TrimPrefix(ps.ByName("model"), "/")
	if name == "" {
		return s.handleModels(w, r, ps)
	}
	m, err := s.opts.Models.Resolve(r.Context(), name)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: model %q not found", ErrNotFound, name)
		}
		return nil, err
	}
	return &openai.Model{ID: name, Object: "model", Created: m.ModifiedAt.Unix(), OwnedBy: ownedBy(m.Name)}, nil
}
