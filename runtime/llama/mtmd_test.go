//go:build cgo

package llama_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"slices"
	"testing"

	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
)

// pngImage returns a w×h PNG whose pixels depend on seed.
func pngImage(t testing.TB, w, h int, seed uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x*7) + seed, uint8(y*13) ^ seed, seed * 3, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// projector loads a generated projector for m (a model of spec s).
func projector(t testing.TB, m *llama.Model, s testmodel.Spec, p testmodel.ProjectorSpec) *llama.Projector {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mmproj.gguf")
	if err := testmodel.GenerateProjector(path, s, p); err != nil {
		t.Fatal(err)
	}
	pr, err := m.LoadProjector(path, llama.ProjectorParams{})
	if err != nil {
		t.Fatalf("LoadProjector: %v", err)
	}
	t.Cleanup(func() { pr.Close() })
	return pr
}

func TestProjector(t *testing.T) {
	spec := testmodel.TinyLlama
	m, _ := generated(t, spec)
	pr := projector(t, m, spec, testmodel.ProjectorSpec{})
	if pr.Marker() != llama.DefaultMediaMarker() {
		t.Errorf("marker %q, want %q", pr.Marker(), llama.DefaultMediaMarker())
	}

	// logits after "a <image> b" for an image
	c := newContext(t, m, llama.ContextParams{NumCtx: 256})
	logits := func(img []byte) []float32 {
		t.Helper()
		bm, err := pr.NewBitmap(img)
		if err != nil {
			t.Fatal(err)
		}
		defer bm.Close()
		chunks, err := pr.Tokenize("a "+pr.Marker()+" b", []*llama.Bitmap{bm}, true, true)
		if err != nil {
			t.Fatal(err)
		}
		defer chunks.Close()
		if chunks.Len() != 3 {
			t.Fatalf("%d chunks, want text, image, text", chunks.Len())
		}
		img1 := chunks.Chunk(1)
		want := (testmodel.ProjectorSpec{}).Tokens()
		if !img1.Image || img1.NumTokens != want || img1.NumPos != img1.NumTokens || img1.ID == "" {
			t.Fatalf("image chunk %+v, want %d tokens", img1, want)
		}
		if ch := chunks.Chunk(0); ch.Image || len(ch.Tokens) == 0 || ch.Tokens[0] != m.BOS() {
			t.Fatalf("first chunk %+v, want text starting with BOS", ch)
		}
		c.KVClear()
		pos := 0
		for i := 0; i < chunks.Len(); i++ {
			next, err := c.EvalChunk(context.Background(), pr, chunks, i, pos, 0, 64, i == chunks.Len()-1)
			if err != nil {
				t.Fatal(err)
			}
			if want := pos + chunks.Chunk(i).NumPos; next != want {
				t.Fatalf("chunk %d: next position %d, want %d", i, next, want)
			}
			pos = next
		}
		l, err := c.Logits(-1)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(l)
	}
	a1 := logits(pngImage(t, 40, 30, 1))
	a2 := logits(pngImage(t, 40, 30, 1))
	b := logits(pngImage(t, 20, 20, 200))
	if d := maxDiff(a1, a2); d > 1e-4 {
		t.Errorf("the same image gave logits differing by %g", d)
	}
	if maxDiff(a1, b) < 1e-4 {
		t.Error("different images gave the same logits")
	}

	// errors: bytes that are no image, a marker count mismatch
	for _, bad := range [][]byte{nil, []byte("not an image"), pngImage(t, 4, 4, 0)[:30]} {
		if _, err := pr.NewBitmap(bad); !errors.Is(err, llama.ErrImage) {
			t.Errorf("NewBitmap(%d bytes): %v, want ErrImage", len(bad), err)
		}
	}
	bm, err := pr.NewBitmap(pngImage(t, 8, 8, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer bm.Close()
	if w, h := bm.Size(); w != 8 || h != 8 {
		t.Errorf("bitmap size %dx%d, want 8x8", w, h)
	}
	if _, err := pr.Tokenize("no marker", []*llama.Bitmap{bm}, true, true); !errors.Is(err, llama.ErrImage) {
		t.Errorf("tokenize without a marker: %v, want ErrImage", err)
	}
	if _, err := pr.Tokenize(pr.Marker()+pr.Marker(), []*llama.Bitmap{bm}, true, true); !errors.Is(err, llama.ErrImage) {
		t.Errorf("tokenize with two markers, one image: %v, want ErrImage", err)
	}
}

func TestProjectorLoadErrors(t *testing.T) {
	spec := testmodel.TinyLlama
	m, modelPath := generated(t, spec)
	dir := t.TempDir()
	wrongWidth := filepath.Join(dir, "wide.gguf")
	if err := testmodel.GenerateProjector(wrongWidth, spec, testmodel.ProjectorSpec{TextEmbedding: 24}); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing":     filepath.Join(dir, "none.gguf"),
		"directory":   dir,
		"a llama":     modelPath,
		"wrong width": wrongWidth,
	} {
		if p, err := m.LoadProjector(path, llama.ProjectorParams{}); !errors.Is(err, llama.ErrLoad) {
			p.Close()
			t.Errorf("%s: %v, want ErrLoad", name, err)
		}
	}
}
