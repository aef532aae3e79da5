package testmodel_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testmodel"
)

func TestGenerateLoRA(t *testing.T) {
	dir := t.TempDir()
	s := testmodel.TinyLlama
	p := filepath.Join(dir, "lora.gguf")
	if err := testmodel.GenerateLoRA(p, s, testmodel.LoRASpec{Rank: 2, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"general.type": "adapter", "adapter.type": "lora", "general.architecture": "llama"} {
		if v, _ := f.String(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if a, _ := f.Float("adapter.lora.alpha"); a != 2 {
		t.Errorf("alpha %v, want the rank (2)", a)
	}
	e, ff := uint64(s.Embedding), uint64(s.FeedForward)
	for name, dims := range map[string][]uint64{
		"blk.0.attn_q.weight.lora_a":   {e, 2},
		"blk.0.attn_q.weight.lora_b":   {2, e},
		"blk.0.ffn_down.weight.lora_a": {ff, 2},
		"blk.0.ffn_down.weight.lora_b": {2, e},
	} {
		ti, ok := f.Tensor(name)
		if !ok || !slices.Equal(ti.Dims, dims) {
			t.Errorf("%s: %v (found %v), want %v", name, ti.Dims, ok, dims)
		}
	}
	// Deterministic, and Zero zeroes the B matrices only.
	p2 := filepath.Join(dir, "again.gguf")
	if err := testmodel.GenerateLoRA(p2, s, testmodel.LoRASpec{Rank: 2, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Error("the same LoRASpec gave different files")
	}
	pz := filepath.Join(dir, "zero.gguf")
	if err := testmodel.GenerateLoRA(pz, s, testmodel.LoRASpec{Rank: 2, Seed: 3, Zero: true}); err != nil {
		t.Fatal(err)
	}
	fz, err := gguf.ReadFile(pz)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(pz)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, ti := range fz.Tensors {
		data := make([]byte, ti.Size())
		if _, err := fz.TensorData(r, ti).ReadAt(data, 0); err != nil {
			t.Fatal(err)
		}
		zero := !slices.ContainsFunc(data, func(b byte) bool { return b != 0 })
		if isB := ti.Name[len(ti.Name)-1] == 'b'; zero != isB {
			t.Errorf("%s: all zero %v", ti.Name, zero)
		}
	}
}

func TestGenerateProjector(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mmproj.gguf")
	ps := testmodel.ProjectorSpec{ImageSize: 48, PatchSize: 12}
	if err := testmodel.GenerateProjector(p, testmodel.TinyLlama, ps); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Architecture() != "clip" {
		t.Errorf("architecture %q", f.Architecture())
	}
	if v, _ := f.String("clip.projector_type"); v != "mlp" {
		t.Errorf("projector type %q", v)
	}
	if ps.Tokens() != 16 {
		t.Errorf("Tokens %d, want (48/12)² = 16", ps.Tokens())
	}
	if ti, ok := f.Tensor("v.position_embd.weight"); !ok || !slices.Equal(ti.Dims, []uint64{16, 16}) {
		t.Errorf("position embeddings %v, want [16 16] (width × patches)", ti.Dims)
	}
	if ti, ok := f.Tensor("mm.2.weight"); !ok || ti.Dims[1] != uint64(testmodel.TinyLlama.Embedding) {
		t.Errorf("projector output %v, want the text model's width %d", ti.Dims, testmodel.TinyLlama.Embedding)
	}
	if err := testmodel.GenerateProjector(p, testmodel.TinyLlama, testmodel.ProjectorSpec{ImageSize: 30, PatchSize: 8}); err == nil {
		t.Error("an image size that is not a multiple of the patch size was accepted")
	}
}
