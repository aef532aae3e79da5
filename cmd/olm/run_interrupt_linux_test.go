package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/runner"
	"github.com/olmhq/olm/runtime/sched"
	"github.com/olmhq/olm/server"
	"github.com/olmhq/olm/server/backend"
)

// openPTY opens a pseudo-terminal pair; the returned tty is what a program
// given it as stdin sees as a terminal.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here (%v); olm run's chat needs a terminal on stdin", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}

// stubModels is a store with one model, "m", whose weights are never read
// (the scheduler's Starter is a fake).
type stubModels struct{}

var errStub = errors.New("not in this test")

func (stubModels) Resolve(_ context.Context, name string) (*server.Model, error) {
	if name != "m" && name != "m:latest" {
		return nil, fmt.Errorf("%s: %w", name, server.ErrNotFound)
	}
	return &server.Model{Name: "m:latest", Digest: "sha256:" + strings.Repeat("a", 64), WeightsPath: "/nonexistent/m.gguf",
		Details: api.ModelDetails{Format: "gguf", Family: "llama"}, Capabilities: []string{"completion"}}, nil
}
func (stubModels) List(context.Context) ([]*server.Model, error) { return nil, nil }
func (stubModels) ModelInfo(context.Context, *server.Model, bool) (map[string]any, error) {
	return map[string]any{"general.architecture": "llama"}, nil
}
func (stubModels) Copy(context.Context, string, string) error              { return errStub }
func (stubModels) Delete(context.Context, string) error                    { return errStub }
func (stubModels) HasBlob(context.Context, string) (bool, error)           { return false, nil }
func (stubModels) PutBlob(context.Context, string, int64, io.Reader) error { return errStub }

// TestRunInterruptDuringLoad runs `olm run m` with a terminal on stdin and
// sends it SIGINT while the chat's first request (the model load) is under
// way: olm exits with code 130 at once, and the server abandons the load
// (the runner start is cancelled, nothing stays loaded). A one-shot
// `olm run m hello` interrupted while it waits exits with 130 too.
func TestRunInterruptDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds olm")
	}
	bin := olmForCreateTests(t)

	run := func(t *testing.T, h http.Handler, loading <-chan struct{}, args ...string) {
		t.Helper()
		if args == nil {
			args = []string{"run", "m"}
		}
		ts := httptest.NewServer(h)
		t.Cleanup(ts.Close)
		u, _ := url.Parse(ts.URL)
		_, tty := openPTY(t)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "OLM_HOST="+u.Host, "OLM_HOME="+t.TempDir())
		cmd.Stdin = tty
		var out, errw bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-loading:
		case err := <-exited:
			t.Fatalf("olm run ended before loading: %v\nstdout:\n%s\nstderr:\n%s", err, &out, &errw)
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("the load request never came\nstderr:\n%s", &errw)
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
				t.Fatalf("olm run after Ctrl-C: %v, want exit code 130\nstdout:\n%s\nstderr:\n%s", err, &out, &errw)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("olm run did not end on Ctrl-C during the load\nstdout:\n%s\nstderr:\n%s", &out, &errw)
		}
		if len(args) == 2 && !strings.Contains(errw.String(), "interrupted while loading the model") || strings.Contains(out.String(), ">>>") {
			t.Errorf("stdout %q, stderr %q", &out, &errw)
		}
	}
	never := func(loading chan<- struct{}, end <-chan struct{}) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/api/show":
				w.Write([]byte(`{"details":{"family":"llama"}}`))
			case "/api/generate":
				io.Copy(io.Discard, r.Body) // so the server notices the client going
				loading <- struct{}{}
				select {
				case <-r.Context().Done():
				case <-end:
				}
			default:
				http.NotFound(w, r)
			}
		})
	}

	t.Run("server never answers", func(t *testing.T) {
		loading := make(chan struct{}, 1)
		end := make(chan struct{})
		defer close(end) // before run's cleanup closes the server
		run(t, never(loading, end), loading)
	})

	t.Run("one shot", func(t *testing.T) {
		loading := make(chan struct{}, 1)
		end := make(chan struct{})
		defer close(end)
		run(t, never(loading, end), loading, "run", "m", "hello")
	})

	t.Run("scheduler abandons the load", func(t *testing.T) {
		loading := make(chan struct{}, 1)
		cancelled := make(chan struct{}, 1)
		sc := sched.New(sched.Options{Start: func(ctx context.Context, _ runner.LoadOptions) (sched.Runner, error) {
			loading <- struct{}{}
			<-ctx.Done() // a load that takes longer than anyone waits
			cancelled <- struct{}{}
			return nil, context.Cause(ctx)
		}})
		t.Cleanup(func() { sc.Close() })
		srv, err := server.New(server.Options{Engine: &backend.Engine{Sched: sc}, Models: stubModels{}})
		if err != nil {
			t.Fatal(err)
		}
		run(t, srv, loading)
		select {
		case <-cancelled:
		case <-time.After(20 * time.Second):
			t.Fatal("the runner start was not cancelled after the client went away")
		}
		if l := sc.List(); len(l) != 0 {
			t.Fatalf("loaded after the abandoned load: %+v", l)
		}
	})
}
