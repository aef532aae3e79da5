package testmodel_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
)

func TestGenerateMatchesSharedShape(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tiny.gguf")
	if err := testmodel.Generate(p, testmodel.TinyLlama); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if g.ParameterCount() != testmodel.TinyLlama.Params() {
		t.Errorf("params %d, Spec.Params %d", g.ParameterCount(), testmodel.TinyLlama.Params())
	}
	shared := testmodel.SharedPath()
	if shared == "" {
		testenv.Missing(t, "the shared model "+testmodel.TinyName, "it lives in ../shared/models beside the checkout")
	}
	s, err := gguf.ReadFile(shared)
	if err != nil {
		t.Fatal(err)
	}
	if g.ParameterCount() != s.ParameterCount() || len(g.Tensors) != len(s.Tensors) {
		t.Errorf("generated %d params/%d tensors, shared %d/%d", g.ParameterCount(), len(g.Tensors), s.ParameterCount(), len(s.Tensors))
	}
	for _, st := range s.Tensors {
		gt, ok := g.Tensor(st.Name)
		if !ok || gt.Type != st.Type || gt.Size() != st.Size() {
			t.Errorf("tensor %s: generated %+v, shared %+v", st.Name, gt, st)
		}
	}
	gTok, _ := g.Strings("tokenizer.ggml.tokens")
	sTok, _ := s.Strings("tokenizer.ggml.tokens")
	for i := 0; i < 259; i++ {
		if gTok[i] != sTok[i] {
			t.Errorf("token %d = %q, shared model has %q", i, gTok[i], sTok[i])
		}
	}
	seen := map[string]bool{}
	for _, tok := range gTok {
		if seen[tok] {
			t.Fatalf("duplicate token %q", tok)
		}
		seen[tok] = true
	}
}

func TestGenerateDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	spec := testmodel.TinyLlama
	for _, p := range []string{a, b} {
		if err := testmodel.Generate(p, spec); err != nil {
			t.Fatal(err)
		}
	}
	spec.Seed++
	if err := testmodel.Generate(c, spec); err != nil {
		t.Fatal(err)
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	bc, _ := os.ReadFile(c)
	if !bytes.Equal(ba, bb) {
		t.Error("same spec gave different files")
	}
	if bytes.Equal(ba, bc) || len(ba) != len(bc) {
		t.Error("another seed gave the same file, or another size")
	}
}

func TestGenerateRejectsBadSpec(t *testing.T) {
	for _, s := range []testmodel.Spec{
		{Vocab: 10, Embedding: 8, Blocks: 1, FeedForward: 8, Heads: 2},
		{Vocab: 300, Embedding: 9, Blocks: 1, FeedForward: 8, Heads: 2},
		{Vocab: 300, Embedding: 8, Blocks: 0, FeedForward: 8, Heads: 2},
		{Vocab: 300, Embedding: 8, Blocks: 1, FeedForward: 8, Heads: 4, HeadsKV: 3},
	} {
		if err := testmodel.Generate(filepath.Join(t.TempDir(), "x"), s); err == nil {
			t.Errorf("Generate(%+v) succeeded", s)
		}
	}
}

// TestGeneratedLoadsInLlamaCpp checks that llama.cpp of the pinned release
// loads and runs a generated model (llama-bench is the loader), with and
// without a chat template, and with grouped-query attention.
func TestGeneratedLoadsInLlamaCpp(t *testing.T) {
	bench := testenv.LlamaBin(t, "llama-bench")
	tmpl, err := os.ReadFile(filepath.Join(testenv.LlamaSource(t), "models", "templates", "meta-llama-Llama-3.1-8B-Instruct.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]testmodel.Spec{
		"tiny":     testmodel.TinyLlama,
		"gqa+tmpl": {Vocab: 1000, Embedding: 64, Blocks: 2, FeedForward: 128, Heads: 4, HeadsKV: 2, Seed: 9, ChatTemplate: string(tmpl)},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "m.gguf")
			if err := testmodel.Generate(p, spec); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bench, "-m", p, "-p", "16", "-n", "16", "-r", "1", "-o", "csv").CombinedOutput()
			if err != nil {
				t.Fatalf("llama-bench: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "m.gguf") {
				t.Errorf("llama-bench printed no result row:\n%s", out)
			}
		})
	}
}

func BenchmarkGenerateTiny(b *testing.B) {
	p := filepath.Join(b.TempDir(), "t.gguf")
	for b.Loop() {
		if err := testmodel.Generate(p, testmodel.TinyLlama); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBenchLlamaInLlamaCpp generates (once, into the cache) the
// ~106M-parameter BenchLlama and runs llama-bench on it, to show it loads
// and to give a reference speed.
func BenchmarkBenchLlamaInLlamaCpp(b *testing.B) {
	bench := testenv.LlamaBin(b, "llama-bench")
	p := testmodel.Cached(b, testmodel.BenchLlama)
	g, err := gguf.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	if g.ParameterCount() != testmodel.BenchLlama.Params() {
		b.Fatalf("params %d, want %d", g.ParameterCount(), testmodel.BenchLlama.Params())
	}
	for b.Loop() {
		out, err := exec.Command(bench, "-m", p, "-p", "64", "-n", "16", "-r", "1").CombinedOutput()
		if err != nil {
			b.Fatalf("llama-bench: %v\n%s", err, out)
		}
		b.Logf("%s", out)
	}
}
