package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olmhq/olm/api"
)

// fakeOllama records chat and generate requests and answers with fixed text.
type fakeOllama struct {
	mu      sync.Mutex
	chats   []api.ChatRequest
	gens    []api.GenerateRequest
	creates []api.CreateRequest
	// vision makes /api/show report the vision capability.
	vision bool
}

func (f *fakeOllama) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/show":
		var req api.ShowRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Model == "missing" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintln(w, `{"error":"model \"missing\" not found, try pulling it first"}`)
			return
		}
		caps := []string{"completion"}
		f.mu.Lock()
		if f.vision {
			caps = append(caps, "vision")
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(api.ShowResponse{System: "model system", Template: "{{ .Prompt }}", Parameters: "temperature 0.5",
			Details: api.ModelDetails{Family: "llama", ParameterSize: "1M", QuantizationLevel: "F16"}, Capabilities: caps})
	case "/api/create":
		var req api.CreateRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.creates = append(f.creates, req)
		f.mu.Unlock()
		fmt.Fprintln(w, `{"status":"success"}`)
	case "/api/generate":
		var req api.GenerateRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.gens = append(f.gens, req)
		f.mu.Unlock()
		if req.Prompt == "" {
			fmt.Fprintln(w, `{"model":"m","response":"","done":true,"done_reason":"load"}`)
			return
		}
		fmt.Fprintln(w, `{"model":"m","response":"one ","done":false}`)
		fmt.Fprintln(w, `{"model":"m","response":"shot","done":false}`)
		fmt.Fprintln(w, `{"model":"m","response":"","done":true,"eval_count":2,"eval_duration":1000000000}`)
	case "/api/chat":
		var req api.ChatRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.chats = append(f.chats, req)
		n := len(f.chats)
		f.mu.Unlock()
		fmt.Fprintf(w, `{"model":"m","message":{"role":"assistant","content":"answer %d"},"done":false}`+"\n", n)
		fmt.Fprintln(w, `{"model":"m","message":{"role":"assistant","content":""},"done":true,"eval_count":3,"eval_duration":1000000000}`)
	default:
		http.NotFound(w, r)
	}
}

func newTestSession(t *testing.T) (*runSession, *fakeOllama, *bytes.Buffer, *bytes.Buffer) {
	f := &fakeOllama{}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	u, _ := url.Parse(ts.URL)
	var out, errw bytes.Buffer
	return &runSession{c: &RunCmd{Model: "m"}, cl: api.NewClient(u, api.ClientOptions{}), out: &out, errw: &errw}, f, &out, &errw
}

func TestRunOneShot(t *testing.T) {
	s, f, out, errw := newTestSession(t)
	s.c.Verbose = true
	s.format = json.RawMessage(`"json"`)
	s.ka = api.NewDuration(0)
	if err := s.generate(context.Background(), "hi"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "one shot\n" {
		t.Errorf("output = %q", out.String())
	}
	if !strings.Contains(errw.String(), "eval rate:            2.00 tokens/s") {
		t.Errorf("verbose stats = %q", errw.String())
	}
	g := f.gens[0]
	if g.Prompt != "hi" || string(g.Format) != `"json"` || g.KeepAlive == nil || g.KeepAlive.Duration != 0 {
		t.Errorf("request = %+v", g)
	}
}

func TestRunREPL(t *testing.T) {
	s, f, out, errw := newTestSession(t)
	input := strings.Join([]string{
		"hello",
		"/set parameter temperature 0.1",
		"/set parameter stop <end>",
		"/set system You are a pirate.",
		`"""first line`,
		"second line",
		`end"""`,
		"/show parameters",
		"/show system",
		"/show info",
		"/clear",
		"again",
		"/set parameter nonsense 1",
		"/bye",
		"never sent",
	}, "\n")
	if err := s.repl(context.Background(), strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	if len(f.gens) != 1 || f.gens[0].Prompt != "" {
		t.Errorf("the REPL must load the model first: %+v", f.gens)
	}
	if len(f.chats) != 3 {
		t.Fatalf("chats = %d, want 3", len(f.chats))
	}
	c1 := f.chats[1]
	if len(c1.Messages) != 4 || c1.Messages[0].Role != "system" || c1.Messages[0].Content != "You are a pirate." ||
		c1.Messages[1].Content != "hello" || c1.Messages[2].Content != "answer 1" || c1.Messages[3].Content != "first line\nsecond line\nend" {
		t.Errorf("second chat messages = %+v", c1.Messages)
	}
	if o := c1.Options; o == nil || *o.Temperature != 0.1 || len(o.Stop) != 1 || o.Stop[0] != "<end>" {
		t.Errorf("options = %+v", o)
	}
	c2 := f.chats[2]
	if len(c2.Messages) != 2 || c2.Messages[1].Content != "again" {
		t.Errorf("after /clear messages = %+v", c2.Messages)
	}
	o := out.String()
	for _, want := range []string{"answer 1", "Set parameter 'temperature' to '0.1'", "temperature 0.5", "You are a pirate.", "architecture        llama", "Cleared session context"} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
	if !strings.Contains(errw.String(), "nonsense") {
		t.Errorf("unknown parameter not reported: %q", errw.String())
	}
	if strings.Contains(o, "never sent") {
		t.Errorf("input after /bye was used")
	}
}

func TestBindAddress(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "127.0.0.1:11434",
		"0.0.0.0":             "0.0.0.0:11434",
		"127.0.0.1:8080":      "127.0.0.1:8080",
		"http://[::1]:9000/":  "[::1]:9000",
		":7000":               ":7000",
		"https://example.com": "example.com:11434",
	} {
		if got, err := bindAddress(in); err != nil || got != want {
			t.Errorf("bindAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestRunREPLCancel checks that a cancelled context (Ctrl-C) ends the chat
// while it waits at the prompt.
func TestRunREPLCancel(t *testing.T) {
	s, f, _, _ := newTestSession(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.repl(ctx, pr) }()
	for loaded := false; !loaded; time.Sleep(time.Millisecond) { // wait for the load request
		f.mu.Lock()
		loaded = len(f.gens) == 1
		f.mu.Unlock()
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("repl = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the REPL did not end when its context was cancelled")
	}
}
