package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartOptions say how Start runs a runner process. Only Load.Model is
// required.
type StartOptions struct {
	// Load are the model and its load options.
	Load LoadOptions
	// Executable is the program to run; "" means os.Executable() (olm itself).
	Executable string
	// Args are the arguments before the runner flags; nil means
	// []string{"runner"} (the hidden `olm runner` command). Tests that
	// re-execute their own binary as the runner set an empty, non-nil slice.
	Args []string
	// Env are extra environment variables ("K=V") for the child, added to
	// the current environment.
	Env []string
	// Stderr, when set, receives a copy of the runner's stdout and stderr
	// (its log). The last lines are kept for error messages either way.
	Stderr io.Writer
	// StartTimeout bounds the time from exec to a healthy runner (model
	// loaded); 0 means 5 minutes.
	StartTimeout time.Duration
	// SocketDir is the folder for the runner's socket folder; "" means
	// os.TempDir(). Unix socket paths are limited to about 100 bytes, so
	// keep it short.
	SocketDir string
}

// maxSocketPath is the longest unix socket path that works everywhere
// (sun_path is 108 bytes on Linux, 104 on the BSDs, with a NUL).
const maxSocketPath = 103

// DefaultStartTimeout is the StartTimeout used when it is zero.
const DefaultStartTimeout = 5 * time.Minute

// Process is a running runner child process. Its methods are safe for
// concurrent use.
type Process struct {
	cmd    *exec.Cmd
	dir    string
	client *Client
	info   *Info
	tail   *tailBuffer

	done    chan struct{} // closed once the child has exited
	exitErr error         // why it exited; set before done is closed

	closeOnce sync.Once
	mu        sync.Mutex
	stopping  bool // Close or Kill was called: exit is expected
}

// Start runs a runner process for opts.Load and waits until it has loaded
// the model and answers health checks. ctx bounds only the start; the
// process lives until Close, Kill, or its own exit. If the runner exits
// during start (for example because the GGUF is corrupt), the error wraps
// ErrRunnerExited and quotes the runner's last log line.
func Start(ctx context.Context, opts StartOptions) (*Process, error) {
	if opts.Load.Model == "" {
		return nil, fmt.Errorf("%w: no model path", ErrBadRequest)
	}
	exe := opts.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("runner: find own executable: %w", err)
		}
	}
	args := opts.Args
	if args == nil {
		args = []string{"runner"}
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	dir, err := os.MkdirTemp(opts.SocketDir, "olm-runner-")
	if err != nil {
		return nil, fmt.Errorf("runner: socket folder: %w", err)
	}
	sock := filepath.Join(dir, "s")
	if len(sock) > maxSocketPath && opts.SocketDir != "" {
		// Too long for a unix socket address: use the temporary folder.
		os.RemoveAll(dir)
		if dir, err = os.MkdirTemp("", "olm-runner-"); err != nil {
			return nil, fmt.Errorf("runner: socket folder: %w", err)
		}
		sock = filepath.Join(dir, "s")
	}
	if len(sock) > maxSocketPath {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("runner: socket path %s is longer than %d bytes, the limit of unix sockets; set TMPDIR to a shorter folder", sock, maxSocketPath)
	}

	cmd := exec.Command(exe, append(append([]string(nil), args...), opts.Load.Args(sock)...)...)
	cmd.Env = append(cmd.Environ(), opts.Env...)
	cmd.SysProcAttr = sysProcAttr()
	tail := newTailBuffer(32)
	var out io.Writer = tail
	if opts.Stderr != nil {
		out = io.MultiWriter(tail, opts.Stderr)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("runner: pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("runner: start %s: %w", exe, err)
	}
	pw.Close()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(out, pr) //nolint:errcheck // ends when the child exits
		pr.Close()
	}()

	p := &Process{cmd: cmd, dir: dir, tail: tail, done: make(chan struct{})}
	p.client = Dial(sock)
	p.client.exited = p.exitedWithin
	go func() {
		werr := cmd.Wait()
		// Let the log reader drain so the tail holds the last words.
		select {
		case <-copied:
		case <-time.After(time.Second):
		}
		p.mu.Lock()
		stopping := p.stopping
		p.mu.Unlock()
		p.exitErr = p.describeExit(werr, stopping)
		close(p.done)
		os.RemoveAll(dir)
	}()

	if err := p.waitHealthy(ctx, timeout); err != nil {
		p.Kill()
		return nil, err
	}
	info, err := p.client.Info(ctx)
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("runner: info: %w", err)
	}
	p.info = info
	return p, nil
}

