//go:build cgo

package llama_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
)

// On a build without GPU devices common_fit_params sees no device to fit:
// it only checks that the model fits in host memory, fills in an unset
// context size, and leaves the model params as they were.
func TestFitParamsWithoutGPU(t *testing.T) {
	if llama.SupportsGPUOffload() {
		t.Skip("this build offloads to a GPU: the fit would move layers")
	}
	m := tiny(t)
	path := testmodel.Tiny(t)

	r, split, overrides, nCtx := llama.FitDefaults(path, llama.ContextParams{NumCtx: 512, NumSeqMax: 1})
	if r.Status != llama.FitOK || r.Message != "" {
		t.Fatalf("fit status %d %q, want FitOK", r.Status, r.Message)
	}
	if r.GPULayers != -1 || split || overrides {
		t.Errorf("fit changed model params without devices: n_gpu_layers %d (want the default -1), split %v, overrides %v",
			r.GPULayers, split, overrides)
	}
	if nCtx != 512 {
		t.Errorf("fit changed a set context size: %d, want 512", nCtx)
	}

	// an unset context size becomes the training context of every sequence
	r, _, _, nCtx = llama.FitDefaults(path, llama.ContextParams{NumSeqMax: 2})
	if r.Status != llama.FitOK {
		t.Fatalf("fit status %d %q, want FitOK", r.Status, r.Message)
	}
	if want := 2 * m.NumCtxTrain(); nCtx != want {
		t.Errorf("fit set n_ctx %d, want 2 × %d", nCtx, m.NumCtxTrain())
	}
}

func TestFitParamsErrors(t *testing.T) {
	testenv.LlamaDir(t)
	r, split, overrides, _ := llama.FitDefaults(filepath.Join(t.TempDir(), "missing.gguf"), llama.ContextParams{NumCtx: 512})
	if r.Status != llama.FitError || r.Message == "" {
		t.Fatalf("fit of a missing model: status %d %q, want FitError with a message", r.Status, r.Message)
	}
	if r.GPULayers != -1 || split || overrides {
		t.Errorf("failed fit left changed params: n_gpu_layers %d, split %v, overrides %v", r.GPULayers, split, overrides)
	}
	r, _, _, _ = llama.FitDefaults(testmodel.Tiny(t), llama.ContextParams{NumCtx: 512, CacheTypeK: "f64"})
	if r.Status != llama.FitError || r.Message == "" {
		t.Fatalf("fit with a bad context: status %d %q, want FitError with a message", r.Status, r.Message)
	}
}

// FitGPU on a build without GPU offload is the CPU path: no fit, 0 layers.
func TestLoadModelFitGPUWithoutGPU(t *testing.T) {
	if llama.SupportsGPUOffload() {
		t.Skip("this build offloads to a GPU")
	}
	testenv.LlamaDir(t)
	p := llama.DefaultModelParams()
	p.FitGPU = true
	p.FitContext = llama.ContextParams{NumCtx: 256}
	m, err := llama.LoadModel(context.Background(), testmodel.Tiny(t), p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.Fit(); got != (llama.FitResult{Status: llama.FitNone}) {
		t.Errorf("Fit() = %+v, want no fit and 0 GPU layers", got)
	}
	c, err := llama.NewContext(m, llama.ContextParams{NumCtx: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := llama.NewBatch(8, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Add(1, 0, true, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(context.Background(), b); err != nil {
		t.Fatalf("decode after a FitGPU load: %v", err)
	}
	// an explicit layer count also reports 0 layers without offload
	m2, err := llama.LoadModel(context.Background(), testmodel.Tiny(t), llama.ModelParams{NumGPULayers: -1, UseMMap: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := m2.Fit(); got != (llama.FitResult{Status: llama.FitNone}) {
		t.Errorf("Fit() = %+v after NumGPULayers -1 on a CPU build, want FitNone and 0 layers", got)
	}
}
