package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/runner"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

type testEnv struct {
	t      *testing.T
	engine *fakeEngine
	models *fakeModels
	build  *fakeBuilder
	srv    *Server
}

func newEnv(t *testing.T, mod ...func(*Options)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, engine: newFakeEngine(), models: newFakeModels(), build: &fakeBuilder{}}
	opts := Options{Engine: e.engine, Models: e.models, Builder: e.build, Transfers: fakeTransfers{},
		Version: "0.1.0-test", Addr: "127.0.0.1:11434", Now: func() time.Time { return testTime },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mod {
		m(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	return e
}

func (e *testEnv) do(method, path string, body any, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, "http://127.0.0.1:11434"+path, r)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	return w
}

// object decodes a single JSON object answer, checking the status.
func object(t *testing.T, w *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not one JSON object: %v: %s", err, w.Body)
	}
	return m
}

var durationRE = regexp.MustCompile(`"(total_duration|load_duration)":\d+`)

// golden compares got with testdata/name, durations that depend on the
// clock replaced by 0. -update rewrites the file.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	got = durationRE.ReplaceAll(got, []byte(`"$1":0`))
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestHealthAndVersion(t *testing.T) {
	e := newEnv(t)
	w := e.do("GET", "/", nil)
	if w.Code != 200 || w.Body.String() != "Ollama is running" {
		t.Errorf("GET / = %d %q", w.Code, w.Body)
	}
	w = e.do("HEAD", "/", nil)
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD / = %d %q", w.Code, w.Body)
	}
	if v := object(t, e.do("GET", "/api/version", nil), 200); v["version"] != "0.1.0-test" {
		t.Errorf("version = %v", v)
	}
}

func TestRouterErrors(t *testing.T) {
	e := newEnv(t)
	m := object(t, e.do("GET", "/api/nope", nil), 404)
	if !strings.Contains(m["error"].(string), "/api/nope") {
		t.Errorf("404 body = %v", m)
	}
	m = object(t, e.do("GET", "/api/generate", nil), 405)
	if m["error"] == nil {
		t.Errorf("405 body = %v", m)
	}
	if got := e.do("GET", "/api/generate", nil).Header().Get("Allow"); !strings.Contains(got, "POST") {
		t.Errorf("Allow = %q", got)
	}
}

func TestPanicIsA500(t *testing.T) {
	e := newEnv(t)
	e.engine.r = (*fakeRunner)(nil) // a nil runner makes the handler panic
	w := e.do("POST", "/api/embed", `{"model":"tiny","input":"x"}`)
	m := object(t, w, 500)
	if !strings.Contains(m["error"].(string), "internal error") {
		t.Errorf("panic body = %v", m)
	}
}

func TestGenerateStream(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/api/generate", `{"model":"tiny","prompt":"Why is the sky blue?"}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", ct)
	}
	golden(t, "generate_stream.ndjson", w.Body.Bytes())
	lines := ndjsonLines(w.Body.Bytes())
	last := lines[len(lines)-1]
	if last["done"] != true || last["response"] != "" || last["done_reason"] != "stop" {
		t.Errorf("final object = %v", last)
	}
	for _, k := range []string{"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration", "context"} {
		if _, ok := last[k]; !ok {
			t.Errorf("final object lacks %s: %v", k, last)
		}
	}
	// No Modelfile TEMPLATE: the runner renders the model's chat template.
	r := e.engine.r
	if len(r.renders) != 1 || r.renders[0].Messages[0].Content != "Why is the sky blue?" {
		t.Errorf("render requests = %+v", r.renders)
	}
	if got := r.completions[0].Prompt; got != "<user>Why is the sky blue?<assistant>" {
		t.Errorf("completion prompt = %q", got)
	}
	if e.engine.released != 1 {
		t.Errorf("runner released %d times, want 1", e.engine.released)
	}
}

func TestGenerateNoStream(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/api/generate", `{"model":"tiny","prompt":"hi","stream":false}`)
	m := object(t, w, 200)
	if m["response"] != "Hello world" || m["done"] != true || m["model"] != "tiny" {
		t.Errorf("response = %v", m)
	}
	if m["created_at"] != "2026-11-24T12:00:00Z" {
		t.Errorf("created_at = %v", m["created_at"])
	}
	golden(t, "generate.json", w.Body.Bytes())
}

