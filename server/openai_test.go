package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/olmhq/olm/runtime/runner"
)

// sseEvents splits a server-sent-events body into its data payloads.
func sseEvents(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", line)
		}
		out = append(out, data)
	}
	return out
}

func TestChatCompletions(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"temperature":0.2,"max_tokens":7,"stop":"END","seed":1}`)
	m := object(t, w, 200)
	if m["object"] != "chat.completion" || !strings.HasPrefix(m["id"].(string), "chatcmpl-") || m["model"] != "tiny" {
		t.Errorf("completion = %v", m)
	}
	ch := m["choices"].([]any)[0].(map[string]any)
	if ch["finish_reason"] != "stop" || ch["message"].(map[string]any)["content"] != "Hello world" || ch["message"].(map[string]any)["role"] != "assistant" {
		t.Errorf("choice = %v", ch)
	}
	if u := m["usage"].(map[string]any); u["prompt_tokens"].(float64) != 5 || u["completion_tokens"].(float64) != 2 || u["total_tokens"].(float64) != 7 {
		t.Errorf("usage = %v", u)
	}
	c := e.engine.r.chats[0]
	if c.Messages[0].Role != "system" || c.Messages[1].Content != "hi" {
		t.Errorf("messages = %+v", c.Messages)
	}
	if o := c.Options; o.Temperature != 0.2 || o.NumPredict != 7 || o.Stop[0] != "END" || o.Seed != 1 {
		t.Errorf("options = %+v", o)
	}
}

func TestChatCompletionsStream(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/v1/chat/completions", `{"model":"tiny","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream = %d %v", w.Code, w.Header())
	}
	ev := sseEvents(t, w.Body.Bytes())
	if len(ev) != 5 || ev[4] != "[DONE]" {
		t.Fatalf("events = %q", ev)
	}
	var first, last, use map[string]any
	json.Unmarshal([]byte(ev[0]), &first)
	json.Unmarshal([]byte(ev[2]), &last)
	json.Unmarshal([]byte(ev[3]), &use)
	if first["object"] != "chat.completion.chunk" {
		t.Errorf("first = %v", first)
	}
	d := first["choices"].([]any)[0].(map[string]any)
	if d["delta"].(map[string]any)["content"] != "Hello" || d["finish_reason"] != nil {
		t.Errorf("first choice = %v", d)
	}
	if fr := last["choices"].([]any)[0].(map[string]any)["finish_reason"]; fr != "stop" {
		t.Errorf("finish_reason = %v", fr)
	}
	if len(use["choices"].([]any)) != 0 || use["usage"].(map[string]any)["total_tokens"].(float64) != 7 {
		t.Errorf("usage chunk = %v", use)
	}
}

