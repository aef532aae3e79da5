package engine_test

// End-to-end tests: the runner runs as a real child process. The test
// binary re-executes itself as the runner (OLM_TEST_RUNNER=1 makes TestMain
// call engine.Main), so the tests need no separately built olm binary and
// always test the code under test.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
	"github.com/olmhq/olm/runtime/runner/engine"
	"github.com/olmhq/olm/runtime/sched"
)

const runnerEnv = "OLM_TEST_RUNNER"

func TestMain(m *testing.M) {
	if os.Getenv(runnerEnv) == "1" {
		ctx, stop := signalContext()
		err := engine.Main(ctx, os.Args[1:], os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	removeTestFiles()
	os.Exit(code)
}

// needLlama stops the test when this build cannot run inference (a failure
// in CI).
func needLlama(t testing.TB) {
	t.Helper()
	if !llama.Available() {
		testenv.Missing(t, "a cgo build with llama.cpp", "run `make llama` and build with CGO_ENABLED=1")
	}
}

// startOpts returns StartOptions that run this test binary as the runner.
func startOpts(t testing.TB, load runner.LoadOptions) runner.StartOptions {
	return runner.StartOptions{
		Load:         load,
		Executable:   os.Args[0],
		Args:         []string{},
		Env:          []string{runnerEnv + "=1"},
		Stderr:       &testLog{t: t},
		StartTimeout: time.Minute,
	}
}

// testLog forwards the runner's log to the test log.
type testLog struct {
	t  testing.TB
	mu sync.Mutex
}

func (w *testLog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log("runner: " + l)
	}
	return len(b), nil
}

func start(t testing.TB, load runner.LoadOptions) *runner.Process {
	t.Helper()
	needLlama(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := runner.Start(ctx, startOpts(t, load))
	if err != nil {
		t.Fatalf("start runner: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// smallModel generates a random llama larger than the tiny one (width 64,
// 2 blocks) once per test binary, with a ChatML chat template.
var (
	smallOnce sync.Once
	smallPath string
	smallErr  error
)

func smallModel(t testing.TB) string {
	t.Helper()
	smallOnce.Do(func() {
		dir, err := os.MkdirTemp("", "olm-engine-test-")
		if err != nil {
			smallErr = err
			return
		}
		smallPath = filepath.Join(dir, "small.gguf")
		smallErr = testmodel.Generate(smallPath, testmodel.Spec{
			Name: "olm small llama", Vocab: 32000, Embedding: 64, Blocks: 2, FeedForward: 128,
			Heads: 4, Seed: 7, ChatTemplate: chatML,
		})
	})
	if smallErr != nil {
		t.Fatalf("generate model: %v", smallErr)
	}
	return smallPath
}

const chatML = `{%- for message in messages -%}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endfor -%}{%- if add_generation_prompt -%}<|im_start|>assistant
{% endif -%}`

func greedy(n int) *runner.Sampling {
	s := runner.Greedy()
	s.NumPredict = n
	return &s
}

func complete(t testing.TB, c *runner.Client, req runner.CompletionRequest) (string, *runner.CompletionEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sb strings.Builder
	last, err := c.Completion(ctx, req, func(ev runner.CompletionEvent) error {
		sb.WriteString(ev.Content)
		return nil
	})
	if err != nil {
		t.Fatalf("completion: %v", err)
	}
	return sb.String(), last
}

func models(t *testing.T) map[string]string {
	return map[string]string{"tiny": testmodel.Tiny(t), "generated": smallModel(t)}
}

func TestGenerate(t *testing.T) {
	for name, path := range models(t) {
		t.Run(name, func(t *testing.T) {
			p := start(t, runner.LoadOptions{Model: path, NumCtx: 512})
			info := p.Info()
			if info.Architecture != "llama" || info.Vocab != 32000 || info.Context != 512 || !info.Has(runner.CapCompletion) {
				t.Fatalf("info = %+v", info)
			}
			text, last := complete(t, p.Client(), runner.CompletionRequest{Prompt: "Once upon a time", Options: greedy(16)})
			if text == "" {
				t.Fatal("no text generated")
			}
			if last.DoneReason != runner.DoneLength || last.EvalCount != 16 || last.PromptEvalCount == 0 {
				t.Fatalf("final event = %+v", last)
			}
			if last.EvalDuration <= 0 || last.PromptEvalDuration <= 0 {
				t.Fatalf("durations not measured: %+v", last.Timings)
			}
			if len(last.Context) != last.PromptEvalCount+16 {
				t.Fatalf("context has %d tokens, want prompt %d + 16", len(last.Context), last.PromptEvalCount)
			}
			// The text is the detokenized generated part of the context.
			gen, err := p.Client().Detokenize(context.Background(), runner.DetokenizeRequest{Tokens: last.Context[last.PromptEvalCount:]})
			if err != nil {
				t.Fatal(err)
			}
			if gen != text && " "+text != gen && strings.TrimLeft(gen, " ") != strings.TrimLeft(text, " ") {
				t.Fatalf("streamed %q, context detokenizes to %q", text, gen)
			}

			// Greedy is deterministic, also when the prompt comes from the
			// slot's cache the second time.
			text2, last2 := complete(t, p.Client(), runner.CompletionRequest{Prompt: "Once upon a time", Options: greedy(16)})
			if text2 != text {
				t.Fatalf("greedy runs differ:\n%q\n%q", text, text2)
			}
			if last2.PromptCached == 0 {
				t.Fatalf("second identical prompt reused no cache: %+v", last2.Timings)
			}
			// Pre-tokenized prompts give the same result.
			text3, _ := complete(t, p.Client(), runner.CompletionRequest{Tokens: last.Context[:last.PromptEvalCount], Options: greedy(16)})
			if text3 != text {
				t.Fatalf("tokens prompt gave %q, text prompt %q", text3, text)
			}
		})
	}
}

func TestSeedReproducible(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: smallModel(t), NumCtx: 256, Verbose: true})
	run := func(seed int) string {
		s := runner.DefaultSampling()
		s.Seed, s.NumPredict, s.Temperature, s.TopK, s.TopP = seed, 24, 1.5, 0, 1
		text, _ := complete(t, p.Client(), runner.CompletionRequest{Prompt: "The weather", Options: &s})
		return text
	}
	a, b := run(42), run(42)
	if a != b {
		t.Fatalf("same seed, different text:\n%q\n%q", a, b)
	}
	seen := map[string]bool{a: true}
	for _, seed := range []int{1, 2, 3} {
		seen[run(seed)] = true
	}
	if len(seen) < 2 {
		t.Fatalf("four seeds at temperature 1.5 all gave %q: the seed is not used", a)
	}
}

// TestContinuousBatching checks that 4 requests decoded together in 4 slots
// give exactly what each gives alone.
func TestContinuousBatching(t *testing.T) {
	for name, path := range models(t) {
		t.Run(name, func(t *testing.T) {
			p := start(t, runner.LoadOptions{Model: path, NumCtx: 256, Parallel: 4})
			prompts := []string{"The quick brown fox", "Hello", "In a galaxy far far away there was a", "1 2 3 4 5 6"}
			lengths := []int{24, 40, 17, 32}
			want := make([]string, len(prompts))
			for i, pr := range prompts {
				want[i], _ = complete(t, p.Client(), runner.CompletionRequest{Prompt: pr, Options: greedy(lengths[i])})
			}
			// Run twice: the second round reuses the slots' caches.
			for round := 0; round < 2; round++ {
				got := make([]string, len(prompts))
				var wg sync.WaitGroup
				for i, pr := range prompts {
					wg.Add(1)
					go func() {
						defer wg.Done()
						got[i], _ = complete(t, p.Client(), runner.CompletionRequest{Prompt: pr, Options: greedy(lengths[i])})
					}()
				}
				wg.Wait()
				for i := range prompts {
					if got[i] != want[i] {
						t.Errorf("round %d prompt %d: concurrent %q, alone %q", round, i, got[i], want[i])
					}
				}
			}
		})
	}
}

func TestCancelFreesSlot(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: smallModel(t), NumCtx: 4096, Parallel: 1})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := p.Client().Completion(ctx, runner.CompletionRequest{Prompt: "Tell me a long story", Options: greedy(-1)},
		func(ev runner.CompletionEvent) error {
			n++
			if n == 5 {
				cancel()
			}
			return nil
		})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// With the only slot freed, a new request completes at once; had the
	// cancelled one kept running it would hold the slot until its 4096
	// tokens were done.
	start := time.Now()
	text, last := complete(t, p.Client(), runner.CompletionRequest{Prompt: "Hi", Options: greedy(4)})
	if text == "" || last.EvalCount != 4 {
		t.Fatalf("request after cancel: %q %+v", text, last)
	}
	t.Logf("next request served %v after cancel", time.Since(start))

	// A callback error cancels too.
	stop := errors.New("enough")
	_, err = p.Client().Completion(context.Background(), runner.CompletionRequest{Prompt: "Again", Options: greedy(-1)},
		func(runner.CompletionEvent) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the callback's error", err)
	}
	complete(t, p.Client(), runner.CompletionRequest{Prompt: "Hi", Options: greedy(4)})
}

func TestStopStrings(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 256})
	full, _ := complete(t, p.Client(), runner.CompletionRequest{Prompt: "Hello world", Options: greedy(32)})
	if len(full) < 20 {
		t.Fatalf("generated text too short to test stops: %q", full)
	}
	// A stop string that starts in the middle of the output and spans
	// token pieces.
	stop := full[len(full)/2 : len(full)/2+5]
	o := greedy(32)
	o.Stop = []string{"never-generated-xyz", stop}
	text, last := complete(t, p.Client(), runner.CompletionRequest{Prompt: "Hello world", Options: o})
	want := full[:strings.Index(full, stop)]
	if text != want {
		t.Fatalf("with stop %q: got %q, want %q", stop, text, want)
	}
	if last.DoneReason != runner.DoneStop {
		t.Fatalf("done_reason = %q, want stop", last.DoneReason)
	}
}

