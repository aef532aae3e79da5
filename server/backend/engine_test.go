package backend

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
	"github.com/olmhq/olm/runtime/runner/engine"
	"github.com/olmhq/olm/runtime/sched"
	"github.com/olmhq/olm/server"
)

// runnerEnv makes the test binary act as `olm runner` (see TestMain), so
// the Engine tests run the runner code under test in a real child process.
const runnerEnv = "OLM_TEST_RUNNER"

func TestMain(m *testing.M) {
	if os.Getenv(runnerEnv) == "1" {
		if err := engine.Main(context.Background(), os.Args[1:], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// countingEngine counts the events the runner sends for each request.
type countingEngine struct {
	*Engine
	mu     sync.Mutex
	events []int // per Completion or Chat call
}

func (c *countingEngine) Acquire(ctx context.Context, t server.Target) (server.Runner, func(), error) {
	r, release, err := c.Engine.Acquire(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	return &countingRunner{Runner: r, e: c}, release, nil
}

func (c *countingEngine) record(n int) {
	c.mu.Lock()
	c.events = append(c.events, n)
	c.mu.Unlock()
}

func (c *countingEngine) last() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[len(c.events)-1]
}

type countingRunner struct {
	server.Runner
	e *countingEngine
}

func (r *countingRunner) Completion(ctx context.Context, req runner.CompletionRequest, fn func(runner.CompletionEvent) error) (*runner.CompletionEvent, error) {
	n := 0
	defer func() { r.e.record(n) }()
	return r.Runner.Completion(ctx, req, func(ev runner.CompletionEvent) error { n++; return fn(ev) })
}

func (r *countingRunner) Chat(ctx context.Context, req runner.ChatRequest, fn func(runner.ChatEvent) error) (*runner.ChatEvent, error) {
	n := 0
	defer func() { r.e.record(n) }()
	return r.Runner.Chat(ctx, req, func(ev runner.ChatEvent) error { n++; return fn(ev) })
}

// post sends a JSON request and returns the response objects (one, or
// one per NDJSON line).
func post(t *testing.T, url string, body any) []map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %s: %s", url, resp.Status, msg)
	}
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", sc.Bytes(), err)
		}
		if e, ok := m["error"]; ok {
			t.Fatalf("POST %s: error %v", url, e)
		}
		out = append(out, m)
	}
	return out
}

// TestEngineNoStream runs /api/generate and /api/chat through Engine and a
// real runner process: a request with "stream": false gets its answer from
// the runner in one event, the same text, done reason, counts and context
// as the streamed answer (greedy sampling).
func TestEngineNoStream(t *testing.T) {
	if !llama.Available() {
		testenv.Missing(t, "a cgo build with llama.cpp", "run `make llama` and build with CGO_ENABLED=1")
	}
	p := newParts(t)
	p.create(t, &api.CreateRequest{Model: "tiny", Modelfile: "FROM " + testmodel.Tiny(t)})
	sc := sched.New(sched.Options{Start: sched.ProcessStarter(runner.StartOptions{
		Executable: os.Args[0], Args: []string{}, Env: []string{runnerEnv + "=1"}, StartTimeout: time.Minute})})
	defer sc.Close()
	eng := &countingEngine{Engine: &Engine{Sched: sc}}
	srv, err := server.New(server.Options{Engine: eng, Models: p.models, Builder: p.build, Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	opts := map[string]any{"temperature": 0, "num_predict": 24, "num_ctx": 256}
	for _, path := range []string{"/api/generate", "/api/chat"} {
		body := map[string]any{"model": "tiny", "prompt": "Once upon a time", "options": opts}
		if path == "/api/chat" {
			body = map[string]any{"model": "tiny", "messages": []map[string]any{{"role": "user", "content": "Once upon a time"}}, "options": opts}
		}
		text := func(m map[string]any) string {
			if path == "/api/chat" {
				return m["message"].(map[string]any)["content"].(string)
			}
			return m["response"].(string)
		}
		body["stream"] = true
		streamed := post(t, ts.URL+path, body)
		if n := eng.last(); n < 2 { // pieces and the final event
			t.Fatalf("%s streaming: the runner sent %d events", path, n)
		}
		var sb strings.Builder
		for _, m := range streamed {
			sb.WriteString(text(m))
		}
		body["stream"] = false
		one := post(t, ts.URL+path, body)
		if n := eng.last(); n != 1 {
			t.Fatalf("%s stream false: the runner sent %d events, want 1", path, n)
		}
		if len(one) != 1 {
			t.Fatalf("%s stream false: %d response objects", path, len(one))
		}
		got, want := one[0], streamed[len(streamed)-1]
		if text(got) != sb.String() || sb.Len() == 0 {
			t.Fatalf("%s: stream false gave %q, streaming %q", path, text(got), sb.String())
		}
		for _, k := range []string{"done", "done_reason", "eval_count", "context"} {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s: %s: stream false %v, streaming %v", path, k, got[k], want[k])
			}
		}
		if got["done"] != true || got["done_reason"] != "length" || got["eval_count"] != float64(24) {
			t.Errorf("%s: final object %v", path, got)
		}
	}
}
