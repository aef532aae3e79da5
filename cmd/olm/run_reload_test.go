package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/internal/testolm"
)

// TestReloadOnNewContextLength: against a real `olm serve` with the tiny
// model, a request with another num_ctx (from the API, then from the chat's
// /set parameter num_ctx) reloads the model: /api/ps shows it once, with
// the new context length, and the server has one runner process.
func TestReloadOnNewContextLength(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads a model")
	}
	bin := olmForCreateTests(t) // fails in CI without the llama.cpp build
	env := []string{"OLM_HOME=" + filepath.Join(t.TempDir(), "home"), "OLM_MAX_LOADED_MODELS=3"}
	testolm.Create(t, bin, env, "tiny", "FROM "+testmodel.Tiny(t)+"\nPARAMETER temperature 0\n")
	base := testolm.Serve(t, bin, env, 30*time.Second)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	cl := api.NewClient(u, api.ClientOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	loaded := func(want int) {
		t.Helper()
		ps, err := cl.ListRunning(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range ps.Models {
			got = append(got, fmt.Sprintf("%s ctx=%d", m.Name, m.ContextLength))
		}
		if w := fmt.Sprintf("[tiny:latest ctx=%d]", want); fmt.Sprint(got) != w {
			t.Fatalf("/api/ps = %v, want %s", got, w)
		}
		if n := runnerProcesses(t); n != 1 {
			t.Fatalf("%d runner processes, want 1", n)
		}
	}
	gen := func(numCtx int) {
		t.Helper()
		o := api.Options{}
		o.NumCtx, o.NumPredict = api.Ptr(numCtx), api.Ptr(2)
		req := &api.GenerateRequest{Model: "tiny", Prompt: "hello", Options: &o}
		if err := cl.Generate(ctx, req, func(api.GenerateResponse) error { return nil }); err != nil {
			t.Fatalf("generate with num_ctx %d: %v", numCtx, err)
		}
	}
	gen(512)
	loaded(512)
	gen(1024)
	loaded(1024)

	// The chat: /set parameter num_ctx reloads on the next message.
	var out, errw bytes.Buffer
	s := &runSession{c: &RunCmd{Model: "tiny"}, cl: cl, out: &out, errw: &errw}
	in := "/set parameter num_predict 2\n/set parameter num_ctx 768\nhello\n/bye\n"
	if err := s.repl(ctx, strings.NewReader(in)); err != nil {
		t.Fatalf("repl: %v\n%s", err, &errw)
	}
	if len(s.messages) != 2 {
		t.Fatalf("the chat's message was not answered:\n%s\n%s", &out, &errw)
	}
	loaded(768)
}

// runnerProcesses counts this user's `olm runner` processes whose parent is
// an `olm serve` started by this test process (Linux /proc; -1 elsewhere).
func runnerProcesses(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	me := os.Getpid()
	parent := func(pid string) (int, string) {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return 0, ""
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			return 0, ""
		}
		pp, _ := strconv.Atoi(f[1])
		cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		return pp, strings.ReplaceAll(string(cmd), "\x00", " ")
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		pp, cmd := parent(e.Name())
		if !strings.Contains(cmd, " runner ") {
			continue
		}
		if gp, serve := parent(strconv.Itoa(pp)); gp == me && strings.Contains(serve, " serve") {
			n++
		}
	}
	return n
}