func TestGenerateRawAndContext(t *testing.T) {
	e := newEnv(t)
	m := object(t, e.do("POST", "/api/generate", `{"model":"mario","prompt":"[INST] hi [/INST]","raw":true,"stream":false}`), 200)
	if _, ok := m["context"]; ok {
		t.Errorf("raw answer has a context: %v", m)
	}
	if got := e.engine.r.completions[0].Prompt; got != "[INST] hi [/INST]" {
		t.Errorf("raw prompt = %q", got)
	}
	object(t, e.do("POST", "/api/generate", `{"model":"tiny","prompt":"more words","context":[7,8],"stream":false}`), 200)
	c := e.engine.r.completions[1]
	if c.Prompt != "" || len(c.Tokens) < 3 || c.Tokens[0] != 7 || c.Tokens[1] != 8 {
		t.Errorf("context request = %+v", c)
	}
}

func TestGenerateModelfileLayers(t *testing.T) {
	e := newEnv(t)
	object(t, e.do("POST", "/api/generate", `{"model":"mario","prompt":"jump","stream":false,"options":{"top_k":3,"num_ctx":512}}`), 200)
	c := e.engine.r.completions[0]
	if want := "[SYS]You are Mario.[/SYS][INST]jump[/INST]"; c.Prompt != want {
		t.Errorf("templated prompt = %q, want %q", c.Prompt, want)
	}
	if len(e.engine.r.renders) != 0 {
		t.Errorf("a model with a TEMPLATE must not use the runner's template")
	}
	o := c.Options
	if o.Temperature != 0.5 || o.TopK != 3 || len(o.Stop) != 1 || o.Stop[0] != "</s>" || o.TopP != 0.9 {
		t.Errorf("sampling = %+v (want PARAMETER temperature, request top_k, default top_p)", o)
	}
	if l := e.engine.lastTarget().Load; l.NumCtx != 512 || l.Model != "/store/blobs/sha256/ab" {
		t.Errorf("load options = %+v (request num_ctx must override the model's)", l)
	}
	// A request's system and template override the model's.
	object(t, e.do("POST", "/api/generate", `{"model":"mario","prompt":"jump","system":"Be Luigi.","template":"{{.System}}|{{.Prompt}}|{{.Response}}END","stream":false}`), 200)
	if got := e.engine.r.completions[1].Prompt; got != "Be Luigi.|jump|" {
		t.Errorf("overridden prompt = %q", got)
	}
}

func TestGenerateFormat(t *testing.T) {
	e := newEnv(t)
	object(t, e.do("POST", "/api/generate", `{"model":"tiny","prompt":"x","format":"json","stream":false}`), 200)
	if got := string(e.engine.r.completions[0].JSONSchema); got != `"json"` {
		t.Errorf("json format = %s", got)
	}
	schema := `{"type":"object","properties":{"age":{"type":"integer"}},"required":["age"]}`
	object(t, e.do("POST", "/api/generate", `{"model":"tiny","prompt":"x","format":`+schema+`,"stream":false}`), 200)
	if got := string(e.engine.r.completions[1].JSONSchema); got != schema {
		t.Errorf("schema format = %s", got)
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		mention    string
	}{
		{"no body", ``, 400, "missing request body"},
		{"bad json", `{"model":`, 400, "invalid JSON"},
		{"missing model", `{"prompt":"x"}`, 400, "model is required"},
		{"unknown model", `{"model":"nope","prompt":"x"}`, 404, `model "nope" not found`},
		{"bad name", `{"model":"bad name!","prompt":"x"}`, 400, "bad name"},
		{"bad format", `{"model":"tiny","prompt":"x","format":"xml"}`, 400, "format"},
		{"format number", `{"model":"tiny","prompt":"x","format":3}`, 400, "format"},
		{"wrong type", `{"model":"tiny","prompt":5}`, 400, `"prompt"`},
		{"bad option type", `{"model":"tiny","prompt":"x","options":{"temperature":"hot"}}`, 400, "options.temperature"},
		{"bad option value", `{"model":"tiny","prompt":"x","options":{"top_p":2}}`, 400, "options.top_p"},
		{"bad keep_alive", `{"model":"tiny","prompt":"x","keep_alive":"soon"}`, 400, "duration"},
		{"suffix without template", `{"model":"tiny","prompt":"x","suffix":"y"}`, 400, "insert"},
		{"bad think", `{"model":"tiny","prompt":"x","think":"max"}`, 400, "think"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			m := object(t, e.do("POST", "/api/generate", tt.body), tt.status)
			if msg, _ := m["error"].(string); !strings.Contains(msg, tt.mention) {
				t.Errorf("error %q does not mention %q", msg, tt.mention)
			}
			if len(m) != 1 {
				t.Errorf("error body has extra fields: %v", m)
			}
		})
	}
}

