package npm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/internal/testolm"
)

// TestMain removes the olm binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	testolm.Cleanup()
	os.Exit(code)
}

// serveWait bounds how long `olm serve` may take to answer.
const serveWait = 30 * time.Second

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
	bin := testolm.Build(t)

	home := filepath.Join(t.TempDir(), "h")
	env := []string{"OLM_HOME=" + home, "OLM_KEEP_ALIVE=10m"}
	testolm.Create(t, bin, env, "tiny", "FROM "+gguf+"\n")
	t.Run("open", func(t *testing.T) {
		runClient(t, node, dir, testolm.Serve(t, bin, env, serveWait), "")
	})
	t.Run("api-key", func(t *testing.T) {
		const key = "s3cret-test-key"
		runClient(t, node, dir, testolm.Serve(t, bin, append(env, "OLM_API_KEY="+key), serveWait), key)
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
