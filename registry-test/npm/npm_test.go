package npm

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
)

var (
	buildOnce sync.Once
	olmBin    string
	buildErr  error
	binDir    string
)

// TestMain removes the olm binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildOlm builds the olm binary (with cgo, so the runner can load
// models), once for all tests of the package.
func buildOlm(t *testing.T, root string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "olm-npm-test")
		if buildErr != nil {
			return
		}
		olmBin = filepath.Join(binDir, "olm")
		cmd := exec.Command("go", "build", "-o", olmBin, "./cmd/olm")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/olm: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return olmBin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serve starts `olm serve` and waits until it answers; it is stopped when
// the test ends.
func serve(t *testing.T, bin string, env []string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(append(os.Environ(), env...), "OLM_HOST="+addr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("olm serve log:\n%s", log.String())
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("olm serve exited: %v\n%s", err, log.String())
		default:
		}
		resp, err := http.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("olm serve did not answer on %s within 30s\n%s", addr, log.String())
	return ""
}

func TestNpmClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads a model")
	}
	node := testenv.Node(t)
	root := testenv.RepoRoot(t)
	dir := filepath.Join(root, "registry-test", "npm")
	for _, pkg := range []string{"ollama", "openai"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			testenv.Missing(t, "npm package "+pkg, "run `make npm` (npm ci in registry-test/npm)")
		}
	}
	testenv.LlamaDir(t)
	gguf := testmodel.Tiny(t)
	bin := buildOlm(t, root)

	home := filepath.Join(t.TempDir(), "h")
	env := []string{"OLM_HOME=" + home, "OLM_KEEP_ALIVE=10m"}
	mf := filepath.Join(t.TempDir(), "Modelfile")
	if err := os.WriteFile(mf, []byte("FROM "+gguf+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	create := exec.Command(bin, "create", "tiny", "-f", mf)
	create.Env = append(os.Environ(), env...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("olm create: %v\n%s", err, out)
	}
	t.Run("open", func(t *testing.T) {
		runClient(t, node, dir, serve(t, bin, env), "")
	})
	t.Run("api-key", func(t *testing.T) {
		const key = "s3cret-test-key"
		runClient(t, node, dir, serve(t, bin, append(env, "OLM_API_KEY="+key)), key)
	})
}

// runClient runs client.mjs against the server at url.
func runClient(t *testing.T, node, dir, url, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OLM_TEST_HOST="+url, "OLM_TEST_MODEL=tiny", "OLM_TEST_API_KEY="+key)
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("node client.mjs: %v", err)
	}
	m := regexp.MustCompile(`(\d+)/(\d+) checks passed`).FindStringSubmatch(string(out))
	if m == nil || m[1] != m[2] || len(m[2]) < 2 {
		t.Fatalf("the client script did not report its checks all passing: %v", m)
	}
}