func TestGenerateBusy(t *testing.T) {
	e := newEnv(t)
	e.engine.busy = true
	m := object(t, e.do("POST", "/api/generate", `{"model":"tiny","prompt":"x"}`), 503)
	if !strings.Contains(m["error"].(string), "busy") {
		t.Errorf("503 body = %v", m)
	}
}

func TestGenerateErrorMidStream(t *testing.T) {
	e := newEnv(t)
	e.engine.r.failAfter = true
	w := e.do("POST", "/api/generate", `{"model":"tiny","prompt":"x"}`)
	lines := ndjsonLines(w.Body.Bytes())
	if w.Code != 200 || len(lines) != 2 || lines[0]["response"] != "Hello" {
		t.Fatalf("stream = %d %s", w.Code, w.Body)
	}
	if msg, _ := lines[1]["error"].(string); !strings.Contains(msg, "runner exited") {
		t.Errorf("last line = %v", lines[1])
	}
}

func TestLoadAndUnload(t *testing.T) {
	e := newEnv(t)
	m := object(t, e.do("POST", "/api/generate", `{"model":"tiny"}`), 200)
	if m["done"] != true || m["response"] != "" || m["done_reason"] != "load" {
		t.Errorf("load = %v", m)
	}
	if len(e.engine.targets) != 1 || len(e.engine.r.completions) != 0 {
		t.Errorf("load must acquire without generating")
	}
	m = object(t, e.do("POST", "/api/generate", `{"model":"tiny","keep_alive":0}`), 200)
	if m["done_reason"] != "unload" || len(e.engine.unloaded) != 1 || e.engine.unloaded[0] != "tiny:latest" {
		t.Errorf("unload = %v, unloaded %v", m, e.engine.unloaded)
	}
	m = object(t, e.do("POST", "/api/chat", `{"model":"tiny","messages":[]}`), 200)
	if m["done_reason"] != "load" || m["message"].(map[string]any)["role"] != "assistant" {
		t.Errorf("chat load = %v", m)
	}
	m = object(t, e.do("POST", "/api/chat", `{"model":"tiny","messages":[],"keep_alive":"0s"}`), 200)
	if m["done_reason"] != "unload" || len(e.engine.unloaded) != 2 {
		t.Errorf("chat unload = %v", m)
	}
}

func TestKeepAlive(t *testing.T) {
	tests := []struct {
		body string
		want *time.Duration
	}{
		{`{"model":"tiny","prompt":"x","stream":false}`, nil},
		{`{"model":"tiny","prompt":"x","stream":false,"keep_alive":"10m"}`, api.Ptr(10 * time.Minute)},
		{`{"model":"tiny","prompt":"x","stream":false,"keep_alive":30}`, api.Ptr(30 * time.Second)},
		{`{"model":"tiny","prompt":"x","stream":false,"keep_alive":-1}`, api.Ptr(api.Forever)},
		{`{"model":"tiny","prompt":"x","stream":false,"keep_alive":"-1m"}`, api.Ptr(api.Forever)},
	}
	for _, tt := range tests {
		e := newEnv(t)
		object(t, e.do("POST", "/api/generate", tt.body), 200)
		got := e.engine.lastTarget().KeepAlive
		if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
			t.Errorf("%s: keep alive = %v, want %v", tt.body, got, tt.want)
		}
	}
}

func TestClientDisconnectCancels(t *testing.T) {
	e := newEnv(t)
	e.engine.r.block = true
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/api/generate", strings.NewReader(`{"model":"tiny","prompt":"x"}`))
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e.engine.r.mu.Lock()
		c := e.engine.r.cancelled
		e.engine.r.mu.Unlock()
		e.engine.mu.Lock()
		rel := e.engine.released
		e.engine.mu.Unlock()
		if c && rel == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("generation was not cancelled (or the slot not released) after the client went away")
}

