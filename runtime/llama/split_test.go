//go:build cgo

package llama_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
)

// digestNamed splits src into parts and renames each part to its SHA-256,
// as the blob store names layers, so llama.cpp cannot find the parts by
// file name.
func digestNamed(t *testing.T, src string, parts int) []string {
	t.Helper()
	dir := t.TempDir()
	paths, err := testmodel.Split(src, parts, func(i int) string { return filepath.Join(dir, "part"+strconv.Itoa(i)) })
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		paths[i] = filepath.Join(dir, "sha256-"+hex.EncodeToString(sum[:]))
		if err := os.Rename(p, paths[i]); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

func TestLoadModelSplits(t *testing.T) {
	testenv.LlamaDir(t)
	src := testmodel.Tiny(t)
	whole := tiny(t)
	prompt, err := whole.Tokenize("Once upon a time", true, false)
	if err != nil {
		t.Fatal(err)
	}
	greedy := func(m *llama.Model) []llama.Token {
		c := newContext(t, m, llama.ContextParams{NumCtx: 256})
		s, err := llama.NewSampler(m, llama.SamplerParams{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return generate(t, c, s, prompt, 24)
	}
	want := greedy(whole)

	parts := digestNamed(t, src, 3)
	m, err := llama.LoadModelSplits(context.Background(), parts, llama.DefaultModelParams())
	if err != nil {
		t.Fatalf("LoadModelSplits: %v", err)
	}
	defer m.Close()
	if m.NumParams() != whole.NumParams() || m.NumVocab() != whole.NumVocab() {
		t.Errorf("split model: %d params, %d vocab; whole: %d, %d", m.NumParams(), m.NumVocab(), whole.NumParams(), whole.NumVocab())
	}
	if got := greedy(m); !slices.Equal(got, want) {
		t.Errorf("split model generates %v, whole model %v", got, want)
	}

	// The first part alone does not load: its siblings cannot be found by
	// name. Parts out of order, missing or repeated are rejected.
	bad := map[string][]string{
		"first part only": parts[:1],
		"missing part":    parts[:2],
		"out of order":    {parts[0], parts[2], parts[1]},
		"second first":    {parts[1], parts[0], parts[2]},
		"repeated part":   {parts[0], parts[1], parts[1]},
		"missing file":    {parts[0], parts[1], parts[2] + ".gone"},
	}
	for name, ps := range bad {
		m, err := llama.LoadModelSplits(context.Background(), ps, llama.DefaultModelParams())
		if !errors.Is(err, llama.ErrLoad) {
			m.Close()
			t.Errorf("%s: err = %v, want ErrLoad", name, err)
		}
	}
	if _, err := llama.LoadModelSplits(context.Background(), nil, llama.DefaultModelParams()); !errors.Is(err, llama.ErrLoad) {
		t.Errorf("no paths: err = %v, want ErrLoad", err)
	}
}

func TestDefaultThreads(t *testing.T) {
	testenv.LlamaDir(t)
	if n := llama.DefaultThreads(); n < 1 || n > runtime.NumCPU() {
		t.Errorf("DefaultThreads() = %d, want 1..%d", n, runtime.NumCPU())
	}
}
