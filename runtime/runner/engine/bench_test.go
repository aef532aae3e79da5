package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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

// cpuTime returns the user+system CPU time of process pid so far (Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// BenchmarkGenerate measures one greedy request at a time through the
// runner (HTTP over the unix socket, slots, sampler, stop strings) against
// the bare binding loop of the same shape (decode one token, sample,
// detokenize) in this process, alternating the two, on the bench model and
// the tiny one. The tiny model measures the runner's per-token overhead.
// It reports tokens/s by the runner's eval duration and the ratio, and the
// CPU time per token of each side. OLM_BENCH_THREADS sets the threads,
// OLM_BENCH_TOKENS the tokens per request (default 128).
func BenchmarkGenerate(b *testing.B) {
	needLlama(b)
	threads, _ := strconv.Atoi(os.Getenv("OLM_BENCH_THREADS"))
	n := 128
	if v, err := strconv.Atoi(os.Getenv("OLM_BENCH_TOKENS")); err == nil && v > 0 {
		n = v
	}
	for _, mc := range []struct{ name, path string }{{"bench-106M", benchModel(b)}, {"tiny", testmodel.Tiny(b)}} {
		b.Run(mc.name, func(b *testing.B) {
			p := start(b, runner.LoadOptions{Model: mc.path, NumCtx: 2048, Parallel: 1, NumThread: threads})
			c := p.Client()
			viaRunner := func() (int, time.Duration, time.Duration) {
				o := greedy(n)
				c0 := cpuTime(p.Pid())
				ev, err := c.Completion(context.Background(), runner.CompletionRequest{Prompt: "Once upon a time", Options: o}, nil)
				if err != nil {
					b.Fatal(err)
				}
				return ev.EvalCount, ev.EvalDuration, cpuTime(p.Pid()) - c0
			}

			m, err := llama.LoadModel(context.Background(), mc.path, llama.DefaultModelParams())
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			lc, err := llama.NewContext(m, llama.ContextParams{NumCtx: 2048, NumBatch: 512, NumThreads: threads})
			if err != nil {
				b.Fatal(err)
			}
			defer lc.Close()
			batch, err := llama.NewBatch(512, 1)
			if err != nil {
				b.Fatal(err)
			}
			defer batch.Close()
			prompt, _ := m.Tokenize("Once upon a time", true, true)
			bare := func() (int, time.Duration, time.Duration) {
				smp, err := llama.NewSampler(m, llama.SamplerParams{})
				if err != nil {
					b.Fatal(err)
				}
				defer smp.Close()
				lc.KVClear()
				batch.Clear()
				for i, t := range prompt {
					batch.Add(t, i, i == len(prompt)-1, 0)
				}
				ctx := context.Background()
				if err := lc.Decode(ctx, batch); err != nil {
					b.Fatal(err)
				}
				c0 := cpuTime(os.Getpid())
				t0 := time.Now()
				var buf []byte
				tok, _ := smp.Sample(lc, -1)
				for i := 0; i < n; i++ {
					buf = m.AppendPiece(buf[:0], tok, false)
					batch.Clear()
					batch.Add(tok, len(prompt)+i, true, 0)
					if err := lc.Decode(ctx, batch); err != nil {
						b.Fatal(err)
					}
					tok, _ = smp.Sample(lc, -1)
				}
				return n, time.Since(t0), cpuTime(os.Getpid()) - c0
			}
			viaRunner()
			bare()
			var rr, br []float64
			var rCPU, bCPU time.Duration
			var rTok, bTok int
			for i := 0; i < max(b.N, 3); i++ {
				k, d, cpu := viaRunner()
				rr = append(rr, float64(k)/d.Seconds())
				rCPU += cpu
				rTok += k
				k, d, cpu = bare()
				br = append(br, float64(k)/d.Seconds())
				bCPU += cpu
				bTok += k
			}
			r, bb := median(rr), median(br)
			b.ReportMetric(r, "runner-tok/s")
			b.ReportMetric(bb, "binding-tok/s")
			b.ReportMetric(r/bb, "ratio")
			b.ReportMetric(float64(rCPU.Microseconds())/float64(rTok), "runner-cpu-us/tok")
			b.ReportMetric(float64(bCPU.Microseconds())/float64(bTok), "binding-cpu-us/tok")
			b.Logf("%s: runner %.1f tok/s (%.0f µs CPU/token), binding %.1f tok/s (%.0f µs CPU/token): ratio %.3f (medians of %d)",
				mc.name, r, float64(rCPU.Microseconds())/float64(rTok), bb, float64(bCPU.Microseconds())/float64(bTok), r/bb, len(rr))
		})
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