func TestChatStream(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/api/chat", `{"model":"tiny","messages":[{"role":"user","content":"why is the sky blue?"}]}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	golden(t, "chat_stream.ndjson", w.Body.Bytes())
	lines := ndjsonLines(w.Body.Bytes())
	if len(lines) != 3 {
		t.Fatalf("want 2 pieces and a final object, got %s", w.Body)
	}
	if msg := lines[0]["message"].(map[string]any); msg["role"] != "assistant" || msg["content"] != "Hello" {
		t.Errorf("first = %v", lines[0])
	}
	if lines[2]["done"] != true || lines[2]["done_reason"] != "stop" {
		t.Errorf("final = %v", lines[2])
	}
}

func TestChatNoStreamWithModelLayers(t *testing.T) {
	e := newEnv(t)
	m := object(t, e.do("POST", "/api/chat", `{"model":"mario","stream":false,"messages":[{"role":"user","content":"jump"}]}`), 200)
	if msg := m["message"].(map[string]any); msg["content"] != "Hello world" {
		t.Errorf("message = %v", msg)
	}
	c := e.engine.r.chats[0]
	roles := []string{}
	for _, x := range c.Messages {
		roles = append(roles, x.Role+":"+x.Content)
	}
	want := []string{"system:You are Mario.", "user:who are you?", "assistant:It's-a me!", "user:jump"}
	if strings.Join(roles, "|") != strings.Join(want, "|") {
		t.Errorf("messages = %v, want %v", roles, want)
	}
	wantPrompt := "[SYS]You are Mario.[/SYS][INST]who are you?[/INST]It's-a me!</s>[INST]jump[/INST]"
	if c.Prompt != wantPrompt {
		t.Errorf("prompt = %q, want %q", c.Prompt, wantPrompt)
	}
	if c.Options.Temperature != 0.5 {
		t.Errorf("PARAMETER temperature not applied: %+v", c.Options)
	}
}

func TestChatTools(t *testing.T) {
	e := newEnv(t)
	e.engine.r.pieces = nil
	e.engine.r.toolCalls = []runner.ToolCall{{Function: runner.ToolCallFunction{Name: "get_current_weather", Arguments: json.RawMessage(`{"format":"celsius","location":"Paris, FR"}`)}}}
	body := `{"model":"tiny","stream":false,"messages":[{"role":"user","content":"weather in Paris?"}],
	"tools":[{"type":"function","function":{"name":"get_current_weather","description":"Get the weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}]}`
	w := e.do("POST", "/api/chat", body)
	m := object(t, w, 200)
	golden(t, "chat_tools.json", w.Body.Bytes())
	calls := m["message"].(map[string]any)["tool_calls"].([]any)
	fn := calls[0].(map[string]any)["function"].(map[string]any)
	if fn["name"] != "get_current_weather" || fn["arguments"].(map[string]any)["location"] != "Paris, FR" {
		t.Errorf("tool call = %v", fn)
	}
	var tools []map[string]any
	if err := json.Unmarshal(e.engine.r.chats[0].Tools, &tools); err != nil || tools[0]["function"].(map[string]any)["name"] != "get_current_weather" {
		t.Errorf("tools sent to runner = %s", e.engine.r.chats[0].Tools)
	}
	// A tool result goes back with its role and name.
	body = `{"model":"tiny","stream":false,"messages":[{"role":"user","content":"weather?"},
	{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_current_weather","arguments":{"location":"Paris"}}}]},
	{"role":"tool","content":"22 degrees","tool_name":"get_current_weather"}]}`
	object(t, e.do("POST", "/api/chat", body), 200)
	msgs := e.engine.r.chats[1].Messages
	if string(msgs[1].ToolCalls[0].Function.Arguments) != `{"location":"Paris"}` || msgs[2].Role != "tool" || msgs[2].ToolName != "get_current_weather" {
		t.Errorf("messages to runner = %+v", msgs)
	}
}

func TestChatThinkingAndImages(t *testing.T) {
	e := newEnv(t)
	e.engine.r.thinking = "hmm"
	m := object(t, e.do("POST", "/api/chat", `{"model":"tiny","stream":false,"think":true,"messages":[{"role":"user","content":"what is this?","images":["aGVsbG8="]}]}`), 200)
	if msg := m["message"].(map[string]any); msg["thinking"] != "hmm" {
		t.Errorf("thinking = %v", msg)
	}
	c := e.engine.r.chats[0]
	if c.Think == nil || !*c.Think || string(c.Messages[0].Images[0]) != "hello" {
		t.Errorf("chat request = %+v", c)
	}
}

