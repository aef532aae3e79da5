package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/internal/testolm"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchModels returns the models to benchmark: OLM_BENCH_MODEL, or the
// compute-bound generated model and the tiny one.
func benchModels(b *testing.B) map[string]string {
	if p := os.Getenv("OLM_BENCH_MODEL"); p != "" {
		return map[string]string{filepath.Base(p): p}
	}
	dir := filepath.Join(testenv.CacheDir(), "models")
	path := filepath.Join(dir, "olm-bench-llama.gguf")
	if _, err := os.Stat(path); err != nil {
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
	}
	return map[string]string{"bench-106M": path, "tiny": testmodel.Tiny(b)}
}

// TestMain removes the olm binary the benchmarks built.
func TestMain(m *testing.M) {
	code := m.Run()
	testolm.Cleanup()
	os.Exit(code)
}

// buildOlm builds olm once, or returns OLM_BENCH_OLM (a prebuilt olm, e.g.
// an older commit's, to compare before and after a change).
func buildOlm(b *testing.B) string {
	if bin := os.Getenv("OLM_BENCH_OLM"); bin != "" {
		return bin
	}
	return testolm.Build(b)
}

// startWait bounds how long a server may take to answer (llama-server
// loads its model first).
const startWait = 2 * time.Minute

// startOlm creates the model in a fresh OLM_HOME and serves it.
func startOlm(b *testing.B, gguf string, parallel int) string {
	bin := buildOlm(b)
	env := []string{"OLM_HOME=" + filepath.Join(b.TempDir(), "h"), "OLM_NUM_PARALLEL=" + strconv.Itoa(parallel), "OLM_KEEP_ALIVE=30m"}
	testolm.Create(b, bin, env, "m", "FROM "+gguf+"\n", "--link")
	return testolm.Serve(b, bin, env, startWait)
}

const prompt = "The quick brown fox jumps over the lazy dog. Once upon a time"

// olmGenerate runs one streaming /api/generate and returns the generated
// token count, the server's eval duration and the wall time.
func olmGenerate(ctx context.Context, url string, threads, n int) (int, time.Duration, time.Duration, error) {
	return olmGenerateStream(ctx, url, threads, n, true)
}

