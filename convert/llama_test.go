//go:build cgo

package convert

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
)

func loadModel(t *testing.T, path string, vocabOnly bool) *llama.Model {
	t.Helper()
	testenv.LlamaDir(t)
	p := llama.DefaultModelParams()
	p.VocabOnly = vocabOnly
	m, err := llama.LoadModel(context.Background(), path, p)
	if err != nil {
		t.Fatalf("llama.cpp cannot load %s: %v", path, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func init() { checkConverted = tokenizerVectors }

// tokenizerVectors tokenizes the test inputs (.inp) of the vocabulary a
// case's tokenizer was rebuilt from with the converted GGUF: the ids must
// be exactly the .out ones. TestArchitectures calls it for every case.
func tokenizerVectors(t *testing.T, c archCase, out string) bool {
	vp := vocabPath(t, c.vocab)
	inp, err := os.ReadFile(vp + ".inp")
	if err != nil {
		return false // this vocabulary has no test vectors
	}
	want, err := os.ReadFile(vp + ".out")
	if err != nil {
		t.Fatal(err)
	}
	m := loadModel(t, out, true)
	inputs := strings.Split(strings.TrimSuffix(string(inp), "\n__ggml_vocab_test__\n"), "\n__ggml_vocab_test__\n")
	lines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	if len(inputs) != len(lines) {
		t.Fatalf("%d inputs, %d outputs", len(inputs), len(lines))
	}
	for i, in := range inputs {
		var ids []llama.Token
		for _, f := range strings.Fields(lines[i]) {
			n, _ := strconv.Atoi(f)
			ids = append(ids, llama.Token(n))
		}
		got, err := m.Tokenize(in, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			got = nil
		}
		if !slices.Equal(got, ids) {
			t.Errorf("Tokenize(%q) = %v, want %v", in, got, ids)
		}
	}
	return true
}

// TestRoundTripGreedy runs greedy generation on the shared tiny model and
// on its round trip through a Hugging Face directory: the tokens must be
// the same.
func TestRoundTripGreedy(t *testing.T) {
	src := testmodel.Tiny(t)
	dir := t.TempDir()
	ggufToHF(t, src, dir)
	out := filepath.Join(t.TempDir(), "rt.gguf")
	if err := ConvertFile(context.Background(), dir, out, Options{}); err != nil {
		t.Fatal(err)
	}
	run := func(path string) []llama.Token {
		m := loadModel(t, path, false)
		c, err := llama.NewContext(m, llama.ContextParams{NumCtx: 256, NumThreads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := llama.NewSampler(m, llama.SamplerParams{Temperature: 0})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		prompt, err := m.Tokenize("Once upon a time, there was", true, false)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		b, err := llama.NewBatch(len(prompt), 1)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		for i, tok := range prompt {
			b.Add(tok, i, i == len(prompt)-1, 0)
		}
		if err := c.Decode(ctx, b); err != nil {
			t.Fatal(err)
		}
		var toks []llama.Token
		for pos := len(prompt); len(toks) < 24; pos++ {
			tok, err := s.Sample(c, -1)
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, tok)
			b.Clear()
			b.Add(tok, pos, true, 0)
			if err := c.Decode(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		return toks
	}
	a, b := run(src), run(out)
	if !slices.Equal(a, b) {
		t.Errorf("greedy tokens differ:\noriginal  %v\nconverted %v", a, b)
	}
	t.Logf("greedy tokens (both): %v", a)
}