func TestTokenize(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 256})
	c := p.Client()
	ctx := context.Background()
	toks, err := c.Tokenize(ctx, runner.TokenizeRequest{Content: "Hello world", AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	// llama's SPM vocabulary: BOS, "▁Hello", "▁world".
	if fmt.Sprint(toks) != "[1 15043 3186]" {
		t.Fatalf("tokens = %v", toks)
	}
	s, err := c.Detokenize(ctx, runner.DetokenizeRequest{Tokens: toks[1:]})
	if err != nil || strings.TrimSpace(s) != "Hello world" {
		t.Fatalf("detokenize = %q, %v", s, err)
	}
	if _, err := c.Detokenize(ctx, runner.DetokenizeRequest{Tokens: []int32{99999999}}); !errors.Is(err, runner.ErrBadRequest) {
		t.Fatalf("bad token: err = %v, want ErrBadRequest", err)
	}
	if _, err := c.Completion(ctx, runner.CompletionRequest{Tokens: []int32{-5}}, nil); !errors.Is(err, runner.ErrBadRequest) {
		t.Fatalf("bad prompt token: err = %v, want ErrBadRequest", err)
	}
}

func TestCorruptModel(t *testing.T) {
	needLlama(t)
	dir := t.TempDir()
	src, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"truncated.gguf": src[:len(src)/2],
		"garbage.gguf":   bytes.Repeat([]byte("not a gguf "), 100),
		"empty.gguf":     nil,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			o := startOpts(t, runner.LoadOptions{Model: path})
			p, err := runner.Start(context.Background(), o)
			if err == nil {
				p.Close()
				t.Fatal("runner started on a corrupt model")
			}
			if !errors.Is(err, runner.ErrRunnerExited) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v; want ErrRunnerExited naming the file", err)
			}
			t.Logf("error: %v", err)
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := runner.Start(context.Background(), startOpts(t, runner.LoadOptions{Model: filepath.Join(dir, "nope.gguf")}))
		if !errors.Is(err, runner.ErrRunnerExited) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestKilledRunner(t *testing.T) {
	needLlama(t)
	model := smallModel(t)
	s := sched.New(sched.Options{Start: sched.ProcessStarter(startOpts(t, runner.LoadOptions{}))})
	defer s.Close()
	spec := sched.Spec{Name: "small", Load: runner.LoadOptions{Model: model, NumCtx: 4096}}
	ctx := context.Background()
	lease, err := s.Get(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	proc := lease.Runner().(*runner.Process)
	n := 0
	_, err = lease.Client().Completion(ctx, runner.CompletionRequest{Prompt: "Tell me a long story", Options: greedy(-1)},
		func(runner.CompletionEvent) error {
			n++
			if n == 3 {
				syscall.Kill(proc.Pid(), syscall.SIGKILL)
			}
			return nil
		})
	lease.Release()
	if !errors.Is(err, runner.ErrRunnerExited) || !strings.Contains(err.Error(), "model runner exited unexpectedly") {
		t.Fatalf("in-flight request: err = %v, want ErrRunnerExited", err)
	}
	t.Logf("in-flight error: %v", err)
	if _, err := lease.Client().Info(ctx); !errors.Is(err, runner.ErrRunnerExited) {
		t.Fatalf("later request on the dead runner: err = %v", err)
	}

	// The next request gets a fresh runner.
	lease2, err := s.Get(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer lease2.Release()
	if lease2.Runner().(*runner.Process).Pid() == proc.Pid() {
		t.Fatal("scheduler handed out the killed runner")
	}
	text, _ := complete(t, lease2.Client(), runner.CompletionRequest{Prompt: "Hi", Options: greedy(4)})
	if text == "" {
		t.Fatal("restarted runner generated nothing")
	}
	if st := s.List(); len(st) != 1 || st[0].Name != "small" || st[0].Size == 0 {
		t.Fatalf("List = %+v", st)
	}
}

func TestEmbed(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: smallModel(t), NumCtx: 64})
	c := p.Client()
	ctx := context.Background()
	in := []string{"Why is the sky blue?", "Why is the grass green?", "Why is the sky blue?"}
	r, err := c.Embed(ctx, runner.EmbedRequest{Input: in})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Embeddings) != 3 || r.PromptEvalCount == 0 {
		t.Fatalf("got %d vectors, %d tokens", len(r.Embeddings), r.PromptEvalCount)
	}
	for i, v := range r.Embeddings {
		if len(v) != p.Info().Embedding {
			t.Fatalf("vector %d has %d dims, want %d", i, len(v), p.Info().Embedding)
		}
		var sum float64
		for _, x := range v {
			sum += float64(x) * float64(x)
		}
		if math.Abs(math.Sqrt(sum)-1) > 1e-3 {
			t.Fatalf("vector %d has norm %v, want 1", i, math.Sqrt(sum))
		}
	}
	// Raw vectors are the same directions, unscaled.
	raw, err := c.Embed(ctx, runner.EmbedRequest{Input: in[:1], Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	var norm float64
	for _, x := range raw.Embeddings[0] {
		norm += float64(x) * float64(x)
	}
	if norm = math.Sqrt(norm); math.Abs(norm-1) < 1e-3 {
		t.Fatalf("raw vector has norm %v: it was normalized", norm)
	}
	for j, x := range raw.Embeddings[0] {
		if math.Abs(float64(x)/norm-float64(r.Embeddings[0][j])) > 1e-5 {
			t.Fatalf("raw vector / its norm differs from the normalized one at %d: %v vs %v", j, float64(x)/norm, r.Embeddings[0][j])
		}
	}
	r0 := r.Embeddings[0]
	if fmt.Sprint(r.Embeddings[0]) != fmt.Sprint(r.Embeddings[2]) {
		t.Fatal("same input, different vectors")
	}
	if fmt.Sprint(r.Embeddings[0]) == fmt.Sprint(r.Embeddings[1]) {
		t.Fatal("different inputs, same vector")
	}
	// More inputs than one batch holds: each still gets its own vector.
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("sentence number %d about %s", i, strings.Repeat("things ", i))
	}
	rm, err := c.Embed(ctx, runner.EmbedRequest{Input: many})
	if err != nil || len(rm.Embeddings) != len(many) {
		t.Fatalf("embed %d inputs: %v", len(many), err)
	}
	for _, i := range []int{0, 9, 19} {
		one, err := c.Embed(ctx, runner.EmbedRequest{Input: many[i : i+1]})
		if err != nil {
			t.Fatal(err)
		}
		var dot float64
		for k, x := range one.Embeddings[0] {
			dot += float64(x) * float64(rm.Embeddings[i][k])
		}
		if dot < 0.9999 {
			t.Fatalf("input %d: alone vs among %d inputs: cosine %v", i, len(many), dot)
		}
	}

	nCtx := p.Info().Context // llama.cpp rounds num_ctx up to a multiple of 256
	long := strings.Repeat("word ", nCtx+10)
	if _, err := c.Embed(ctx, runner.EmbedRequest{Input: []string{long}}); !errors.Is(err, runner.ErrContextLength) {
		t.Fatalf("too long without truncate: err = %v, want ErrContextLength", err)
	}
	r, err = c.Embed(ctx, runner.EmbedRequest{Input: []string{long}, Truncate: true})
	if err != nil || len(r.Embeddings) != 1 || r.PromptEvalCount != nCtx {
		t.Fatalf("truncated embed: %v, %+v", err, r)
	}
	// Generation still works beside embeddings.
	complete(t, c, runner.CompletionRequest{Prompt: "Hi", Options: greedy(4)})

	// An embedding-only runner gives the same vectors and refuses to generate.
	pe := start(t, runner.LoadOptions{Model: smallModel(t), NumCtx: 64, EmbeddingOnly: true})
	if fmt.Sprint(pe.Info().Capabilities) != "[embedding]" {
		t.Fatalf("embedding-only capabilities = %v", pe.Info().Capabilities)
	}
	re, err := pe.Client().Embed(ctx, runner.EmbedRequest{Input: in[:1]})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := c.Embed(ctx, runner.EmbedRequest{Input: in[:1]})
	if fmt.Sprint(re.Embeddings[0]) != fmt.Sprint(want.Embeddings[0]) {
		t.Fatal("embedding-only runner gives different vectors")
	}
	// Inputs embedded together (one batch, several sequences) get the
	// vectors they get alone.
	var dot float64
	for i, x := range want.Embeddings[0] {
		dot += float64(x) * float64(r0[i])
	}
	if dot < 0.9999 {
		t.Fatalf("input embedded alone vs in a batch of 3: cosine %v", dot)
	}
	if _, err := pe.Client().Completion(ctx, runner.CompletionRequest{Prompt: "Hi"}, nil); !errors.Is(err, runner.ErrUnsupported) {
		t.Fatalf("completion on an embedding-only runner: %v, want ErrUnsupported", err)
	}
}

func TestPromptTruncation(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 64})
	nCtx := p.Info().Context // llama.cpp rounds num_ctx up to a multiple of 256
	long := strings.Repeat("one two three four ", nCtx/4+10)
	_, last := complete(t, p.Client(), runner.CompletionRequest{Prompt: long, Options: greedy(8)})
	if !last.Truncated || last.PromptEvalCount != nCtx-nCtx/4 {
		t.Fatalf("long prompt: %d tokens evaluated, truncated %v; want truncated to 3/4 of %d tokens", last.PromptEvalCount, last.Truncated, nCtx)
	}
	if last.Context[0] != 1 {
		t.Fatalf("BOS (num_keep) not kept: %v", last.Context[:4])
	}
	// Unlimited generation stops when the slot is full.
	_, last = complete(t, p.Client(), runner.CompletionRequest{Prompt: "Hi", Options: greedy(-1)})
	// The context holds the full slot plus the last sampled token.
	if last.DoneReason != runner.DoneLength || len(last.Context) != nCtx+1 {
		t.Fatalf("unlimited generation: reason %q, %d tokens of context", last.DoneReason, len(last.Context))
	}
	// With a limit, the context shifts and generation goes on.
	_, last = complete(t, p.Client(), runner.CompletionRequest{Prompt: "Hi", Options: greedy(nCtx + 100)})
	if last.EvalCount != nCtx+100 {
		t.Fatalf("num_predict %d with context shift: eval_count %d", nCtx+100, last.EvalCount)
	}
}

