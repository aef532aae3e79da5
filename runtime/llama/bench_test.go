//go:build cgo

package llama_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
)

// Benchmarks. The comparison with llama.cpp's own llama-bench (same
// release, model, threads, context, batch sizes) is
//
//	go test -run '^$' -bench VsLlamaBench ./runtime/llama/
//
// or bench/runtime.sh. Environment:
//
//	OLM_BENCH_MODEL    GGUF to use (default: the generated ~106M-param
//	                   testmodel.BenchLlama, cached under ~/.cache/olm/models)
//	OLM_BENCH_THREADS  threads (default: runtime.NumCPU())
//	OLM_BENCH_PP, OLM_BENCH_TG, OLM_BENCH_REPS  (default 512, 128, 5)
//	OLM_BENCH_ROUNDS   alternating rounds of both tools (default 3)
//	OLM_BENCH_LOCK=1   run the binding's loop on a locked OS thread (one
//	                   OpenMP team master), as a decode loop may do
//
// It prints wall-clock tokens/s and tokens per CPU-second; on a shared
// machine only the second is stable.

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchModel returns the compute-bound benchmark model, generating it once
// into the cache.
func benchModel(b *testing.B) string {
	if p := os.Getenv("OLM_BENCH_MODEL"); p != "" {
		return p
	}
	dir := filepath.Join(testenv.CacheDir(), "models")
	path := filepath.Join(dir, "olm-bench-llama.gguf")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := testmodel.Generate(tmp, testmodel.BenchLlama); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// rates are tokens per second for prompt processing (pp) and generation
// (tg), by wall clock and by CPU time of the process (user + system).
// CPU time is what to compare on a shared machine: other processes change
// how much wall time a run gets, not how much CPU time it needs.
type rates struct{ pp, tg, ppCPU, tgCPU float64 }

func (r *rates) keepBest(o rates) {
	r.pp, r.tg, r.ppCPU, r.tgCPU = max(r.pp, o.pp), max(r.tg, o.tg), max(r.ppCPU, o.ppCPU), max(r.tgCPU, o.tgCPU)
}

// llamaBench runs llama-bench for the prompt test and for the generation
// test, each once with one repetition and once with 1+reps: the difference
// of the two runs' CPU time is what reps repetitions cost, without model
// loading and warmup.
func llamaBench(b *testing.B, model string, threads, pp, tg, reps int) rates {
	bin := filepath.Join(testenv.LlamaDir(b), "bin", "llama-bench")
	run := func(p, n, r int) (ts float64, cpu time.Duration) {
		cmd := exec.Command(bin, "-m", model, "-p", strconv.Itoa(p), "-n", strconv.Itoa(n),
			"-t", strconv.Itoa(threads), "-r", strconv.Itoa(r), "-b", "2048", "-ub", "512", "-o", "json")
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("llama-bench: %v", err)
		}
		var res []struct {
			AvgTS float64 `json:"avg_ts"`
		}
		if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 {
			b.Fatalf("llama-bench output: %v\n%s", err, out)
		}
		return res[0].AvgTS, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	var r rates
	_, c1 := run(pp, 0, 1)
	ts, c2 := run(pp, 0, 1+reps)
	r.pp, r.ppCPU = ts, float64(pp*reps)/(c2-c1).Seconds()
	_, c1 = run(0, tg, 1)
	ts, c2 = run(0, tg, 1+reps)
	r.tg, r.tgCPU = ts, float64(tg*reps)/(c2-c1).Seconds()
	return r
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// olmBench runs the same workload as llama-bench through the binding: a
// fresh context per test, one warmup, then reps timed runs of a pp-token
// prompt (random tokens, BOS first, output for the last token only) and of
// tg single-token decodes from an empty cache.
func olmBench(b *testing.B, m *llama.Model, threads, pp, tg, reps int) rates {
	if os.Getenv("OLM_BENCH_LOCK") != "" {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	tok := func() llama.Token { return llama.Token(rng.IntN(m.NumVocab())) }

	runPP := func(c *llama.Context, batch *llama.Batch) {
		for done := 0; done < pp; {
			n := min(pp-done, c.NumBatch())
			batch.Clear()
			for i := 0; i < n; i++ {
				t := tok()
				if done == 0 && i == 0 && m.AddBOS() {
					t = m.BOS()
				}
				batch.Add(t, done+i, i == n-1)
			}
			if err := c.Decode(ctx, batch); err != nil {
				b.Fatal(err)
			}
			done += n
		}
		if _, err := c.Logits(-1); err != nil { // waits for the backend
			b.Fatal(err)
		}
	}
	runTG := func(c *llama.Context, batch *llama.Batch) {
		t := m.BOS()
		for i := 0; i < tg; i++ {
			batch.Clear()
			batch.Add(t, i, true)
			if err := c.Decode(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Logits(-1); err != nil {
				b.Fatal(err)
			}
			t = tok()
		}
	}
	measure := func(n int, run func(*llama.Context, *llama.Batch)) (wall, cpu float64) {
		c, err := llama.NewContext(m, llama.ContextParams{NumCtx: n, NumBatch: 2048, NumUBatch: 512, NumThreads: threads})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		batch, _ := llama.NewBatch(2048, 1)
		defer batch.Close()
		c.KVClear()
		run(c, batch) // warmup
		var total, totalCPU time.Duration
		for r := 0; r < reps; r++ {
			c.KVClear()
			start, startCPU := time.Now(), cpuTime()
			run(c, batch)
			total += time.Since(start)
			totalCPU += cpuTime() - startCPU
		}
		return float64(n*reps) / total.Seconds(), float64(n*reps) / totalCPU.Seconds()
	}
	var r rates
	r.pp, r.ppCPU = measure(pp, runPP)
	r.tg, r.tgCPU = measure(tg, runTG)
	return r
}

func compare(b *testing.B, name, model string) {
	threads := envInt("OLM_BENCH_THREADS", runtime.NumCPU())
	pp, tg, reps := envInt("OLM_BENCH_PP", 512), envInt("OLM_BENCH_TG", 128), envInt("OLM_BENCH_REPS", 5)
	rounds := envInt("OLM_BENCH_ROUNDS", 3)
	m, err := llama.LoadModel(context.Background(), model, llama.DefaultModelParams())
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ResetTimer()
	// alternate the two tools and keep each one's best, so that a noisy
	// neighbour hurts both alike
	var lb, olm rates
	for round := 0; round < rounds; round++ {
		lb.keepBest(llamaBench(b, model, threads, pp, tg, reps))
		olm.keepBest(olmBench(b, m, threads, pp, tg, reps))
	}
	b.StopTimer()
	fmt.Printf("\n%s: %s (%.0fM params, %s), threads %d, %d reps, best of %d rounds, llama.cpp node-llama-cpp-3.22.1\n",
		name, filepath.Base(model), float64(m.NumParams())/1e6, m.FileType(), threads, reps, rounds)
	fmt.Printf("  %-22s %14s %14s %8s\n", "test", "llama-bench", "olm", "ratio")
	row := func(label string, a, o float64, unit string) {
		fmt.Printf("  %-22s %10.1f %s %10.1f %s %7.3fx\n", label, a, unit, o, unit, o/a)
	}
	row("pp"+strconv.Itoa(pp)+" (wall)", lb.pp, olm.pp, "t/s")
	row("tg"+strconv.Itoa(tg)+" (wall)", lb.tg, olm.tg, "t/s")
	row("pp"+strconv.Itoa(pp)+" (per CPU-s)", lb.ppCPU, olm.ppCPU, "t/s")
	row("tg"+strconv.Itoa(tg)+" (per CPU-s)", lb.tgCPU, olm.tgCPU, "t/s")
	fmt.Printf("  generation overhead per token: %+.1f µs wall, %+.1f µs CPU\n", (1/olm.tg-1/lb.tg)*1e6, (1/olm.tgCPU-1/lb.tgCPU)*1e6)
	b.ReportMetric(olm.pp/lb.pp, "pp-ratio")
	b.ReportMetric(olm.tg/lb.tg, "tg-ratio")
	b.ReportMetric(olm.ppCPU/lb.ppCPU, "pp-cpu-ratio")
	b.ReportMetric(olm.tgCPU/lb.tgCPU, "tg-cpu-ratio")
}

// BenchmarkVsLlamaBench compares the binding with llama-bench on the
// compute-bound benchmark model (target: ratio ≥ 0.97).
func BenchmarkVsLlamaBench(b *testing.B) {
	testenv.LlamaDir(b)
	compare(b, "compute-bound model", benchModel(b))
}

// BenchmarkVsLlamaBenchTiny runs the same comparison on the tiny model,
// where the cost per token is mostly overhead.
func BenchmarkVsLlamaBenchTiny(b *testing.B) {
	testenv.LlamaDir(b)
	compare(b, "tiny model", testmodel.Tiny(b))
}

// BenchmarkDecodeToken measures one single-token Decode on the tiny model:
// the binding's fixed cost per generated token.
func BenchmarkDecodeToken(b *testing.B) {
	m := tiny(b)
	c, err := llama.NewContext(m, llama.ContextParams{NumCtx: 1000, NumThreads: envInt("OLM_BENCH_THREADS", 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	batch, _ := llama.NewBatch(1, 1)
	defer batch.Close()
	decodeTokens(b, c, batch)
}

// decodeTokens decodes one token per b.Loop iteration into c (a context of
// at least 1000 positions), clearing its KV cache every 1000 tokens.
func decodeTokens(b *testing.B, c *llama.Context, batch *llama.Batch) {
	ctx := context.Background()
	pos := 0
	for b.Loop() {
		if pos == 1000 {
			c.KVClear()
			pos = 0
		}
		batch.Clear()
		batch.Add(100, pos, true)
		if err := c.Decode(ctx, batch); err != nil {
			b.Fatal(err)
		}
		pos++
	}
}

// BenchmarkDecodeTokenBesideContext is BenchmarkDecodeToken (default 2
// threads here) in a process where a second context has decoded once, as
// in a runner that served one embedding request: with a decoder thread per
// context the second OpenMP team slowed every token ~4× on a 2-CPU VM.
func BenchmarkDecodeTokenBesideContext(b *testing.B) {
	m := tiny(b)
	threads := envInt("OLM_BENCH_THREADS", 2)
	c, err := llama.NewContext(m, llama.ContextParams{NumCtx: 1000, NumThreads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	other, err := llama.NewContext(m, llama.ContextParams{NumCtx: 256, NumThreads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer other.Close()
	batch, _ := llama.NewBatch(1, 1)
	defer batch.Close()
	ctx := context.Background()
	batch.Add(100, 0, true)
	if err := other.Decode(ctx, batch); err != nil {
		b.Fatal(err)
	}
	decodeTokens(b, c, batch)
}

// BenchmarkSample measures sampling one token (32000-token vocabulary) with
// greedy, greedy with Ollama's default penalties (temperature 0, the
// runner's usual deterministic request) and Ollama's default chain.
func BenchmarkSample(b *testing.B) {
	m := tiny(b)
	greedyPen := llama.DefaultSamplerParams()
	greedyPen.Temperature = 0
	for name, p := range map[string]llama.SamplerParams{"greedy": {}, "greedy-penalties": greedyPen, "ollama-defaults": llama.DefaultSamplerParams()} {
		b.Run(name, func(b *testing.B) {
			c, _ := llama.NewContext(m, llama.ContextParams{NumCtx: 256, NumThreads: 1})
			defer c.Close()
			batch, _ := llama.NewBatch(1, 1)
			defer batch.Close()
			batch.Add(m.BOS(), 0, true)
			if err := c.Decode(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			s, _ := llama.NewSampler(m, p)
			defer s.Close()
			for i := range 64 { // a history for the penalties, as after a prompt
				s.Accept(llama.Token(1000 + 37*i))
			}
			for b.Loop() {
				if _, err := s.Sample(c, -1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
