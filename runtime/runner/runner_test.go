package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestArgsRoundTrip(t *testing.T) {
	tests := []LoadOptions{
		{Model: "/m.gguf"},
		{Model: "/m-00001-of-00003.gguf", Parts: []string{"/blobs/sha256-2", "/blobs/sha256-3"}},
		{Model: "/m.gguf", Projector: "/p.gguf", Adapters: []string{"/a.gguf", "/b.gguf"}, NumCtx: 8192, NumBatch: 256,
			NumGPU: -1, NumThread: 6, NoMmap: true, Mlock: true, Parallel: 4, EmbeddingOnly: true, FlashAttention: "on", KVCacheType: "q8_0", Verbose: true},
		{Model: "/m.gguf", NumGPU: NumGPUAuto},
		{Model: "/m.gguf", NumGPU: 12},
	}
	for _, o := range tests {
		got, sock, err := ParseArgs(o.Args("/tmp/s"), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if sock != "/tmp/s" || !reflect.DeepEqual(got, o) {
			t.Fatalf("round trip: got %+v %q, want %+v", got, sock, o)
		}
	}
}

func TestGPULayersFlag(t *testing.T) {
	for _, tc := range []struct {
		o    LoadOptions
		flag string // --gpu-layers value, "" for none
	}{
		{LoadOptions{Model: "/m"}, ""},
		{LoadOptions{Model: "/m", NumGPU: NumGPUAuto}, "auto"},
		{LoadOptions{Model: "/m", NumGPU: -1}, "-1"},
		{LoadOptions{Model: "/m", NumGPU: 7}, "7"},
	} {
		args := tc.o.Args("/s")
		got := ""
		for i, a := range args {
			if a == "--gpu-layers" {
				got = args[i+1]
			}
		}
		if got != tc.flag {
			t.Errorf("Args(NumGPU %d): --gpu-layers %q, want %q", tc.o.NumGPU, got, tc.flag)
		}
	}
	o, _, err := ParseArgs([]string{"--model", "/m", "--socket", "/s", "--gpu-layers", "auto"}, io.Discard)
	if err != nil || o.NumGPU != NumGPUAuto {
		t.Errorf("--gpu-layers auto: NumGPU %d, %v; want NumGPUAuto", o.NumGPU, err)
	}
	o, _, err = ParseArgs([]string{"--model", "/m", "--socket", "/s"}, io.Discard)
	if err != nil || o.NumGPU != 0 {
		t.Errorf("no --gpu-layers: NumGPU %d, %v; want 0 (CPU)", o.NumGPU, err)
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--model", "/m.gguf"},
		{"--socket", "/s"},
		{"--model", "/m", "--socket", "/s", "extra"},
		{"--model", "/m", "--socket", "/s", "--parallel", "-2"},
		{"--model", "/m", "--socket", "/s", "--bogus"},
		{"--model", "/m", "--socket", "/s", "--flash-attn", "maybe"},
		{"--model", "/m", "--socket", "/s", "--kv-cache-type", "f64"},
		{"--model", "/m", "--socket", "/s", "--gpu-layers", "many"},
		{"--model", "/m", "--socket", "/s", "--gpu-layers", "Auto"},
	} {
		if _, _, err := ParseArgs(args, io.Discard); err == nil {
			t.Errorf("ParseArgs(%q) accepted bad arguments", args)
		}
	}
}

func FuzzArgsRoundTrip(f *testing.F) {
	f.Add("/m.gguf", "", "", 0, 0, 0, 0, 0, false, false, false)
	f.Add("/a b/m.gguf", "/p", "--x", 4096, 512, -1, 8, 4, true, true, true)
	f.Add("/m.gguf", "", "", 0, 0, NumGPUAuto, 0, 0, false, false, false)
	f.Fuzz(func(t *testing.T, model, proj, lora string, ctx, batch, gpu, threads, par int, nommap, mlock, emb bool) {
		if model == "" {
			return
		}
		o := LoadOptions{Model: model, Projector: proj, NumCtx: max(ctx, 0), NumBatch: max(batch, 0), NumGPU: gpu,
			NumThread: max(threads, 0), Parallel: max(par, 0), NoMmap: nommap, Mlock: mlock, EmbeddingOnly: emb}
		if lora != "" {
			o.Adapters = []string{lora}
		}
		got, sock, err := ParseArgs(o.Args("/s"), io.Discard)
		if err != nil {
			t.Fatalf("ParseArgs(Args(%+v)): %v", o, err)
		}
		if sock != "/s" || !reflect.DeepEqual(got, o) {
			t.Fatalf("round trip: got %+v, want %+v", got, o)
		}
	})
}

// fakeRunner serves handler on a unix socket and returns a Client for it.
func fakeRunner(t testing.TB, h http.Handler) *Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "olm-rt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return Dial(sock)
}

func TestClientErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /embed", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(ErrorResponse{Error: "input 0 has 900 tokens", Code: CodeContextLength})
	})
	mux.HandleFunc("POST /chat", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotImplemented)
		json.NewEncoder(w).Encode(ErrorResponse{Error: "no template", Code: CodeUnsupported})
	})
	mux.HandleFunc("POST /completion", func(w http.ResponseWriter, r *http.Request) {
		var req CompletionRequest
		json.NewDecoder(r.Body).Decode(&req)
		enc := json.NewEncoder(w)
		enc.Encode(CompletionEvent{Content: "a"})
		switch req.Prompt {
		case "error":
			enc.Encode(CompletionEvent{Done: true, Error: "grammar allows no token", Code: CodeBadRequest})
		case "garbage":
			io.WriteString(w, "{not json\n")
		case "cut":
			// the stream ends without a final event
		default:
			enc.Encode(CompletionEvent{Content: "b"})
			enc.Encode(CompletionEvent{Done: true, DoneReason: DoneStop, Timings: Timings{EvalCount: 2}})
		}
	})
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "teapot")
	})
	c := fakeRunner(t, mux)
	ctx := context.Background()

	if _, err := c.Embed(ctx, EmbedRequest{Input: []string{"x"}}); !errors.Is(err, ErrContextLength) || !strings.Contains(err.Error(), "900 tokens") {
		t.Errorf("embed: %v", err)
	}
	if _, err := c.Chat(ctx, ChatRequest{}, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("chat: %v", err)
	}
	if _, err := c.Info(ctx); !errors.Is(err, ErrProtocol) {
		t.Errorf("info: %v", err)
	}
	var text strings.Builder
	last, err := c.Completion(ctx, CompletionRequest{Prompt: "ok"}, func(ev CompletionEvent) error {
		text.WriteString(ev.Content)
		return nil
	})
	if err != nil || text.String() != "ab" || last.DoneReason != DoneStop || last.EvalCount != 2 {
		t.Errorf("completion: %q %+v %v", text.String(), last, err)
	}
	if _, err := c.Completion(ctx, CompletionRequest{Prompt: "error"}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("error event: %v", err)
	}
	if _, err := c.Completion(ctx, CompletionRequest{Prompt: "garbage"}, nil); !errors.Is(err, ErrProtocol) {
		t.Errorf("garbage: %v", err)
	}
	if _, err := c.Completion(ctx, CompletionRequest{Prompt: "cut"}, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut stream: %v", err)
	}
}

func TestStartExitsWithMessage(t *testing.T) {
	sh, err := osexec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	_, err = Start(context.Background(), StartOptions{
		Load:       LoadOptions{Model: "/m.gguf"},
		Executable: sh,
		Args:       []string{"-c", "echo 'loading...' >&2; echo 'Error: load model /m.gguf: bad magic' >&2; echo 'bye'; exit 3", "sh"},
	})
	if !errors.Is(err, ErrRunnerExited) || !strings.Contains(err.Error(), "bad magic") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartTimeout(t *testing.T) {
	sh, err := osexec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	t0 := time.Now()
	_, err = Start(context.Background(), StartOptions{
		Load:         LoadOptions{Model: "/m.gguf"},
		Executable:   sh,
		Args:         []string{"-c", "echo still loading >&2; sleep 30", "sh"},
		StartTimeout: 300 * time.Millisecond,
	})
	if !errors.Is(err, ErrStartTimeout) || !strings.Contains(err.Error(), "still loading") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("Start took %v to time out (the child was not killed?)", d)
	}
}

func TestStartBadExecutable(t *testing.T) {
	_, err := Start(context.Background(), StartOptions{Load: LoadOptions{Model: "/m"}, Executable: "/nonexistent/olm"})
	if err == nil {
		t.Fatal("started a missing executable")
	}
	if _, err := Start(context.Background(), StartOptions{}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("no model: %v", err)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(3)
	fmt.Fprint(tb, "one\ntwo\nerror: boom\nfour\nfi")
	if got := tb.lines(); !reflect.DeepEqual(got, []string{"two", "error: boom", "four", "fi"}) {
		t.Fatalf("lines = %q", got)
	}
	if tb.last() != "error: boom" {
		t.Fatalf("last = %q, want the error line", tb.last())
	}
	tb2 := newTailBuffer(3)
	fmt.Fprint(tb2, "a\nb\n\n")
	if tb2.last() != "b" || tb2.lastError() != "" {
		t.Fatalf("last = %q lastError = %q", tb2.last(), tb2.lastError())
	}
}

func TestStartLongSocketDir(t *testing.T) {
	sh, err := osexec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	// The child prints its --socket argument and fails; the path must be
	// short enough to bind.
	_, err = Start(context.Background(), StartOptions{
		Load:       LoadOptions{Model: "/m.gguf"},
		Executable: sh,
		Args:       []string{"-c", `echo "Error: socket $4"; exit 1`, "sh"},
		SocketDir:  long,
	})
	if !errors.Is(err, ErrRunnerExited) {
		t.Fatalf("err = %v", err)
	}
	i := strings.Index(err.Error(), "socket ")
	sock := strings.Fields(err.Error()[i+len("socket "):])[0]
	if len(sock) > maxSocketPath || strings.Contains(sock, "ddd") {
		t.Fatalf("socket %q (%d bytes) is in the long folder", sock, len(sock))
	}
}