func TestChat(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: smallModel(t), NumCtx: 512})
	c := p.Client()
	ctx := context.Background()
	req := runner.ChatRequest{
		Messages: []runner.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hello there"}},
		Options:  greedy(12),
	}
	r, err := c.Render(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
	if r.Prompt != want || r.PromptTokens == 0 {
		t.Fatalf("rendered %q (%d tokens), want %q", r.Prompt, r.PromptTokens, want)
	}
	var streamed strings.Builder
	last, err := c.Chat(ctx, req, func(ev runner.ChatEvent) error { streamed.WriteString(ev.Content); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if last.Message == nil || last.Message.Role != "assistant" || last.Message.Content != streamed.String() || last.EvalCount != 12 {
		t.Fatalf("final = %+v (streamed %q)", last, streamed.String())
	}
	// The chat answer equals a completion of the rendered prompt.
	text, _ := complete(t, c, runner.CompletionRequest{Prompt: r.Prompt, Options: greedy(12)})
	if text != last.Message.Content {
		t.Fatalf("chat %q != completion of its prompt %q", last.Message.Content, text)
	}

	// format "json": the grammar forces JSON.
	req.Format = json.RawMessage(`"json"`)
	req.Options = greedy(24)
	last, err = c.Chat(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(last.Message.Content); !strings.HasPrefix(got, "{") {
		t.Fatalf("format json gave %q", got)
	}
	// A JSON schema with a closed shape: short output must be valid.
	req.Format = json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"],"additionalProperties":false}`)
	req.Options = greedy(64)
	last, err = c.Chat(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ OK *bool }
	if err := json.Unmarshal([]byte(last.Message.Content), &v); err != nil || v.OK == nil {
		t.Fatalf("schema output %q does not validate: %v", last.Message.Content, err)
	}

	// No template: the tiny model has none.
	pt := start(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 128})
	if _, err := pt.Client().Chat(ctx, runner.ChatRequest{Messages: req.Messages}, nil); !errors.Is(err, runner.ErrUnsupported) {
		t.Fatalf("chat without template: err = %v, want ErrUnsupported", err)
	}
	// ... but a template in the request works, and so does a rendered prompt.
	if _, err := pt.Client().Chat(ctx, runner.ChatRequest{Messages: req.Messages, Template: chatML, Options: greedy(4)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pt.Client().Chat(ctx, runner.ChatRequest{Prompt: want, Options: greedy(4)}, nil); err != nil {
		t.Fatal(err)
	}
}

// templateModel generates a small random llama carrying one of llama.cpp's
// real chat templates.
func templateModel(t *testing.T, name string) string {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join(testenv.LlamaSource(t), "models", "templates", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.gguf")
	if err := testmodel.Generate(path, testmodel.Spec{Vocab: 32000, Embedding: 64, Blocks: 1, FeedForward: 128, Heads: 4, Seed: 3, ChatTemplate: string(tmpl)}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestChatTemplates(t *testing.T) {
	ctx := context.Background()
	weather := json.RawMessage(`[{"type":"function","function":{"name":"get_weather","description":"Get the weather",` +
		`"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`)
	msgs := []runner.Message{{Role: "user", Content: "Weather in Paris?"}}

	t.Run("tools", func(t *testing.T) {
		p := start(t, runner.LoadOptions{Model: templateModel(t, "Qwen-Qwen2.5-7B-Instruct.jinja"), NumCtx: 1024})
		if !p.Info().Has(runner.CapTools) || p.Info().Has(runner.CapThinking) {
			t.Fatalf("capabilities = %v, want tools and no thinking", p.Info().Capabilities)
		}
		r, err := p.Client().Render(ctx, runner.ChatRequest{Messages: msgs, Tools: weather})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Prompt, `"name": "get_weather"`) || !strings.Contains(r.Prompt, "Weather in Paris?") || r.Grammar == "" {
			t.Fatalf("rendered prompt lacks the tool or the grammar is missing:\n%s", r.Prompt)
		}
		// An assistant turn with a tool call and the tool's answer render too.
		hist := append(append([]runner.Message(nil), msgs...),
			runner.Message{Role: "assistant", ToolCalls: []runner.ToolCall{{Function: runner.ToolCallFunction{Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)}}}},
			runner.Message{Role: "tool", ToolName: "get_weather", Content: "sunny, 21°C"})
		r, err = p.Client().Render(ctx, runner.ChatRequest{Messages: hist, Tools: weather})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Prompt, `"city": "Paris"`) && !strings.Contains(r.Prompt, `"city":"Paris"`) || !strings.Contains(r.Prompt, "sunny, 21°C") {
			t.Fatalf("tool call history not rendered:\n%s", r.Prompt)
		}
		if _, err := p.Client().Render(ctx, runner.ChatRequest{Messages: msgs, Tools: weather, ToolChoice: "sometimes"}); !errors.Is(err, runner.ErrBadRequest) {
			t.Fatalf("bad tool_choice: %v", err)
		}
		if _, err := p.Client().Render(ctx, runner.ChatRequest{Messages: msgs, Tools: json.RawMessage(`{"not":"a list"}`)}); !errors.Is(err, runner.ErrBadRequest) {
			t.Fatalf("bad tools: %v", err)
		}
		ev, err := p.Client().Chat(ctx, runner.ChatRequest{Messages: msgs, Tools: weather, Options: greedy(8)}, nil)
		if err != nil || ev.Message == nil {
			t.Fatalf("chat with tools: %v", err)
		}
		// A prompt rendered by the server (say, from a Go template) with the
		// messages and tools: generated from as is, parsed with the model's
		// own format, tool-call grammar included.
		own := "<|im_start|>user\nWeather in Paris? Use a tool.<|im_end|>\n<|im_start|>assistant\n"
		r2, err := p.Client().Render(ctx, runner.ChatRequest{Prompt: own, Messages: msgs, Tools: weather})
		if err != nil {
			t.Fatal(err)
		}
		if r2.Prompt != own || r2.Format != r.Format || r2.Grammar == "" {
			t.Fatalf("pre-rendered prompt: %+v", r2)
		}
		ev2, err := p.Client().Chat(ctx, runner.ChatRequest{Prompt: own, Messages: msgs, Tools: weather, Options: greedy(8)}, nil)
		if err != nil || ev2.Message == nil {
			t.Fatalf("chat with a pre-rendered prompt: %v", err)
		}
		// format wins over a forced tool call's grammar.
		ev3, err := p.Client().Chat(ctx, runner.ChatRequest{Messages: msgs, Tools: weather, ToolChoice: "required",
			Format:  json.RawMessage(`{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}`),
			Options: greedy(64)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var obj struct{ A *int }
		if err := json.Unmarshal([]byte(ev3.Message.Content), &obj); err != nil || obj.A == nil {
			t.Fatalf("format with tools: %q: %v", ev3.Message.Content, err)
		}
		text, _ := complete(t, p.Client(), runner.CompletionRequest{Prompt: own, Options: greedy(8)})
		if ev2.Message.Content != text && !strings.Contains(text, "<tool_call>") {
			t.Fatalf("chat on a pre-rendered prompt gave %q, completion of it %q", ev2.Message.Content, text)
		}
	})
	t.Run("think level", func(t *testing.T) {
		p := start(t, runner.LoadOptions{Model: templateModel(t, "openai-gpt-oss-120b.jinja"), NumCtx: 1024})
		for _, level := range []string{"low", "high"} {
			r, err := p.Client().Render(ctx, runner.ChatRequest{Messages: msgs, ThinkLevel: level})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.Prompt, "Reasoning: "+level) {
				t.Fatalf("think level %s not in the prompt:\n%s", level, r.Prompt)
			}
		}
		if _, err := p.Client().Render(ctx, runner.ChatRequest{Messages: msgs, ThinkLevel: "extreme"}); !errors.Is(err, runner.ErrBadRequest) {
			t.Fatalf("bad think level: %v", err)
		}
	})
	t.Run("thinking", func(t *testing.T) {
		p := start(t, runner.LoadOptions{Model: templateModel(t, "Qwen-Qwen3-0.6B.jinja"), NumCtx: 512})
		if !p.Info().Has(runner.CapThinking) {
			t.Fatalf("capabilities = %v, want thinking", p.Info().Capabilities)
		}
		off := false
		r, err := p.Client().Render(ctx, runner.ChatRequest{Messages: msgs, Think: &off})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(r.Prompt, "<think>\n\n</think>\n\n") {
			t.Fatalf("think=false did not close the thinking block:\n%q", r.Prompt)
		}
		on := true
		r, err = p.Client().Render(ctx, runner.ChatRequest{Messages: msgs, Think: &on})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.Prompt, "</think>") {
			t.Fatalf("think=true closed the thinking block:\n%q", r.Prompt)
		}
		var content, thinking strings.Builder
		ev, err := p.Client().Chat(ctx, runner.ChatRequest{Messages: msgs, Think: &on, Options: greedy(16)}, func(ev runner.ChatEvent) error {
			content.WriteString(ev.Content)
			thinking.WriteString(ev.Thinking)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Whatever the random model says, the streamed pieces add up to the
		// parsed message.
		if ev.Message.Content != content.String() || ev.Message.Thinking != thinking.String() {
			t.Fatalf("streamed content %q thinking %q; final message %+v", content.String(), thinking.String(), ev.Message)
		}
	})
}

// TestMoreRequestsThanSlots checks that requests beyond the slots wait in
// the engine and are all served, each with its own result, and that a
// waiting request can be cancelled.
func TestMoreRequestsThanSlots(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 256, Parallel: 2})
	const n = 6
	want := make([]string, n)
	for i := range want {
		want[i], _ = complete(t, p.Client(), runner.CompletionRequest{Prompt: fmt.Sprintf("Item %d:", i), Options: greedy(10 + i)})
	}
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = complete(t, p.Client(), runner.CompletionRequest{Prompt: fmt.Sprintf("Item %d:", i), Options: greedy(10 + i)})
		}()
	}
	// One more that gives up while it waits.
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := p.Client().Completion(ctx, runner.CompletionRequest{Prompt: "late", Options: greedy(-1)}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled waiting request: %v", err)
	}
	wg.Wait()
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("request %d: got %q, want %q", i, got[i], want[i])
		}
	}
	complete(t, p.Client(), runner.CompletionRequest{Prompt: "Hi", Options: greedy(4)})
}

