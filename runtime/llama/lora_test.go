//go:build cgo

package llama_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
)

// writeLoRA writes a llama LoRA adapter GGUF for blk.0.attn_q.weight and
// blk.0.ffn_down.weight of a model of spec s, with rank r and random F32
// weights.
func writeLoRA(t *testing.T, path string, s testmodel.Spec, r uint64) {
	t.Helper()
	e, f := uint64(s.Embedding), uint64(s.FeedForward)
	ts := []gguf.TensorInfo{
		{Name: "blk.0.attn_q.weight.lora_a", Type: gguf.TensorF32, Dims: []uint64{e, r}},
		{Name: "blk.0.attn_q.weight.lora_b", Type: gguf.TensorF32, Dims: []uint64{r, e}},
		{Name: "blk.0.ffn_down.weight.lora_a", Type: gguf.TensorF32, Dims: []uint64{f, r}},
		{Name: "blk.0.ffn_down.weight.lora_b", Type: gguf.TensorF32, Dims: []uint64{r, e}},
	}
	h := gguf.Header{KV: []gguf.KV{
		{Key: "general.architecture", Value: gguf.String("llama")},
		{Key: "general.type", Value: gguf.String("adapter")},
		{Key: "adapter.type", Value: gguf.String("lora")},
		{Key: "adapter.lora.alpha", Value: gguf.Float32(float32(r))},
	}, Tensors: ts}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := gguf.NewWriter(out, h)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, ti := range w.Tensors() {
		var buf []byte
		for i := uint64(0); i < ti.Elements(); i++ {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(rng.Float32()*4-2))
		}
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLoRA(t *testing.T) {
	spec := testmodel.TinyLlama
	m, _ := generated(t, spec)
	path := filepath.Join(t.TempDir(), "adapter.gguf")
	writeLoRA(t, path, spec, 2)
	a, err := m.LoadLoRA(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	c := newContext(t, m, llama.ContextParams{NumCtx: 256})
	logits := func() []float32 {
		c.KVClear()
		b, _ := llama.NewBatch(8, 1)
		defer b.Close()
		toks, _ := m.Tokenize("hello there", true, false)
		for i, tok := range toks {
			b.Add(tok, i, i == len(toks)-1)
		}
		if err := c.Decode(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		l, _ := c.Logits(-1)
		return slices.Clone(l)
	}
	base := logits()
	if err := c.SetLoRA([]*llama.LoRA{a}, []float32{1}); err != nil {
		t.Fatal(err)
	}
	adapted := logits()
	if maxDiff(base, adapted) < 1e-3 {
		t.Error("the adapter did not change the logits")
	}
	if err := c.SetLoRA([]*llama.LoRA{a}, []float32{0}); err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(base, logits()); d > 1e-4 {
		t.Errorf("scale 0 should be the base model, logits differ by %g", d)
	}
	if err := c.SetLoRA(nil, nil); err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(base, logits()); d > 1e-4 {
		t.Errorf("after removing the adapter logits differ by %g", d)
	}

	// an adapter of the wrong shape, a missing file, another model's adapter
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	writeLoRA(t, bad, testmodel.Spec{Embedding: 16, FeedForward: 32}, 2)
	if _, err := m.LoadLoRA(bad); !errors.Is(err, llama.ErrLoad) {
		t.Errorf("wrong-shape adapter: %v, want ErrLoad", err)
	}
	if _, err := m.LoadLoRA(filepath.Join(t.TempDir(), "none.gguf")); !errors.Is(err, llama.ErrLoad) {
		t.Errorf("missing adapter: %v", err)
	}
	other := tiny(t)
	if oa, err := other.LoadLoRA(path); err == nil {
		defer oa.Close()
		if err := c.SetLoRA([]*llama.LoRA{oa}, nil); !errors.Is(err, llama.ErrLoad) {
			t.Errorf("another model's adapter: %v", err)
		}
	}
}