func TestChatErrors(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		mention    string
	}{
		{"bad role", `{"model":"tiny","messages":[{"role":"robot","content":"x"}]}`, 400, "messages[0].role"},
		{"tool without name", `{"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{}}]}`, 400, "tools[0].function.name"},
		{"unknown model", `{"model":"ghost","messages":[{"role":"user","content":"x"}]}`, 404, "ghost"},
		{"bad format", `{"model":"tiny","messages":[],"format":[1]}`, 400, "format"},
		{"bad image", `{"model":"tiny","messages":[{"role":"user","content":"x","images":["%%%"]}]}`, 400, "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			m := object(t, e.do("POST", "/api/chat", tt.body), tt.status)
			if msg, _ := m["error"].(string); !strings.Contains(msg, tt.mention) {
				t.Errorf("error %q does not mention %q", msg, tt.mention)
			}
		})
	}
}

func TestEmbed(t *testing.T) {
	e := newEnv(t)
	m := object(t, e.do("POST", "/api/embed", `{"model":"tiny","input":"Why is the sky blue?"}`), 200)
	if embs := m["embeddings"].([]any); len(embs) != 1 || len(embs[0].([]any)) != 4 {
		t.Errorf("embeddings = %v", m)
	}
	if m["model"] != "tiny" || m["prompt_eval_count"].(float64) != 5 {
		t.Errorf("embed = %v", m)
	}
	if !e.engine.r.embeds[0].Truncate {
		t.Errorf("truncate must default to true")
	}
	m = object(t, e.do("POST", "/api/embed", `{"model":"tiny","input":["a","b"],"truncate":false,"dimensions":2}`), 200)
	embs := m["embeddings"].([]any)
	if len(embs) != 2 || len(embs[0].([]any)) != 2 || e.engine.r.embeds[1].Truncate {
		t.Errorf("embeddings = %v", m)
	}
	if v := embs[0].([]any); v[0].(float64) < 0.59 || v[0].(float64) > 0.61 {
		t.Errorf("shortened vector not renormalized: %v", v)
	}
	m = object(t, e.do("POST", "/api/embed", `{"model":"tiny","input":"`+strings.Repeat("x", 200)+`","truncate":false}`), 400)
	if !strings.Contains(m["error"].(string), "context length") {
		t.Errorf("error = %v", m)
	}
	object(t, e.do("POST", "/api/embed", `{"model":"tiny","input":"x","dimensions":99}`), 400)
	object(t, e.do("POST", "/api/embed", `{"model":"tiny","input":3}`), 400)
	object(t, e.do("POST", "/api/embed", `{"model":"nope","input":"x"}`), 404)

	m = object(t, e.do("POST", "/api/embeddings", `{"model":"tiny","prompt":"Here is an article about llamas..."}`), 200)
	if v := m["embedding"].([]any); len(v) != 4 || len(m) != 1 {
		t.Errorf("legacy embedding = %v", m)
	}
	// Only the legacy endpoint asks the runner for raw (unnormalized) vectors, as Ollama's does.
	for i, r := range e.engine.r.embeds {
		if want := i == len(e.engine.r.embeds)-1; r.Raw != want {
			t.Errorf("embed request %d: raw %v, want %v", i, r.Raw, want)
		}
	}
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	w := e.do("GET", "/api/tags", nil)
	golden(t, "tags.json", w.Body.Bytes())
	m := object(t, w, 200)
	ms := m["models"].([]any)
	if len(ms) != 2 || ms[0].(map[string]any)["name"] != "mario:latest" {
		t.Errorf("models (newest first) = %v", ms)
	}
	d := ms[1].(map[string]any)
	if d["digest"] != strings.Repeat("ab", 32) || d["details"].(map[string]any)["families"].([]any)[0] != "llama" {
		t.Errorf("model = %v", d)
	}
}