func TestBadRequests(t *testing.T) {
	p := start(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 256})
	c := p.Client()
	ctx := context.Background()
	bad := func(name string, req runner.CompletionRequest, want error) {
		t.Helper()
		if _, err := c.Completion(ctx, req, nil); !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", name, err, want)
		}
	}
	temp := greedy(4)
	temp.Temperature = float32(math.NaN())
	bad("NaN temperature", runner.CompletionRequest{Prompt: "x", Options: temp}, runner.ErrBadRequest)
	neg := greedy(4)
	neg.RepeatPenalty = -1
	bad("negative repeat_penalty", runner.CompletionRequest{Prompt: "x", Options: neg}, runner.ErrBadRequest)
	miro := greedy(4)
	miro.Mirostat = 7
	bad("mirostat 7", runner.CompletionRequest{Prompt: "x", Options: miro}, runner.ErrBadRequest)
	bad("bad grammar", runner.CompletionRequest{Prompt: "x", Grammar: "root ::= (", Options: greedy(4)}, runner.ErrBadRequest)
	bad("bad schema", runner.CompletionRequest{Prompt: "x", JSONSchema: json.RawMessage(`{"type":"nonsense"}`), Options: greedy(4)}, runner.ErrBadRequest)
	bad("bad format word", runner.CompletionRequest{Prompt: "x", JSONSchema: json.RawMessage(`"yaml"`), Options: greedy(4)}, runner.ErrBadRequest)
	bad("grammar and schema", runner.CompletionRequest{Prompt: "x", Grammar: `root ::= "a"`, JSONSchema: json.RawMessage(`"json"`)}, runner.ErrBadRequest)
	bad("images without a projector", runner.CompletionRequest{Prompt: "x", Images: [][]byte{{1}}}, runner.ErrBadRequest)
	if _, err := c.Embed(ctx, runner.EmbedRequest{}); !errors.Is(err, runner.ErrBadRequest) {
		t.Errorf("embed nothing: %v", err)
	}

	// A grammar is obeyed.
	text, _ := complete(t, c, runner.CompletionRequest{Prompt: "x", Grammar: `root ::= "yes" | "no"`, Options: greedy(8)})
	if text != "yes" && text != "no" {
		t.Errorf("grammar yes|no gave %q", text)
	}
	// The runner still serves after all that.
	complete(t, c, runner.CompletionRequest{Prompt: "Hi", Options: greedy(4)})
}

