package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/olmhq/olm/convert"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testmodel"
)

func TestConvertCmd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny-hf")
	spec := testmodel.Spec{Vocab: 400, Embedding: 16, Blocks: 1, FeedForward: 32, Heads: 2, Seed: 3}
	if err := testmodel.WriteHF(dir, spec); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "x.gguf")
	if err := (&ConvertCmd{Dir: dir, Output: out, DType: "bf16"}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if g.Architecture() != "llama" || g.Quantization() != "BF16" || g.Name() != "tiny-hf" || g.ParameterCount() != spec.Params() {
		t.Errorf("converted: %s %s %q %d params", g.Architecture(), g.Quantization(), g.Name(), g.ParameterCount())
	}
	// --check writes nothing; a directory without weights is refused.
	check := filepath.Join(t.TempDir(), "none.gguf")
	if err := (&ConvertCmd{Dir: dir, Output: check, DType: "auto", Check: true}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(check); !os.IsNotExist(err) {
		t.Error("--check wrote a file")
	}
	os.Remove(filepath.Join(dir, "model.safetensors"))
	if err := (&ConvertCmd{Dir: dir, Output: check, DType: "auto"}).Run(context.Background()); !errors.Is(err, convert.ErrNotFound) {
		t.Errorf("no weights: %v, want convert.ErrNotFound", err)
	}
}