// olmGenerateStream is olmGenerate with or without streaming.
func olmGenerateStream(ctx context.Context, url string, threads, n int, streaming bool) (int, time.Duration, time.Duration, error) {
	body, _ := json.Marshal(map[string]any{
		"model": "m", "prompt": prompt, "raw": true, "stream": streaming,
		"options": map[string]any{"num_predict": n, "temperature": 0, "num_thread": threads, "num_ctx": 2048, "seed": 1},
	})
	t0 := time.Now()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/api/generate", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	for sc.Scan() {
		var r struct {
			Done         bool   `json:"done"`
			Error        string `json:"error"`
			EvalCount    int    `json:"eval_count"`
			EvalDuration int64  `json:"eval_duration"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return 0, 0, 0, err
		}
		if r.Error != "" {
			return 0, 0, 0, fmt.Errorf("olm: %s", r.Error)
		}
		if r.Done {
			return r.EvalCount, time.Duration(r.EvalDuration), time.Since(t0), nil
		}
	}
	return 0, 0, 0, fmt.Errorf("stream ended without done: %v", sc.Err())
}

// llamaServerGenerate runs one /completion on llama-server, streaming
// (server-sent events, one per token, as olm's /api/generate streams) or
// not.
func llamaServerGenerate(url string, n int, streaming bool) (int, time.Duration, time.Duration, error) {
	body, _ := json.Marshal(map[string]any{"prompt": prompt, "n_predict": n, "temperature": 0, "seed": 1, "cache_prompt": false, "stream": streaming})
	t0 := time.Now()
	resp, err := http.Post(url+"/completion", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	type final struct {
		Stop    bool `json:"stop"`
		Timings *struct {
			PredictedN  int     `json:"predicted_n"`
			PredictedMS float64 `json:"predicted_ms"`
		} `json:"timings"`
	}
	var r final
	if !streaming {
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, 0, 0, err
		}
	} else {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
		for sc.Scan() {
			line, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
			if !ok {
				continue
			}
			var ev final
			if err := json.Unmarshal(line, &ev); err != nil {
				return 0, 0, 0, err
			}
			if ev.Stop && ev.Timings != nil {
				r = ev
				break
			}
		}
	}
	if r.Timings == nil {
		return 0, 0, 0, fmt.Errorf("llama-server: no timings in the answer")
	}
	return r.Timings.PredictedN, time.Duration(r.Timings.PredictedMS * float64(time.Millisecond)), time.Since(t0), nil
}

type result struct {
	tokens     int
	eval, wall time.Duration
}

func (r result) evalRate() float64 { return float64(r.tokens) / r.eval.Seconds() }
func (r result) wallRate() float64 { return float64(r.tokens) / r.wall.Seconds() }

// interleave runs each fn once as a warm-up, then reps rounds of all of
// them in turn, and keeps each one's median run (by eval rate).
// Alternating keeps a machine whose load changes from favouring one side.
func interleave(b *testing.B, reps int, fns ...func() (int, time.Duration, time.Duration, error)) []result {
	all := make([][]result, len(fns))
	for _, fn := range fns {
		if _, _, _, err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < reps; i++ {
		for j, fn := range fns {
			n, ev, wall, err := fn()
			if err != nil {
				b.Fatal(err)
			}
			all[j] = append(all[j], result{n, ev, wall})
		}
	}
	out := make([]result, len(fns))
	for j, rs := range all {
		sort.Slice(rs, func(a, c int) bool { return rs[a].evalRate() < rs[c].evalRate() })
		out[j] = rs[len(rs)/2]
	}
	return out
}

func BenchmarkGenerateVsLlamaServer(b *testing.B) {
	threads := envInt("OLM_BENCH_THREADS", runtime.NumCPU())
	n := envInt("OLM_BENCH_TG", 128)
	reps := envInt("OLM_BENCH_REPS", 5)
	llamaServer := testenv.LlamaBin(b, "llama-server")
	for name, gguf := range benchModels(b) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				// One llama-server with its defaults (this build's CPU
				// backend uses OpenMP, so --poll has no effect). Both sides
				// are measured streaming (an event per token, the normal
				// use of /api/generate) and not streaming.
				addr := testolm.FreeAddr(b)
				host, port, _ := net.SplitHostPort(addr)
				testolm.Start(b, exec.Command(llamaServer, "-m", gguf, "-t", strconv.Itoa(threads), "-tb", strconv.Itoa(threads), "-c", "2048", "-np", "1", "-ngl", "0",
					"--host", host, "--port", port, "--no-webui"), "http://"+addr+"/health", startWait)
				lsURL := "http://" + addr
				url := startOlm(b, gguf, 1)
				rs := interleave(b, reps,
					func() (int, time.Duration, time.Duration, error) {
						return olmGenerateStream(context.Background(), url, threads, n, true)
					},
					func() (int, time.Duration, time.Duration, error) { return llamaServerGenerate(lsURL, n, true) },
					func() (int, time.Duration, time.Duration, error) {
						return olmGenerateStream(context.Background(), url, threads, n, false)
					},
					func() (int, time.Duration, time.Duration, error) { return llamaServerGenerate(lsURL, n, false) })
				b.ReportMetric(rs[0].evalRate(), "olm-tok/s")
				b.ReportMetric(rs[1].evalRate(), "llama-server-tok/s")
				b.ReportMetric(rs[0].evalRate()/rs[1].evalRate(), "ratio")
				b.ReportMetric(rs[2].evalRate()/rs[3].evalRate(), "ratio-nostream")
				fmt.Printf("%s (threads %d, %d tokens): streaming: /api/generate %.1f tok/s (wall %.1f), llama-server %.1f tok/s (wall %.1f): ratio %.3f (wall %.3f)\n",
					name, threads, n, rs[0].evalRate(), rs[0].wallRate(), rs[1].evalRate(), rs[1].wallRate(), rs[0].evalRate()/rs[1].evalRate(), rs[0].wallRate()/rs[1].wallRate())
				fmt.Printf("%s (threads %d, %d tokens): not streaming: /api/generate %.1f tok/s (wall %.1f), llama-server %.1f tok/s (wall %.1f): ratio %.3f (wall %.3f)\n",
					name, threads, n, rs[2].evalRate(), rs[2].wallRate(), rs[3].evalRate(), rs[3].wallRate(), rs[2].evalRate()/rs[3].evalRate(), rs[2].wallRate()/rs[3].wallRate())
			}
		})
	}
}

// aggregate runs clients concurrent streaming requests and returns the
// tokens generated per second of wall time.
func aggregate(b *testing.B, url string, clients, threads, n int) float64 {
	var wg sync.WaitGroup
	total := make([]int, clients)
	errs := make([]error, clients)
	t0 := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			total[c], _, _, errs[c] = olmGenerate(context.Background(), url, threads, n)
		}(c)
	}
	wg.Wait()
	wall := time.Since(t0)
	sum := 0
	for c := range total {
		if errs[c] != nil {
			b.Fatal(errs[c])
		}
		sum += total[c]
	}
	return float64(sum) / wall.Seconds()
}

func BenchmarkParallel(b *testing.B) {
	threads := envInt("OLM_BENCH_THREADS", runtime.NumCPU())
	n := envInt("OLM_BENCH_TG", 128)
	reps := envInt("OLM_BENCH_REPS", 3)
	const clients = 4
	for name, gguf := range benchModels(b) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				rate := map[int]float64{}
				urls := map[int]string{1: startOlm(b, gguf, 1), 4: startOlm(b, gguf, 4)}
				for _, par := range []int{1, 4} {
					aggregate(b, urls[par], clients, threads, n) // warm-up: load, first prompts
				}
				for r := 0; r < reps; r++ {
					for _, par := range []int{1, 4} {
						if v := aggregate(b, urls[par], clients, threads, n); v > rate[par] {
							rate[par] = v
						}
					}
				}
				b.ReportMetric(rate[4], "par4-tok/s")
				b.ReportMetric(rate[1], "par1-tok/s")
				b.ReportMetric(rate[4]/rate[1], "ratio")
				fmt.Printf("%s (threads %d, %d clients x %d tokens): OLM_NUM_PARALLEL=4 %.1f tok/s, =1 %.1f tok/s: ratio %.2f\n",
					name, threads, clients, n, rate[4], rate[1], rate[4]/rate[1])
			}
		})
	}
}