func TestShow(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/api/show", `{"model":"mario"}`)
	golden(t, "show.json", w.Body.Bytes())
	m := object(t, w, 200)
	if m["system"] != "You are Mario." || !strings.Contains(m["template"].(string), "[INST]") || m["license"] != "MIT" {
		t.Errorf("show = %v", m)
	}
	if p := m["parameters"].(string); !strings.Contains(p, "temperature") || !strings.Contains(p, `stop                           "</s>"`) {
		t.Errorf("parameters = %q", p)
	}
	if mf := m["modelfile"].(string); !strings.Contains(mf, "FROM /store/blobs/sha256/ab") || !strings.Contains(mf, "PARAMETER num_ctx 1024") || !strings.Contains(mf, `SYSTEM """You are Mario."""`) {
		t.Errorf("modelfile = %q", mf)
	}
	info := m["model_info"].(map[string]any)
	if len(info["tokenizer.ggml.tokens"].([]any)) != 0 {
		t.Errorf("non-verbose show returned token list")
	}
	m = object(t, e.do("POST", "/api/show", `{"model":"tiny","verbose":true}`), 200)
	if len(m["model_info"].(map[string]any)["tokenizer.ggml.tokens"].([]any)) != 3 {
		t.Errorf("verbose show lacks tokens: %v", m["model_info"])
	}
	object(t, e.do("POST", "/api/show", `{"model":"nope"}`), 404)
	object(t, e.do("POST", "/api/show", `{}`), 400)
}

func TestCopyDelete(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/api/copy", `{"source":"tiny","destination":"tiny-backup"}`)
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("copy = %d %s", w.Code, w.Body)
	}
	if _, ok := e.models.models["tiny-backup:latest"]; !ok {
		t.Errorf("copy did not create the model")
	}
	object(t, e.do("POST", "/api/copy", `{"source":"nope","destination":"x"}`), 404)
	m := object(t, e.do("POST", "/api/copy", `{"source":"tiny"}`), 400)
	if !strings.Contains(m["error"].(string), "destination") {
		t.Errorf("error = %v", m)
	}
	w = e.do("DELETE", "/api/delete", `{"model":"tiny-backup"}`)
	if w.Code != 200 {
		t.Errorf("delete = %d %s", w.Code, w.Body)
	}
	object(t, e.do("DELETE", "/api/delete", `{"model":"tiny-backup"}`), 404)
	object(t, e.do("DELETE", "/api/delete", `{}`), 400)
	if w := e.do("POST", "/api/delete", `{"model":"tiny"}`); w.Code != 405 {
		t.Errorf("POST /api/delete = %d", w.Code)
	}
}

func TestBlobs(t *testing.T) {
	e := newEnv(t)
	data := []byte("GGUF fake blob")
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if w := e.do("HEAD", "/api/blobs/"+d, nil); w.Code != 404 {
		t.Errorf("HEAD missing = %d", w.Code)
	}
	if w := e.do("POST", "/api/blobs/"+d, data); w.Code != 201 {
		t.Errorf("POST = %d %s", w.Code, w.Body)
	}
	if w := e.do("HEAD", "/api/blobs/"+d, nil); w.Code != 200 {
		t.Errorf("HEAD present = %d", w.Code)
	}
	other := "sha256:" + strings.Repeat("0", 64)
	m := object(t, e.do("POST", "/api/blobs/"+other, data), 400)
	if !strings.Contains(m["error"].(string), "mismatch") {
		t.Errorf("mismatch error = %v", m)
	}
	if w := e.do("POST", "/api/blobs/..%2f..%2fetc%2fpasswd", data); w.Code != 400 && w.Code != 404 {
		t.Errorf("path traversal = %d", w.Code)
	}
	for _, bad := range []string{"sha256:abc", "md5:" + strings.Repeat("0", 32), "sha256:" + strings.Repeat("G", 64), "sha256:" + strings.Repeat("A", 64)} {
		if w := e.do("POST", "/api/blobs/"+bad, data); w.Code != 400 {
			t.Errorf("POST %s = %d", bad, w.Code)
		}
		if w := e.do("HEAD", "/api/blobs/"+bad, nil); w.Code != 400 {
			t.Errorf("HEAD %s = %d", bad, w.Code)
		}
	}
}

