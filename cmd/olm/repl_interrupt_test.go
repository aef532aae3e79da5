package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/internal/testolm"
)

// TestREPLInterrupt: Ctrl-C during an answer stops that answer (the server
// sees the request end, the exchange is not kept) and the chat goes on;
// Ctrl-C at the prompt says how to leave.
func TestREPLInterrupt(t *testing.T) {
	var chats atomic.Int32
	cancelled := make(chan struct{}, 1)
	streaming := make(chan struct{}, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/generate":
			fmt.Fprintln(w, `{"model":"m","response":"","done":true,"done_reason":"load"}`)
		case "/api/chat":
			if chats.Add(1) == 1 { // the first answer never ends by itself
				fmt.Fprintln(w, `{"model":"m","message":{"role":"assistant","content":"endless "},"done":false}`)
				w.(http.Flusher).Flush()
				streaming <- struct{}{}
				<-r.Context().Done()
				cancelled <- struct{}{}
				return
			}
			fmt.Fprintln(w, `{"model":"m","message":{"role":"assistant","content":"short"},"done":false}`)
			fmt.Fprintln(w, `{"model":"m","message":{"role":"assistant","content":""},"done":true}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	sigs := make(chan os.Signal, 1)
	var out, errw testolm.SyncBuffer
	s := &runSession{c: &RunCmd{Model: "m"}, cl: api.NewClient(u, api.ClientOptions{}), out: &out, errw: &errw, interrupts: sigs}
	waitOut := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), want); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("stdout never showed %q:\n%s", want, out.String())
			}
		}
	}

	pr, pw := io.Pipe()
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
	io.WriteString(pw, "tell me everything\n")
	wait(streaming, "the first answer")
	waitOut("endless ")
	sigs <- os.Interrupt
	wait(cancelled, "the server to see the answer cancelled")
	io.WriteString(pw, "again\n") // blocks until the REPL reads it: the chat went on
	for chats.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	// Ctrl-C at the prompt (once the second answer is printed).
	waitOut("short\n\n>>> ")
	sigs <- os.Interrupt
	io.WriteString(pw, "/bye\n")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the REPL did not end at /bye")
	}
	o := out.String()
	if !strings.Contains(o, "endless ") || !strings.Contains(o, "Use Ctrl + d or /bye to exit.") {
		t.Errorf("stdout:\n%s", o)
	}
	if errw.String() != "" {
		t.Errorf("an interrupted answer is no error: %q", errw.String())
	}
	if len(s.messages) != 2 || s.messages[0].Content != "again" || s.messages[1].Content != "short" {
		t.Errorf("the interrupted exchange was kept: %+v", s.messages)
	}
}