func TestChatCompletionsToolsAndFormat(t *testing.T) {
	e := newEnv(t)
	e.engine.r.pieces = nil
	e.engine.r.toolCalls = []runner.ToolCall{{ID: "call_1", Function: runner.ToolCallFunction{Name: "add", Arguments: json.RawMessage(`{"a":1,"b":2}`)}}}
	body := `{"model":"tiny","messages":[{"role":"user","content":"1+2"}],"tools":[{"type":"function","function":{"name":"add","parameters":{"type":"object"}}}],
	"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"n":{"type":"integer"}}}}}}`
	m := object(t, e.do("POST", "/v1/chat/completions", body), 200)
	ch := m["choices"].([]any)[0].(map[string]any)
	tc := ch["message"].(map[string]any)["tool_calls"].([]any)[0].(map[string]any)
	if ch["finish_reason"] != "tool_calls" || tc["id"] != "call_1" || tc["type"] != "function" || tc["function"].(map[string]any)["arguments"] != `{"a":1,"b":2}` {
		t.Errorf("choice = %v", ch)
	}
	if got := string(e.engine.r.chats[0].Format); got != `{"type":"object","properties":{"n":{"type":"integer"}}}` {
		t.Errorf("format = %s", got)
	}
	object(t, e.do("POST", "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`), 200)
	if got := string(e.engine.r.chats[1].Format); got != `"json"` {
		t.Errorf("json_object format = %s", got)
	}
	// Tool results and assistant calls go back to the model.
	body = `{"model":"tiny","messages":[{"role":"user","content":"1+2"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"add","arguments":"{\"a\":1,\"b\":2}"}}]},{"role":"tool","tool_call_id":"call_1","content":"3"}]}`
	object(t, e.do("POST", "/v1/chat/completions", body), 200)
	msgs := e.engine.r.chats[2].Messages
	if msgs[1].ToolCalls[0].Function.Name != "add" || msgs[2].ToolCallID != "call_1" || msgs[2].Content != "3" {
		t.Errorf("messages = %+v", msgs)
	}
	// Streamed tool calls carry an index.
	w := e.do("POST", "/v1/chat/completions", `{"model":"tiny","stream":true,"messages":[{"role":"user","content":"1+2"}]}`)
	ev := sseEvents(t, w.Body.Bytes())
	if !strings.Contains(ev[len(ev)-2], `"index":0`) || !strings.Contains(ev[len(ev)-2], `"finish_reason":"tool_calls"`) {
		t.Errorf("last chunk = %s", ev[len(ev)-2])
	}
}

func TestOpenAIErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		path, body string
		status     int
		typ        string
	}{
		{"/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, 404, "not_found_error"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 400, "invalid_request_error"},
		{"/v1/chat/completions", `{"model":"tiny","messages":[]}`, 400, "invalid_request_error"},
		{"/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}`, 400, "invalid_request_error"},
		{"/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]}`, 400, "invalid_request_error"},
		{"/v1/completions", `{"model":"tiny","prompt":["a","b"]}`, 400, "invalid_request_error"},
		{"/v1/embeddings", `{"model":"tiny","input":"x","encoding_format":"hex"}`, 400, "invalid_request_error"},
	}
	for _, tt := range tests {
		m := object(t, e.do("POST", tt.path, tt.body), tt.status)
		er := m["error"].(map[string]any)
		if er["type"] != tt.typ || er["message"] == "" {
			t.Errorf("%s %s: error = %v", tt.path, tt.body, er)
		}
	}
	m := object(t, e.do("GET", "/v1/models/ghost", nil), 404)
	if m["error"].(map[string]any)["type"] != "not_found_error" {
		t.Errorf("model 404 = %v", m)
	}
}

func TestCompletions(t *testing.T) {
	e := newEnv(t)
	m := object(t, e.do("POST", "/v1/completions", `{"model":"tiny","prompt":"Say this","max_tokens":5}`), 200)
	ch := m["choices"].([]any)[0].(map[string]any)
	if m["object"] != "text_completion" || ch["text"] != "Hello world" || ch["finish_reason"] != "stop" {
		t.Errorf("completion = %v", m)
	}
	if e.engine.r.completions[0].Options.NumPredict != 5 {
		t.Errorf("max_tokens not applied")
	}
	w := e.do("POST", "/v1/completions", `{"model":"tiny","prompt":"Say this","stream":true}`)
	ev := sseEvents(t, w.Body.Bytes())
	if ev[len(ev)-1] != "[DONE]" || !strings.Contains(ev[0], `"text":"Hello"`) {
		t.Errorf("events = %q", ev)
	}
}

func TestOpenAIEmbeddings(t *testing.T) {
	e := newEnv(t)
	m := object(t, e.do("POST", "/v1/embeddings", `{"model":"tiny","input":["a b","c"]}`), 200)
	data := m["data"].([]any)
	if m["object"] != "list" || len(data) != 2 || data[1].(map[string]any)["index"].(float64) != 1 {
		t.Errorf("embeddings = %v", m)
	}
	if v := data[0].(map[string]any)["embedding"].([]any); len(v) != 4 {
		t.Errorf("vector = %v", v)
	}
	m = object(t, e.do("POST", "/v1/embeddings", `{"model":"tiny","input":"a","encoding_format":"base64"}`), 200)
	s := m["data"].([]any)[0].(map[string]any)["embedding"].(string)
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != 16 {
		t.Fatalf("base64 embedding %q: %v", s, err)
	}
	if x := math.Float32frombits(binary.LittleEndian.Uint32(raw)); x != 0.6 {
		t.Errorf("first value = %v", x)
	}
	if u := m["usage"].(map[string]any); u["prompt_tokens"].(float64) != 1 {
		t.Errorf("usage = %v", u)
	}
}

func TestOpenAIModels(t *testing.T) {
	e := newEnv(t)
	m := object(t, e.do("GET", "/v1/models", nil), 200)
	if m["object"] != "list" || len(m["data"].([]any)) != 2 {
		t.Errorf("models = %v", m)
	}
	m = object(t, e.do("GET", "/v1/models/tiny", nil), 200)
	if m["id"] != "tiny" || m["object"] != "model" || m["owned_by"] != "library" {
		t.Errorf("model = %v", m)
	}
}