func TestPs(t *testing.T) {
	e := newEnv(t)
	if m := object(t, e.do("GET", "/api/ps", nil), 200); len(m["models"].([]any)) != 0 {
		t.Errorf("ps before load = %v", m)
	}
	object(t, e.do("POST", "/api/generate", `{"model":"tiny"}`), 200)
	w := e.do("GET", "/api/ps", nil)
	golden(t, "ps.json", w.Body.Bytes())
	m := object(t, w, 200)
	p := m["models"].([]any)[0].(map[string]any)
	if p["name"] != "tiny:latest" || p["expires_at"] != "2026-01-02T03:04:05Z" || p["size_vram"].(float64) != 0 || p["size"].(float64) != 1000 {
		t.Errorf("ps = %v", p)
	}
}

func TestPullPush(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/api/pull", `{"model":"llama3.2"}`)
	golden(t, "pull.ndjson", w.Body.Bytes())
	var statuses []string
	for _, l := range ndjsonLines(w.Body.Bytes()) {
		statuses = append(statuses, l["status"].(string))
	}
	d := "sha256:" + strings.Repeat("ef", 32)
	want := []string{"pulling manifest", "downloading " + d, "downloading " + d, "downloading " + d, "verifying sha256 digest", "writing manifest", "success"}
	if strings.Join(statuses, "|") != strings.Join(want, "|") {
		t.Errorf("pull statuses = %v", statuses)
	}
	m := object(t, e.do("POST", "/api/pull", `{"model":"llama3.2","stream":false}`), 200)
	if len(m) != 1 || m["status"] != "success" {
		t.Errorf("pull no stream = %v", m)
	}
	object(t, e.do("POST", "/api/pull", `{"model":"nope","stream":false}`), 404)
	object(t, e.do("POST", "/api/pull", `{}`), 400)

	w = e.do("POST", "/api/push", `{"model":"ns/tiny:latest"}`)
	golden(t, "push.ndjson", w.Body.Bytes())
	statuses = nil
	for _, l := range ndjsonLines(w.Body.Bytes()) {
		statuses = append(statuses, l["status"].(string))
	}
	want = []string{"retrieving manifest", "starting upload", "uploading " + d, "uploading " + d, "uploading " + d, "pushing manifest", "success"}
	if strings.Join(statuses, "|") != strings.Join(want, "|") {
		t.Errorf("push statuses = %v", statuses)
	}
	// Not configured: 501.
	e2 := newEnv(t, func(o *Options) { o.Transfers = nil; o.Builder = nil })
	object(t, e2.do("POST", "/api/pull", `{"model":"x"}`), 501)
	object(t, e2.do("POST", "/api/create", `{"model":"x","from":"tiny"}`), 501)
}

func TestCreate(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/api/create", `{"model":"mario","from":"tiny","system":"You are Mario.","parameters":{"temperature":0.7,"stop":["</s>"]}}`)
	lines := ndjsonLines(w.Body.Bytes())
	if w.Code != 200 || len(lines) != 4 || lines[3]["status"] != "success" || lines[0]["status"] != "parsing GGUF" {
		t.Errorf("create = %d %s", w.Code, w.Body)
	}
	if r := e.build.reqs[0]; r.System != "You are Mario." || r.From != "tiny" {
		t.Errorf("builder got %+v", r)
	}
	m := object(t, e.do("POST", "/api/create", `{"model":"m2","files":{"test.gguf":"sha256:`+strings.Repeat("ab", 32)+`"},"stream":false}`), 200)
	if m["status"] != "success" {
		t.Errorf("create no stream = %v", m)
	}
	tests := []struct{ body, mention string }{
		{`{"from":"tiny"}`, "model is required"},
		{`{"model":"x"}`, "from, files or modelfile"},
		{`{"model":"x","files":{"a.gguf":"sha256:zz"}}`, `files["a.gguf"]`},
		{`{"model":"x","from":"tiny","parameters":{"nonsense":1}}`, "nonsense"},
		{`{"model":"x","from":"tiny","parameters":{"temperature":"hot"}}`, "temperature"},
		{`{"model":"x","from":"tiny","license":5}`, "license"},
	}
	for _, tt := range tests {
		m := object(t, e.do("POST", "/api/create", tt.body), 400)
		if !strings.Contains(m["error"].(string), tt.mention) {
			t.Errorf("%s: error %v does not mention %q", tt.body, m, tt.mention)
		}
	}
	object(t, e.do("POST", "/api/create", `{"model":"x","from":"missing","stream":false}`), 404)
}

