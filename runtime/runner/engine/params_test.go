package engine

import (
	"testing"

	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
)

// NumGPU reaches llama's ModelParams: auto fits (with the context the
// engine makes), 0 / -1 / N are layer counts.
func TestModelParamsNumGPU(t *testing.T) {
	base := runner.LoadOptions{Model: "/m", Parallel: 2, NumBatch: 256, NumCtx: 1024, KVCacheType: "q8_0", FlashAttention: "on"}
	for _, tc := range []struct {
		gpu    int
		layers int
		fit    bool
	}{{runner.NumGPUAuto, 0, true}, {0, 0, false}, {-1, -1, false}, {12, 12, false}} {
		o := base
		o.NumGPU = tc.gpu
		mp := modelParams(o)
		if mp.NumGPULayers != tc.layers || mp.FitGPU != tc.fit || !mp.UseMMap {
			t.Errorf("NumGPU %d: NumGPULayers %d FitGPU %v mmap %v; want %d %v true", tc.gpu, mp.NumGPULayers, mp.FitGPU, mp.UseMMap, tc.layers, tc.fit)
		}
		want := llama.ContextParams{}
		if tc.fit {
			want = llama.ContextParams{NumCtx: 2048, NumBatch: 256, NumSeqMax: 2, FlashAttn: llama.FlashAttnOn, CacheTypeK: "q8_0", CacheTypeV: "q8_0"}
		}
		if mp.FitContext != want {
			t.Errorf("NumGPU %d: FitContext %+v, want %+v", tc.gpu, mp.FitContext, want)
		}
	}
	o := base
	o.NumGPU, o.NumCtx = runner.NumGPUAuto, 0
	if got := modelParams(o).FitContext.NumCtx; got != 2*runner.DefaultNumCtx {
		t.Errorf("auto with num_ctx unset fits a context of %d, want %d", got, 2*runner.DefaultNumCtx)
	}
}
