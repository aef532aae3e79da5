package testmodel_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
)

// TestFIMVocabulary: a Spec with FIM writes the three fill-in-the-middle
// control tokens and their metadata, and llama.cpp finds them
// (llama_vocab_fim_pre/suf/mid) and parses their text as those tokens.
func TestFIMVocabulary(t *testing.T) {
	spec := testmodel.TinyLlama
	spec.FIM = true
	p := filepath.Join(t.TempDir(), "fim.gguf")
	if err := testmodel.Generate(p, spec); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	pre, suf, mid := spec.FIMTokenIDs()
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	if len(tokens) != spec.Vocab || tokens[pre] != testmodel.FIMPrefix || tokens[suf] != testmodel.FIMSuffix || tokens[mid] != testmodel.FIMMiddle {
		t.Fatalf("%d tokens, last three %q", len(tokens), tokens[len(tokens)-3:])
	}
	for key, want := range map[string]int32{"tokenizer.ggml.fim_pre_token_id": pre, "tokenizer.ggml.fim_suf_token_id": suf, "tokenizer.ggml.fim_mid_token_id": mid} {
		if got, ok := f.Uint(key); !ok || got != uint64(want) {
			t.Errorf("%s = %d, %v; want %d", key, got, ok, want)
		}
	}
	// Without FIM the header has none of it.
	h, _ := testmodel.Header(testmodel.TinyLlama)
	for _, kv := range h.KV {
		if kv.Key == "tokenizer.ggml.fim_pre_token_id" {
			t.Fatal("a spec without FIM has FIM metadata")
		}
	}
	small := spec
	small.Vocab = 260
	if err := testmodel.Generate(filepath.Join(t.TempDir(), "x.gguf"), small); err == nil {
		t.Fatal("FIM with a 260-token vocabulary was accepted")
	}

	if !llama.Available() {
		testenv.Missing(t, "a cgo build with llama.cpp", "run `make llama` and build with CGO_ENABLED=1")
	}
	m, err := llama.LoadModel(context.Background(), p, llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := []llama.Token{m.FIMPrefix(), m.FIMSuffix(), m.FIMMiddle()}; !slices.Equal(got, []llama.Token{llama.Token(pre), llama.Token(suf), llama.Token(mid)}) {
		t.Fatalf("llama.cpp FIM tokens %v, want %d %d %d", got, pre, suf, mid)
	}
	toks, err := m.Tokenize(testmodel.FIMPrefix+"ab"+testmodel.FIMSuffix+"cd"+testmodel.FIMMiddle, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if toks[0] != llama.Token(pre) || !slices.Contains(toks, llama.Token(suf)) || toks[len(toks)-1] != llama.Token(mid) {
		t.Fatalf("tokens %v: the FIM texts are not parsed as their tokens", toks)
	}
	// A model without FIM tokens has none.
	plain, err := llama.LoadModel(context.Background(), testmodel.Tiny(t), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if plain.FIMPrefix() != llama.TokenNull || plain.FIMMiddle() != llama.TokenNull {
		t.Fatalf("the tiny model has FIM tokens %d %d", plain.FIMPrefix(), plain.FIMMiddle())
	}
}
