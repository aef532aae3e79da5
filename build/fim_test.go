package build_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/modelfile"
	"github.com/olmhq/olm/runtime/llama"
)

// TestInsertCapability: a model whose vocabulary has fill-in-the-middle
// tokens (by metadata ID as current GGUFs name them, or by text as older
// CodeLlama GGUFs have them) gets the insert capability without a template
// that uses .Suffix; one that lacks any of the three does not.
func TestInsertCapability(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	spec := testmodel.TinyLlama
	spec.FIM = true
	fim := filepath.Join(dir, "fim.gguf")
	if err := testmodel.Generate(fim, spec); err != nil {
		t.Fatal(err)
	}
	vocab := func(extra ...string) []gguf.KV {
		toks := append([]string{"<unk>", "<s>", "</s>", "a", "b"}, extra...)
		return []gguf.KV{
			{Key: "general.architecture", Value: gguf.String("llama")},
			{Key: "tokenizer.ggml.model", Value: gguf.String("llama")},
			{Key: "tokenizer.ggml.tokens", Value: gguf.ArrayOf(toks)},
		}
	}
	codellama := filepath.Join(dir, "codellama.gguf")
	writeGGUF(t, codellama, vocab("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"))
	noMiddle := filepath.Join(dir, "nomid.gguf")
	writeGGUF(t, noMiddle, vocab("<|fim_prefix|>", "<|fim_suffix|>"))
	badID := filepath.Join(dir, "badid.gguf")
	writeGGUF(t, badID, append(vocab("<|fim_prefix|>", "<|fim_suffix|>"),
		gguf.KV{Key: "tokenizer.ggml.fim_mid_token_id", Value: gguf.Uint32(999)}))
	deprecated := filepath.Join(dir, "deprecated.gguf")
	writeGGUF(t, deprecated, append(vocab("x", "y", "z"),
		gguf.KV{Key: "tokenizer.ggml.prefix_token_id", Value: gguf.Uint32(5)},
		gguf.KV{Key: "tokenizer.ggml.suffix_token_id", Value: gguf.Uint32(6)},
		gguf.KV{Key: "tokenizer.ggml.middle_token_id", Value: gguf.Uint32(7)}))

	b, s := newBuilder(t)
	for _, tc := range []struct {
		name, from string
		insert     bool
	}{
		{"generated-fim", fim, true},
		{"codellama-text", codellama, true},
		{"deprecated-keys", deprecated, true},
		{"no-middle", noMiddle, false},
		{"middle-id-out-of-range", badID, false},
		{"plain", testmodel.Tiny(t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mf, err := modelfile.ParseString("FROM " + tc.from + "\n")
			if err != nil {
				t.Fatal(err)
			}
			ref := "example.com/fim/" + tc.name + ":v1"
			res, err := b.Build(ctx, build.Request{Modelfile: mf, Tags: []string{ref}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(res.Details.Capabilities, "insert"); got != tc.insert {
				t.Fatalf("build: capabilities %v, insert %v", res.Details.Capabilities, tc.insert)
			}
			info, err := build.Show(ctx, s, ref, build.ShowOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(info.Details.Capabilities, "insert"); got != tc.insert {
				t.Fatalf("show: capabilities %v, insert %v", info.Details.Capabilities, tc.insert)
			}
		})
	}
}

// TestInsertCapabilityRealVocabularies: on every real tokenizer vocabulary
// of the pinned llama.cpp (src/models/ggml-vocab-*.gguf: Qwen2, StarCoder,
// DeepSeek-Coder, Refact, ...), the insert capability read from the GGUF
// header agrees with llama.cpp's own fill-in-the-middle tokens.
func TestInsertCapabilityRealVocabularies(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(testenv.LlamaSource(t), "models", "ggml-vocab-*.gguf"))
	if len(paths) == 0 {
		t.Fatal("no ggml-vocab-*.gguf in the llama.cpp source")
	}
	if !llama.Available() {
		testenv.Missing(t, "a cgo build with llama.cpp", "run `make llama` and build with CGO_ENABLED=1")
	}
	withFIM := 0
	for _, p := range paths {
		f, err := gguf.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		m, err := llama.LoadModel(context.Background(), p, llama.ModelParams{UseMMap: true, VocabOnly: true})
		if err != nil {
			t.Logf("%s: llama.cpp cannot load it: %v", filepath.Base(p), err)
			continue
		}
		want := m.FIMPrefix() != llama.TokenNull && m.FIMSuffix() != llama.TokenNull && m.FIMMiddle() != llama.TokenNull
		m.Close()
		if want {
			withFIM++
			t.Logf("%s has FIM tokens", filepath.Base(p))
		}
		if got := slices.Contains(build.CapabilitiesOf(f), "insert"); got != want {
			t.Errorf("%s: insert %v, llama.cpp finds FIM tokens: %v", filepath.Base(p), got, want)
		}
	}
	if withFIM == 0 {
		t.Error("no vocabulary with FIM tokens was checked")
	}
}