// waitHealthy polls the runner's health until it answers ok, exits, or the
// timeout or ctx ends.
func (p *Process) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return p.exitErr
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-deadline.C:
			return fmt.Errorf("%w after %v: %s", ErrStartTimeout, timeout, p.tail.last())
		case <-tick.C:
		}
		if _, err := os.Stat(p.client.socket); err != nil {
			continue
		}
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := p.client.Health(hctx)
		cancel()
		if err == nil {
			return nil
		}
	}
}

// describeExit builds the error every later request gets.
func (p *Process) describeExit(werr error, stopping bool) error {
	if stopping {
		return fmt.Errorf("%w: the runner was stopped", ErrRunnerExited)
	}
	status := "exit status 0"
	if werr != nil {
		status = werr.Error()
	}
	why := p.tail.lastError()
	switch {
	case why != "":
		why += " (" + status + ")"
	case p.tail.last() != "":
		why = status + "; last log line: " + p.tail.last()
	default:
		why = status
	}
	return fmt.Errorf("%w: %s", ErrRunnerExited, why)
}

// exitedWithin returns the exit error if the child has exited or exits
// within wait, nil otherwise.
func (p *Process) exitedWithin(wait time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr
	case <-time.After(wait):
		return nil
	}
}

// Client returns the client connected to this runner. Its requests fail
// with ErrRunnerExited once the process has exited.
func (p *Process) Client() *Client { return p.client }

// Info returns the model information the runner reported at start.
func (p *Process) Info() *Info { return p.info }

// Pid returns the runner's process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done returns a channel closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns why the process exited (wrapping ErrRunnerExited), or nil
// while it runs.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.exitErr
	default:
		return nil
	}
}

// Log returns the last lines the runner wrote to its stdout and stderr.
func (p *Process) Log() []string { return p.tail.lines() }

// Kill stops the runner at once (SIGKILL) and waits for it to exit.
// Requests in flight fail with ErrRunnerExited. It is idempotent.
func (p *Process) Kill() error {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.cmd.Process.Kill() //nolint:errcheck // already gone is fine
	<-p.done
	p.client.CloseIdle()
	return nil
}

// Close stops the runner gracefully: SIGTERM, then SIGKILL if it has not
// exited within 5 seconds. It waits for the exit and is idempotent.
func (p *Process) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.stopping = true
		p.mu.Unlock()
		p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill() //nolint:errcheck
			<-p.done
		}
		p.client.CloseIdle()
	})
	return nil
}

// tailBuffer keeps the last n lines written to it.
type tailBuffer struct {
	mu      sync.Mutex
	n       int
	buf     []string
	partial []byte
}

func newTailBuffer(n int) *tailBuffer { return &tailBuffer{n: n} }

// Write records the lines in b (at most 1 KiB per line is kept).
func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, b...)
	for {
		i := strings.IndexByte(string(t.partial), '\n')
		if i < 0 {
			break
		}
		t.push(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > 4096 {
		t.push(string(t.partial))
		t.partial = t.partial[:0]
	}
	return len(b), nil
}

func (t *tailBuffer) push(line string) {
	line = strings.TrimRight(line, "\r ")
	if len(line) > 1024 {
		line = line[:1024] + "..."
	}
	t.buf = append(t.buf, line)
	if len(t.buf) > t.n {
		t.buf = t.buf[len(t.buf)-t.n:]
	}
}

func (t *tailBuffer) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.buf...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	return out
}

// lastError returns the last of the recent lines that reads like an
// error, or "".
func (t *tailBuffer) lastError() string {
	ls := t.lines()
	for i := len(ls) - 1; i >= 0 && i >= len(ls)-8; i-- {
		l := strings.ToLower(ls[i])
		if strings.Contains(l, "error") || strings.Contains(l, "panic") || strings.Contains(l, "fatal") || strings.Contains(l, "failed") {
			return strings.TrimSpace(ls[i])
		}
	}
	return ""
}

// last returns the most telling recent line: the last one that reads like
// an error, else the last non-empty line.
func (t *tailBuffer) last() string {
	if l := t.lastError(); l != "" {
		return l
	}
	ls := t.lines()
	for i := len(ls) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(ls[i]); s != "" {
			return s
		}
	}
	return ""
}
