package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/internal/testolm"
)

// TestREPLLoadInterrupt: Ctrl-C while the chat loads the model (the empty
// generate request before the first prompt) cancels that request at once
// and ends olm run with exit code 130, against a server that never
// answers.
func TestREPLLoadInterrupt(t *testing.T) {
	arrived := make(chan struct{}, 1)
	gone := make(chan struct{}, 1)
	end := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/generate" {
			http.NotFound(w, r)
			return
		}
		io.Copy(io.Discard, r.Body) // so the server notices the client going
		arrived <- struct{}{}
		select { // never answers
		case <-r.Context().Done():
			gone <- struct{}{}
		case <-end:
		}
	}))
	defer ts.Close()
	defer close(end)
	u, _ := url.Parse(ts.URL)
	sigs := make(chan os.Signal, 1)
	var out, errw testolm.SyncBuffer
	s := &runSession{c: &RunCmd{Model: "m"}, cl: api.NewClient(u, api.ClientOptions{}), out: &out, errw: &errw, interrupts: sigs}
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() { done <- s.repl(context.Background(), pr) }()
	wait := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	wait(arrived, "the load request")
	sigs <- os.Interrupt
	select {
	case err := <-done:
		var ec exitCoder
		if !errors.As(err, &ec) || ec.ExitCode() != exitInterrupted || !errors.Is(err, errLoadInterrupted) {
			t.Fatalf("repl = %v, want exit code 130 (errLoadInterrupted)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ctrl-C during the load did not end olm run")
	}
	wait(gone, "the server to see the load request cancelled")
	if out.String() != "" {
		t.Errorf("stdout %q: no prompt may be shown after an interrupted load", out.String())
	}
}
