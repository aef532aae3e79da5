package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
)

// benchModel returns the compute-bound random llama of testmodel.BenchLlama
// (about 106M parameters, F16), generated once into olm's cache folder.
func benchModel(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("OLM_BENCH_MODEL"); p != "" {
		return p // another model, e.g. a quantized copy
	}
	dir := filepath.Join(testenv.CacheDir(), "models")
	path := filepath.Join(dir, "bench-llama-106m-f16.gguf")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := testmodel.Generate(path, testmodel.BenchLlama); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkParallelSlots measures aggregate generation speed of 4
// concurrent requests on a runner with 4 slots against 1 request alone, on
// the compute-bound bench model. It reports tok/s for both and their ratio
// (x4/x1; the target on CPU is ≥ 2.5). OLM_BENCH_THREADS sets the threads
// (default: llama.cpp's choice), OLM_BENCH_TOKENS the tokens per request
// (default 64), OLM_BENCH_MODEL another GGUF.
func BenchmarkParallelSlots(b *testing.B) {
	needLlama(b)
	threads, _ := strconv.Atoi(os.Getenv("OLM_BENCH_THREADS"))
	n := 64
	if v, err := strconv.Atoi(os.Getenv("OLM_BENCH_TOKENS")); err == nil && v > 0 {
		n = v
	}
	p := start(b, runner.LoadOptions{Model: benchModel(b), NumCtx: 512, Parallel: 4, NumThread: threads})
	c := p.Client()
	prompts := []string{"The history of", "A recipe for", "Once upon a time", "The theory of"}
	run := func(i int) (int, time.Duration) {
		o := greedy(n)
		ev, err := c.Completion(context.Background(), runner.CompletionRequest{Prompt: prompts[i], Options: o}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return ev.EvalCount, ev.EvalDuration
	}
	run(0) // warm up
	var tok1, tok4 int
	var dur1, dur4 time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		k, _ := run(i % 4)
		dur1 += time.Since(t0)
		tok1 += k

		t0 = time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		for j := 0; j < 4; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, _ := run(j)
				mu.Lock()
				tok4 += k
				mu.Unlock()
			}()
		}
		wg.Wait()
		dur4 += time.Since(t0)
	}
	r1 := float64(tok1) / dur1.Seconds()
	r4 := float64(tok4) / dur4.Seconds()
	b.ReportMetric(r1, "tok/s-x1")
	b.ReportMetric(r4, "tok/s-x4")
	b.ReportMetric(r4/r1, "ratio")
	b.Logf("1 request: %.1f tok/s; 4 concurrent on 4 slots: %.1f tok/s aggregate; ratio %.2f×", r1, r4, r4/r1)
}

// BenchmarkDecodeCeiling measures what llama.cpp itself gives for the same
// shape as BenchmarkParallelSlots, without the runner: decode steps of 1
// sequence against steps of 4 sequences (one token each, greedy sampling),
// in process. Its ratio is the ceiling for BenchmarkParallelSlots's ratio
// on the same machine; the gap between them is the runner's overhead.
func BenchmarkDecodeCeiling(b *testing.B) {
	needLlama(b)
	threads, _ := strconv.Atoi(os.Getenv("OLM_BENCH_THREADS"))
	m, err := llama.LoadModel(context.Background(), benchModel(b), llama.DefaultModelParams())
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	c, err := llama.NewContext(m, llama.ContextParams{NumCtx: 512 * 4, NumSeqMax: 4, NumBatch: 512, NumThreads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	batch, err := llama.NewBatch(512, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer batch.Close()
	smp, err := llama.NewSampler(m, llama.SamplerParams{})
	if err != nil {
		b.Fatal(err)
	}
	defer smp.Close()
	const steps = 64
	pass := func(nseq int) time.Duration {
		c.KVClear()
		t0 := time.Now()
		for pos := 0; pos < steps; pos++ {
			batch.Clear()
			for s := 0; s < nseq; s++ {
				batch.Add(llama.Token(100+pos+s), pos, true, s)
			}
			if err := c.Decode(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			for s := 0; s < nseq; s++ {
				smp.Sample(c, s)
			}
		}
		return time.Since(t0)
	}
	pass(1) // warm up: page the weights in
	pass(4)
	var d1, d4 time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d1 += pass(1)
		d4 += pass(4)
	}
	r1 := float64(steps*b.N) / d1.Seconds()
	r4 := float64(4*steps*b.N) / d4.Seconds()
	b.ReportMetric(r1, "tok/s-x1")
	b.ReportMetric(r4, "tok/s-x4")
	b.ReportMetric(r4/r1, "ratio")
	b.Logf("llama.cpp decode: 1 sequence %.1f tok/s; 4 sequences %.1f tok/s aggregate; ratio %.2f×", r1, r4, r4/r1)
}
