package testolm

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
)

var (
	buildOnce sync.Once
	binDir    string
	olmBin    string
	buildErr  error
)

// Build builds ./cmd/olm of this checkout with cgo (so its runner can load
// models), once per test process, and returns the binary's path. The binary
// is in a temporary folder that Cleanup removes.
func Build(tb testing.TB) string {
	tb.Helper()
	root := testenv.RepoRoot(tb)
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "olm-test-bin")
		if buildErr != nil {
			return
		}
		olmBin = filepath.Join(binDir, "olm")
		cmd := exec.Command("go", "build", "-o", olmBin, "./cmd/olm")
		cmd.Dir = root
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/olm: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return olmBin
}

// Cleanup removes the binary Build made, if any. Call it from TestMain
// after m.Run.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Create writes modelfile to a Modelfile in a temporary folder and runs
// `bin create name -f Modelfile args...` with env added to the
// environment, failing the test if it fails.
func Create(tb testing.TB, bin string, env []string, name, modelfile string, args ...string) {
	tb.Helper()
	mf := filepath.Join(tb.TempDir(), "Modelfile")
	if err := os.WriteFile(mf, []byte(modelfile), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"create", name, "-f", mf}, args...)...)
	cmd.Env = append(cmd.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("olm create: %v\n%s", err, out)
	}
}

// Serve starts `bin serve` with env added to the environment and OLM_HOST
// set to a free loopback port, waits up to wait until it answers, and
// returns its base URL ("http://127.0.0.1:<port>").
func Serve(tb testing.TB, bin string, env []string, wait time.Duration) string {
	tb.Helper()
	// The port is found free and then handed to the server; another process
	// may take it in between, so a server that cannot bind tries another.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		addr := FreeAddr(tb)
		cmd := exec.Command(bin, "serve")
		cmd.Env = append(append(cmd.Environ(), env...), "OLM_HOST="+addr)
		url := "http://" + addr
		if err = start(tb, cmd, url+"/", wait); err == nil {
			return url
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	tb.Fatal(err)
	return ""
}

// FreeAddr returns a loopback address ("127.0.0.1:<port>") whose port was
// free when it was called.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// errAddrInUse means the process exited because its port was taken.
var errAddrInUse = errors.New("address already in use")

// Start starts cmd (its output collected in a log) and waits up to wait
// until GET health answers 200; it fails the test, with the log, if the
// process exits first or the time runs out. When the test ends the process
// gets SIGTERM, and is killed if it has not exited 15 seconds later; if the
// test failed its log is logged.
func Start(tb testing.TB, cmd *exec.Cmd, health string, wait time.Duration) {
	tb.Helper()
	if err := start(tb, cmd, health, wait); err != nil {
		tb.Fatal(err)
	}
}

// start is Start returning its failure; errAddrInUse when the process
// exited because it could not bind its address.
func start(tb testing.TB, cmd *exec.Cmd, health string, wait time.Duration) error {
	tb.Helper()
	name := filepath.Base(cmd.Path)
	if len(cmd.Args) > 1 {
		name += " " + cmd.Args[1]
	}
	var log SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{}) // closed once Wait returns; waitErr is then set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if tb.Failed() {
			tb.Logf("%s log:\n%s", name, log.String())
		}
	})
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			if strings.Contains(log.String(), "address already in use") {
				return fmt.Errorf("%s exited: %w\n%s", name, errAddrInUse, log.String())
			}
			return fmt.Errorf("%s exited: %v\n%s", name, waitErr, log.String())
		default:
		}
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer GET %s within %v\n%s", name, health, wait, log.String())
}

// SyncBuffer is a bytes.Buffer that a writer (a process's output, a
// command under test) and the test reading it may use at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