func TestQuantizedKVCache(t *testing.T) {
	// Quantized cache blocks are 32 wide: the heads must be too.
	path := filepath.Join(t.TempDir(), "h32.gguf")
	if err := testmodel.Generate(path, testmodel.Spec{Vocab: 32000, Embedding: 64, Blocks: 1, FeedForward: 128, Heads: 2, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	p := start(t, runner.LoadOptions{Model: path, NumCtx: 256, FlashAttention: "on", KVCacheType: "q8_0", Parallel: 2})
	text, last := complete(t, p.Client(), runner.CompletionRequest{Prompt: "Once upon a time", Options: greedy(8)})
	if text == "" || last.EvalCount != 8 {
		t.Fatalf("q8_0 KV cache with flash attention: %q %+v", text, last)
	}
	_, err := runner.Start(context.Background(), startOpts(t, runner.LoadOptions{Model: smallModel(t), KVCacheType: "q5_9"}))
	if !errors.Is(err, runner.ErrRunnerExited) || !strings.Contains(err.Error(), "kv-cache-type") {
		t.Fatalf("bad KV cache type: %v", err)
	}
}

// TestOlmRunnerCommand runs the real `olm runner` command: it builds olm
// and lets runner.Start exec it the way the server does.
func TestOlmRunnerCommand(t *testing.T) {
	needLlama(t)
	if testing.Short() {
		t.Skip("builds olm; skipped with -short")
	}
	goTool := filepath.Join(goruntime.GOROOT(), "bin", "go")
	bin := filepath.Join(t.TempDir(), "olm")
	build := osexec.Command(goTool, "build", "-o", bin, "./cmd/olm")
	build.Dir = testenv.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/olm: %v\n%s", err, out)
	}
	o := startOpts(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 256, Parallel: 2})
	o.Executable, o.Args, o.Env = bin, nil, nil // `olm runner --model ...`
	p, err := runner.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	text, last := complete(t, p.Client(), runner.CompletionRequest{Prompt: "Hello world", Options: greedy(8)})
	if text == "" || last.EvalCount != 8 {
		t.Fatalf("olm runner generated %q (%+v)", text, last)
	}
	// Same model, same greedy options: the same text as the re-executed test binary.
	q := start(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 256})
	if want, _ := complete(t, q.Client(), runner.CompletionRequest{Prompt: "Hello world", Options: greedy(8)}); want != text {
		t.Fatalf("olm runner: %q, engine in the test binary: %q", text, want)
	}
}