func TestHostCheck(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{"localhost:11434", "127.0.0.1:11434", "[::1]:11434", "localhost", "app.localhost:3000", ""} {
		if w := e.do("GET", "/api/version", nil, "Host", h); w.Code != 200 {
			t.Errorf("Host %q refused: %d", h, w.Code)
		}
	}
	for _, h := range []string{"evil.example.com", "evil.example.com:11434", "192.168.1.5:11434"} {
		w := e.do("GET", "/api/version", nil, "Host", h)
		m := object(t, w, 403)
		if !strings.Contains(m["error"].(string), "not allowed") {
			t.Errorf("Host %q: %v", h, m)
		}
	}
	open := newEnv(t, func(o *Options) { o.Addr = "0.0.0.0:11434" })
	if w := open.do("GET", "/api/version", nil, "Host", "evil.example.com"); w.Code != 200 {
		t.Errorf("bound to 0.0.0.0, any Host must be accepted: %d", w.Code)
	}
	named := newEnv(t, func(o *Options) { o.Addr = "myhost.lan:8080" })
	if w := named.do("GET", "/api/version", nil, "Host", "myhost.lan:8080"); w.Code != 200 {
		t.Errorf("the bound host must be accepted: %d", w.Code)
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t)
	w := e.do("GET", "/api/version", nil, "Origin", "http://example.com")
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS header sent without OLM_ORIGINS")
	}
	e = newEnv(t, func(o *Options) { o.Origins = []string{"http://example.com", "http://localhost:*"} })
	for _, origin := range []string{"http://example.com", "http://localhost:5173"} {
		w = e.do("GET", "/api/version", nil, "Origin", origin)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("origin %s: Allow-Origin = %q", origin, got)
		}
	}
	if got := e.do("GET", "/api/version", nil, "Origin", "http://evil.com").Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("unlisted origin allowed: %q", got)
	}
	w = e.do("OPTIONS", "/api/chat", nil, "Origin", "http://example.com", "Access-Control-Request-Method", "POST")
	if w.Code != 204 || !strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight = %d %v", w.Code, w.Header())
	}
}

func TestAPIKey(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.APIKey = "s3cret" })
	if w := e.do("GET", "/", nil); w.Code != 200 {
		t.Errorf("health needs no key: %d", w.Code)
	}
	m := object(t, e.do("GET", "/api/tags", nil), 401)
	if !strings.Contains(m["error"].(string), "API key") {
		t.Errorf("401 body = %v", m)
	}
	object(t, e.do("GET", "/api/tags", nil, "Authorization", "Bearer wrong"), 401)
	object(t, e.do("GET", "/api/tags", nil, "Authorization", "s3cret"), 401)
	object(t, e.do("GET", "/api/tags", nil, "Authorization", "Bearer s3cret"), 200)
	w := e.do("GET", "/v1/models", nil)
	if w.Code != 401 {
		t.Errorf("/v1 without key = %d", w.Code)
	}
}

func TestNoChatTemplateFallback(t *testing.T) {
	e := newEnv(t)
	e.engine.r.noChatTemplate = true
	object(t, e.do("POST", "/api/generate", `{"model":"tiny","prompt":"once upon a time","system":"S","stream":false}`), 200)
	if got := e.engine.r.completions[0].Prompt; got != "S\n\nonce upon a time" {
		t.Errorf("base-model prompt = %q", got)
	}
	object(t, e.do("POST", "/api/chat", `{"model":"tiny","stream":false,"messages":[{"role":"user","content":"hi"}]}`), 200)
	if got := e.engine.r.chats[0].Prompt; got != "hi" {
		t.Errorf("base-model chat prompt = %q", got)
	}
	if len(e.engine.r.renders) != 0 {
		t.Errorf("runner asked to render without a template")
	}
}

func TestGenerateThinking(t *testing.T) {
	e := newEnv(t)
	e.engine.r.thinking = "let me see"
	m := object(t, e.do("POST", "/api/generate", `{"model":"tiny","prompt":"2+2?","think":true,"stream":false,"format":"json"}`), 200)
	if m["thinking"] != "let me see" || m["response"] != "Hello world" || m["done"] != true {
		t.Errorf("thinking generate = %v", m)
	}
	c := e.engine.r.chats[0]
	if c.Think == nil || !*c.Think || c.Messages[0].Content != "2+2?" || string(c.Format) != `"json"` || len(e.engine.r.completions) != 0 {
		t.Errorf("runner request = %+v", c)
	}
}
