package testmodel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/olmhq/olm/internal/testenv"
)

// Cached returns the path of a model of spec s generated into olm's cache
// folder (testenv.CacheDir()/testmodel/<name>-<spec hash>.gguf), generating
// it first when absent. It is meant for benchmarks with large models such
// as BenchLlama, which are too big to write for every run and must never
// be committed.
func Cached(tb testing.TB, s Spec) string {
	tb.Helper()
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	dir := filepath.Join(testenv.CacheDir(), "testmodel")
	p := filepath.Join(dir, "llama-"+hex.EncodeToString(sum[:6])+".gguf")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("testmodel: %v", err)
	}
	if err := Generate(p, s); err != nil {
		tb.Fatalf("testmodel: generate %s: %v", p, err)
	}
	return p
}
