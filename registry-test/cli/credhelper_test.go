package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olmhq/olm/registry-test/regtest"
)

// credHelper installs docker-credential-olmtest, a credential helper that
// keeps one credential in a file of dir and logs each call's action, and
// returns the PATH that finds it.
func credHelper(t *testing.T, dir string) string {
	t.Helper()
	script := `#!/bin/sh
# A Docker credential helper for tests: one credential, kept in a file.
d="` + dir + `"
echo "$1" >> "$d/calls"
case "$1" in
store) cat > "$d/cred.json" ;;
get)
  read server
  if [ -f "$d/cred.json" ]; then cat "$d/cred.json"; exit 0; fi
  echo "credentials not found in native keychain"; exit 1 ;;
erase) read server; rm -f "$d/cred.json" ;;
list) echo '{}' ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
`
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-olmtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin + string(os.PathListSeparator) + os.Getenv("PATH")
}

// withDockerConfig points e at a Docker config folder holding cfg and a
// PATH that has the test credential helper.
func withDockerConfig(t *testing.T, e *env, cfg map[string]any, path string) string {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	vars := []string{"PATH=" + path, "DOCKER_CONFIG=" + dir}
	for _, v := range e.vars {
		if !strings.HasPrefix(v, "DOCKER_CONFIG=") && !strings.HasPrefix(v, "PATH=") {
			vars = append(vars, v)
		}
	}
	e.vars = vars
	return dir
}

// TestCredentialHelpers: with "credsStore" in the Docker config, olm login
// stores the password through the helper (not in config.json), push gets it
// from there and logout erases it; with "credHelpers" naming a helper for
// the registry, pull uses that helper's credential.
func TestCredentialHelpers(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{TLS: true, Auth: true})
	helperDir := t.TempDir()
	path := credHelper(t, helperDir)
	calls := func() string { b, _ := os.ReadFile(filepath.Join(helperDir, "calls")); return string(b) }

	e := newEnv(t, reg)
	cfgDir := withDockerConfig(t, e, map[string]any{"credsStore": "olmtest"}, path)
	name := reg.Ref("olm/helper", "v1")
	e.seed(t, name)
	if r := e.olm(t, "push", name); r.code != 4 {
		t.Fatalf("push before login: exit %d, want 4\n%s", r.code, r.stderr)
	}
	if r := e.olmStdin(t, []byte(reg.Password+"\n"), "login", "-u", reg.Username, "--password-stdin", reg.Host); r.code != 0 {
		t.Fatalf("login: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(calls(), "store") {
		t.Fatalf("login did not call the helper's store; calls:\n%s", calls())
	}
	if cfg, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); strings.Contains(string(cfg), reg.Password) ||
		strings.Contains(string(cfg), `"auth":`) {
		t.Fatalf("login wrote the credential into config.json instead of the helper: %s", cfg)
	}
	if cred, _ := os.ReadFile(filepath.Join(helperDir, "cred.json")); !strings.Contains(string(cred), reg.Password) {
		t.Fatalf("the helper holds %q", cred)
	}
	e.must(t, "push", name)
	if !strings.Contains(calls(), "get") {
		t.Fatalf("push did not ask the helper; calls:\n%s", calls())
	}
	e.must(t, "logout", reg.Host)
	if _, err := os.Stat(filepath.Join(helperDir, "cred.json")); !os.IsNotExist(err) {
		t.Fatalf("logout left the helper's credential (%v); calls:\n%s", err, calls())
	}

	// A per-registry helper, with the credential already in it.
	cred, _ := json.Marshal(map[string]string{"ServerURL": reg.Host, "Username": reg.Username, "Secret": reg.Password})
	if err := os.WriteFile(filepath.Join(helperDir, "cred.json"), cred, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newEnv(t, reg)
	withDockerConfig(t, f, map[string]any{"credHelpers": map[string]string{reg.Host: "olmtest"}}, path)
	f.must(t, "pull", name)
	f.checkStoreSound(t)
}
