package npm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/internal/testolm"
)

// TestCLI drives `olm run`, `olm ps` and `olm stop` against a real server.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads a model")
	}
	testenv.LlamaDir(t)
	gguf := testmodel.Tiny(t)
	bin := testolm.Build(t)
	home := filepath.Join(t.TempDir(), "h")
	env := []string{"OLM_HOME=" + home}
	testolm.Create(t, bin, env, "tiny", "FROM "+gguf+"\nPARAMETER num_predict 12\nPARAMETER temperature 0\n")
	url := testolm.Serve(t, bin, env, serveWait)
	host := strings.TrimPrefix(url, "http://")
	olm := func(stdin string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		// OLLAMA_HOST alone must be enough for the client.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "OLM_HOST=") && !strings.HasPrefix(kv, "OLLAMA_HOST=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "OLLAMA_HOST="+host)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errw strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errw
		err := cmd.Run()
		return out.String(), errw.String(), err
	}

	out, errOut, err := olm("", "run", "tiny", "Why", "is", "the", "sky", "blue?", "--verbose", "--keepalive", "10m")
	if err != nil {
		t.Fatalf("olm run: %v\n%s", err, errOut)
	}
	if strings.TrimSpace(out) == "" {
		t.Errorf("olm run printed nothing")
	}
	if !strings.Contains(errOut, "eval rate:") || !strings.Contains(errOut, "eval count:           12 token(s)") {
		t.Errorf("--verbose stats (PARAMETER num_predict 12 applies):\n%s", errOut)
	}
	// The prompt from stdin gives the same greedy answer.
	out2, errOut, err := olm("Why is the sky blue?\n", "run", "tiny")
	if err != nil {
		t.Fatalf("olm run < stdin: %v\n%s", err, errOut)
	}
	if out2 != out {
		t.Errorf("stdin prompt answered %q, argument prompt %q", out2, out)
	}

	ps, errOut, err := olm("", "ps")
	if err != nil {
		t.Fatalf("olm ps: %v\n%s", err, errOut)
	}
	if !strings.Contains(ps, "tiny:latest") || !strings.Contains(ps, "100% CPU") || !strings.Contains(ps, "minutes from now") {
		t.Errorf("olm ps:\n%s", ps)
	}
	if _, errOut, err := olm("", "stop", "tiny"); err != nil {
		t.Fatalf("olm stop: %v\n%s", err, errOut)
	}
	ps, _, _ = olm("", "ps")
	if strings.Contains(ps, "tiny") {
		t.Errorf("model still loaded after olm stop:\n%s", ps)
	}
	if _, errOut, err := olm("", "stop", "nope"); err == nil || !strings.Contains(errOut, "not found") {
		t.Errorf("olm stop nope: %v %s", err, errOut)
	}
	if _, errOut, err := olm("", "run", "Bad Name!", "hi"); err == nil || errOut == "" {
		t.Errorf("olm run with a bad name: %v %q", err, errOut)
	}
}