// TestChunkedPromptsInterleave runs long prompts, processed in chunks of a
// small batch, while other slots generate: every result must equal the
// request's result alone.
func TestChunkedPromptsInterleave(t *testing.T) {
	load := runner.LoadOptions{Model: smallModel(t), NumCtx: 512, NumBatch: 32, Parallel: 3}
	long := func(i int) string {
		return fmt.Sprintf("Story %d: ", i) + strings.Repeat(fmt.Sprintf("the %d quick brown foxes jump ", i), 20)
	}
	reqs := []runner.CompletionRequest{
		{Prompt: "Hi", Options: greedy(60)},
		{Prompt: long(1), Options: greedy(12)},
		{Prompt: long(2), Options: greedy(20)},
	}
	alone := start(t, load)
	want := make([]string, len(reqs))
	for i, r := range reqs {
		want[i], _ = complete(t, alone.Client(), r)
	}
	// A fresh runner, so nothing comes from a prompt cache.
	p := start(t, load)
	got := make([]string, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Stagger the long prompts so they arrive while slot 0 generates.
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			got[i], _ = complete(t, p.Client(), r)
		}()
	}
	wg.Wait()
	for i := range reqs {
		if got[i] != want[i] {
			t.Errorf("request %d: interleaved %q, alone %q", i, got[i], want[i])
		}
	}
}

