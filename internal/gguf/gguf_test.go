package gguf_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
)

func readTiny(t *testing.T) ([]byte, *gguf.File) {
	t.Helper()
	b, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return b, f
}

func rewrite(t testing.TB, f *gguf.File, src io.ReaderAt) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := gguf.NewWriter(&out, f.Header())
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range f.Tensors {
		if err := w.WriteTensor(f.TensorData(src, ti)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestTinyMetadata(t *testing.T) {
	_, f := readTiny(t)
	if got := f.Architecture(); got != "llama" {
		t.Errorf("Architecture = %q, want llama", got)
	}
	tokens, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(tokens) != 32000 {
		t.Errorf("tokenizer.ggml.tokens: %d tokens, ok=%v; want 32000", len(tokens), ok)
	}
	if f.BlockCount() == 0 || f.EmbeddingLength() == 0 || f.ContextLength() == 0 || f.HeadCount() == 0 {
		t.Errorf("hyperparameters: blocks %d embd %d ctx %d heads %d", f.BlockCount(), f.EmbeddingLength(), f.ContextLength(), f.HeadCount())
	}
	if q := f.Quantization(); q != "F16" {
		t.Errorf("Quantization = %q, want F16", q)
	}
	var sum int64
	for _, ti := range f.Tensors {
		sum += ti.Size()
	}
	if sum != f.TensorBytes() || sum <= 0 || f.DataOffset+sum > f.Size {
		t.Errorf("tensor bytes %d, data offset %d, size %d", sum, f.DataOffset, f.Size)
	}
	if f.ParameterCount() < 100_000 || f.ParameterCount() > 10_000_000 {
		t.Errorf("ParameterCount = %d, want about 0.5M", f.ParameterCount())
	}
	t.Logf("%s: %d params (%s), %d tensors, %d kv, data at %d", f.Name(), f.ParameterCount(), gguf.HumanParams(f.ParameterCount()), len(f.Tensors), len(f.KV), f.DataOffset)
	for _, kv := range f.KV {
		t.Logf("%s %s = %v", kv.Key, kv.Value.Type(), kv.Value)
	}
	for _, ti := range f.Tensors[:min(len(f.Tensors), 12)] {
		t.Logf("%s %v %s @%d", ti.Name, ti.Dims, ti.Type, ti.Offset)
	}
}

func TestRoundTripTiny(t *testing.T) {
	b, f := readTiny(t)
	out := rewrite(t, f, bytes.NewReader(b))
	if !bytes.Equal(out, b) {
		n := 0
		for n < len(out) && n < len(b) && out[n] == b[n] {
			n++
		}
		t.Fatalf("rewritten file differs from the original at byte %d (sizes %d, %d)", n, len(out), len(b))
	}
}

// BenchmarkReadVocab reads the header of llama.cpp's llama-bpe vocabulary
// (128256 tokens, 280147 merges), the size of a real Llama 3 header.
func BenchmarkReadVocab(b *testing.B) {
	p := filepath.Join(testenv.LlamaSource(b), "models", "ggml-vocab-llama-bpe.gguf")
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := gguf.Read(bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}
