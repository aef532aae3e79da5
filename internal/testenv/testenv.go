// Package testenv finds the real components that olm's tests run against:
// the llama.cpp build, the distribution registry, the oras and crane CLIs and
// Node.js. Outside CI a missing component skips the test with a message that
// says how to get it; under CI=true it fails the test, because CI must never
// pass by silently testing less.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where a missing real
// component is a failure rather than a skip.
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Missing stops the test because a real component is missing: a skip on a
// developer's machine, a failure in CI. how tells the reader how to get it.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is missing (CI=true makes this a failure): %s", what, how)
	}
	t.Skipf("%s is missing: %s", what, how)
}

// CacheDir returns olm's cache root: $OLM_CACHE, else $XDG_CACHE_HOME/olm,
// else ~/.cache/olm. scripts/llama-cpp.sh and scripts/tools.sh write there.
func CacheDir() string {
	if d := os.Getenv("OLM_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "olm")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "olm")
}

// RepoRoot returns the root of the olm checkout (the folder holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Tool returns the path of a test tool built by scripts/tools.sh (registry,
// oras, crane), looking in the cache's gobin folder first and then on PATH.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(CacheDir(), "gobin", name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	Missing(t, "tool "+name, "run `make tools` (scripts/tools.sh) to build it into "+filepath.Join(CacheDir(), "gobin"))
	return ""
}

// LlamaDir returns the llama.cpp build folder linked at runtime/llama/llama.cpp
// by scripts/llama-cpp.sh, with src/, build/, lib/ and bin/ inside.
func LlamaDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(RepoRoot(t), "runtime", "llama", "llama.cpp")
	if _, err := os.Stat(filepath.Join(d, "stamp")); err != nil {
		Missing(t, "the llama.cpp build", "run `make llama` (scripts/llama-cpp.sh)")
	}
	return d
}

// LlamaBin returns the path of a llama.cpp tool of the pinned release
// (llama-bench, llama-server, llama-quantize).
func LlamaBin(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(LlamaDir(t), "bin", name)
	if _, err := os.Stat(p); err != nil {
		Missing(t, name, "run `make llama` (scripts/llama-cpp.sh)")
	}
	return p
}

// LlamaSource returns the pinned llama.cpp source tree, whose models/ folder
// holds tokenizer vocabularies with test vectors and real chat templates.
func LlamaSource(t testing.TB) string {
	t.Helper()
	return filepath.Join(LlamaDir(t), "src")
}

// Node returns the path of node, needed by the npm client tests.
func Node(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node", "apt-get install nodejs npm")
	}
	return p
}