// num_gpu auto goes through the runner's flags to the engine; on a build
// without GPU offload it is the CPU path: no GPU layers, the same output
// as num_gpu 0.
func TestNumGPUAuto(t *testing.T) {
	auto := start(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 256, NumGPU: runner.NumGPUAuto})
	info := auto.Info()
	if llama.SupportsGPUOffload() {
		if info.GPULayers == 0 || info.GPULayers == runner.NumGPUAuto {
			t.Errorf("GPU build: auto reported %d GPU layers, want the fitted count", info.GPULayers)
		}
		return
	}
	if info.GPULayers != 0 || info.SizeVRAM != 0 {
		t.Errorf("CPU build: auto reported %d GPU layers, %d bytes of VRAM; want 0", info.GPULayers, info.SizeVRAM)
	}
	cpu := start(t, runner.LoadOptions{Model: testmodel.Tiny(t), NumCtx: 256, NumGPU: 0})
	got, _ := complete(t, auto.Client(), runner.CompletionRequest{Prompt: "Hello world", Options: greedy(16)})
	want, _ := complete(t, cpu.Client(), runner.CompletionRequest{Prompt: "Hello world", Options: greedy(16)})
	if got != want || got == "" {
		t.Errorf("auto on CPU generated %q, num_gpu 0 %q", got, want)
	}
}
