package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/runner"
)

// fakeRunner answers like a runner: it streams Pieces and records requests.
type fakeRunner struct {
	mu         sync.Mutex
	pieces     []string
	doneReason string
	toolCalls  []runner.ToolCall
	thinking   string
	// block makes generation wait until the request's context ends.
	block bool
	// failAfter makes generation fail after the first piece.
	failAfter bool
	// noChatTemplate makes Info report a model without a chat template.
	noChatTemplate bool
	// fim is the vocabulary's fill-in-the-middle tokens Info reports.
	fim *runner.FIMTokens
	// nCtx, when set, is the context Info reports instead of 2048.
	nCtx int
	// cached is the number of prompt tokens the timings report as reused
	// from the slot's cache.
	cached int

	completions []runner.CompletionRequest
	chats       []runner.ChatRequest
	renders     []runner.ChatRequest
	embeds      []runner.EmbedRequest
	tokenizes   []runner.TokenizeRequest
	cancelled   bool
}

func (f *fakeRunner) Info(ctx context.Context) (*runner.Info, error) {
	n := 2048
	if f.nCtx > 0 {
		n = f.nCtx
	}
	return &runner.Info{Architecture: "llama", Context: n, Parallel: 1, ChatTemplate: !f.noChatTemplate, FIM: f.fim}, nil
}

// Tokenize gives each word of the text one token: its length.
func (f *fakeRunner) Tokenize(ctx context.Context, req runner.TokenizeRequest) ([]int32, error) {
	f.mu.Lock()
	f.tokenizes = append(f.tokenizes, req)
	f.mu.Unlock()
	var out []int32
	for _, w := range strings.Fields(req.Content) {
		out = append(out, int32(len(w)))
	}
	return out, nil
}

func (f *fakeRunner) Embed(ctx context.Context, req runner.EmbedRequest) (*runner.EmbedResponse, error) {
	f.mu.Lock()
	f.embeds = append(f.embeds, req)
	f.mu.Unlock()
	out := &runner.EmbedResponse{PromptEvalCount: 0}
	for i, in := range req.Input {
		if !req.Truncate && len(in) > 100 {
			return nil, fmt.Errorf("%w: input %d has %d tokens", runner.ErrContextLength, i, len(in))
		}
		out.Embeddings = append(out.Embeddings, []float32{0.6, 0.8, 0, float32(i)})
		out.PromptEvalCount += len(strings.Fields(in))
	}
	return out, nil
}

func (f *fakeRunner) Render(ctx context.Context, req runner.ChatRequest) (*runner.RenderResponse, error) {
	f.mu.Lock()
	f.renders = append(f.renders, req)
	f.mu.Unlock()
	var b strings.Builder
	for _, m := range req.Messages {
		fmt.Fprintf(&b, "<%s>%s", m.Role, m.Content)
	}
	b.WriteString("<assistant>")
	return &runner.RenderResponse{Prompt: b.String()}, nil
}

func (f *fakeRunner) stream(ctx context.Context, fn func(piece string) error) error {
	if f.block {
		<-ctx.Done()
		f.mu.Lock()
		f.cancelled = true
		f.mu.Unlock()
		return ctx.Err()
	}
	for i, p := range f.pieces {
		if err := fn(p); err != nil {
			return err
		}
		if f.failAfter && i == 0 {
			return fmt.Errorf("%w: the runner crashed", runner.ErrRunnerExited)
		}
	}
	return nil
}

func (f *fakeRunner) timings() runner.Timings {
	return runner.Timings{PromptEvalCount: 5, PromptEvalDuration: 5 * time.Millisecond, EvalCount: len(f.pieces), EvalDuration: 20 * time.Millisecond, PromptCached: f.cached}
}

func (f *fakeRunner) reason() string {
	if f.doneReason != "" {
		return f.doneReason
	}
	return runner.DoneStop
}

func (f *fakeRunner) Completion(ctx context.Context, req runner.CompletionRequest, fn func(runner.CompletionEvent) error) (*runner.CompletionEvent, error) {
	f.mu.Lock()
	f.completions = append(f.completions, req)
	f.mu.Unlock()
	if err := f.stream(ctx, func(p string) error { return fn(runner.CompletionEvent{Content: p}) }); err != nil {
		return nil, err
	}
	final := runner.CompletionEvent{Done: true, DoneReason: f.reason(), Timings: f.timings(), Context: []int32{1, 2, 3}}
	if err := fn(final); err != nil {
		return nil, err
	}
	return &final, nil
}

func (f *fakeRunner) Chat(ctx context.Context, req runner.ChatRequest, fn func(runner.ChatEvent) error) (*runner.ChatEvent, error) {
	f.mu.Lock()
	f.chats = append(f.chats, req)
	f.mu.Unlock()
	if f.thinking != "" {
		if err := fn(runner.ChatEvent{Thinking: f.thinking}); err != nil {
			return nil, err
		}
	}
	if err := f.stream(ctx, func(p string) error { return fn(runner.ChatEvent{Content: p}) }); err != nil {
		return nil, err
	}
	final := runner.ChatEvent{Done: true, DoneReason: f.reason(), Timings: f.timings(),
		Message: &runner.Message{Role: "assistant", Content: strings.Join(f.pieces, ""), Thinking: f.thinking, ToolCalls: f.toolCalls}}
	if len(f.toolCalls) > 0 {
		final.Message.Content = ""
	}
	if err := fn(final); err != nil {
		return nil, err
	}
	return &final, nil
}

// fakeEngine hands out one fakeRunner and records what it was asked.
type fakeEngine struct {
	mu       sync.Mutex
	r        *fakeRunner
	busy     bool
	targets  []Target
	unloaded []string
	loaded   map[string]*Model
	released int
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{r: &fakeRunner{pieces: []string{"Hello", " world"}}, loaded: map[string]*Model{}}
}

func (e *fakeEngine) Acquire(ctx context.Context, t Target) (Runner, func(), error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.busy {
		return nil, nil, fmt.Errorf("%w: model %s has 4 requests waiting", ErrBusy, t.Model.Name)
	}
	e.targets = append(e.targets, t)
	e.loaded[t.Model.Name] = t.Model
	return e.r, func() { e.mu.Lock(); e.released++; e.mu.Unlock() }, nil
}

func (e *fakeEngine) Unload(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unloaded = append(e.unloaded, name)
	delete(e.loaded, name)
	return nil
}

func (e *fakeEngine) Running(ctx context.Context) ([]Running, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Running
	for _, m := range e.loaded {
		out = append(out, Running{Model: m, Size: 1000, SizeVRAM: 0, ExpiresAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ContextLength: 2048})
	}
	return out, nil
}

func (e *fakeEngine) lastTarget() Target {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.targets[len(e.targets)-1]
}

// fakeModels is an in-memory store.
type fakeModels struct {
	mu     sync.Mutex
	models map[string]*Model
	blobs  map[string][]byte
}

var testTime = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func newFakeModels() *fakeModels {
	f := &fakeModels{models: map[string]*Model{}, blobs: map[string][]byte{}}
	f.models["tiny:latest"] = &Model{
		Name: "tiny:latest", Digest: "sha256:" + strings.Repeat("ab", 32), Size: 1234, ModifiedAt: testTime,
		Details:      api.ModelDetails{Format: "gguf", Family: "llama", ParameterSize: "0.5M", QuantizationLevel: "F16"},
		Capabilities: []string{"completion"}, WeightsPath: "/store/blobs/sha256/ab",
	}
	f.models["mario:latest"] = &Model{
		Name: "mario:latest", Digest: "sha256:" + strings.Repeat("cd", 32), Size: 1300, ModifiedAt: testTime.Add(time.Hour),
		Details:      api.ModelDetails{Format: "gguf", Family: "llama", ParameterSize: "0.5M", QuantizationLevel: "F16"},
		Capabilities: []string{"completion"}, WeightsPath: "/store/blobs/sha256/ab",
		Template: "{{ if .System }}[SYS]{{ .System }}[/SYS]{{ end }}[INST]{{ .Prompt }}[/INST]{{ .Response }}</s>",
		System:   "You are Mario.",
		Options:  api.Options{Temperature: api.Ptr[float32](0.5), NumCtx: api.Ptr(1024), Stop: []string{"</s>"}},
		Messages: []api.Message{{Role: "user", Content: "who are you?"}, {Role: "assistant", Content: "It's-a me!"}},
		Licenses: []string{"MIT"},
	}
	return f
}

func canonical(name string) string {
	if !strings.Contains(name, ":") {
		return name + ":latest"
	}
	return name
}

func (f *fakeModels) Resolve(ctx context.Context, name string) (*Model, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.ContainsAny(name, " !") {
		return nil, fmt.Errorf("%w: %q", ErrBadRequest, name)
	}
	m, ok := f.models[canonical(name)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return m, nil
}

func (f *fakeModels) List(ctx context.Context) ([]*Model, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Model
	for _, m := range f.models {
		out = append(out, m)
	}
	return out, nil
}

func (f *fakeModels) ModelInfo(ctx context.Context, m *Model, verbose bool) (map[string]any, error) {
	info := map[string]any{"general.architecture": "llama", "llama.context_length": 2048, "tokenizer.ggml.tokens": []string{}}
	if verbose {
		info["tokenizer.ggml.tokens"] = []string{"<unk>", "<s>", "</s>"}
	}
	return info, nil
}

func (f *fakeModels) Copy(ctx context.Context, src, dst string) error {
	m, err := f.Resolve(ctx, src)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *m
	c.Name = canonical(dst)
	f.models[c.Name] = &c
	return nil
}

func (f *fakeModels) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.models[canonical(name)]; !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	delete(f.models, canonical(name))
	return nil
}

func (f *fakeModels) HasBlob(ctx context.Context, digest string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.blobs[digest]
	return ok, nil
}

func (f *fakeModels) PutBlob(ctx context.Context, digest string, size int64, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != digest {
		return fmt.Errorf("%w: digest mismatch: content is %s, not %s", ErrBadRequest, got, digest)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs[digest] = b
	return nil
}

type fakeBuilder struct{ reqs []*api.CreateRequest }

func (b *fakeBuilder) Create(ctx context.Context, req *api.CreateRequest, fn func(api.ProgressResponse) error) error {
	b.reqs = append(b.reqs, req)
	if req.From == "missing" {
		return fmt.Errorf("%w: model %q", ErrNotFound, req.From)
	}
	for _, s := range []string{"parsing GGUF", "using existing layer sha256:" + strings.Repeat("ab", 32), "writing manifest"} {
		if err := fn(api.ProgressResponse{Status: s}); err != nil {
			return err
		}
	}
	return nil
}

type fakeTransfers struct{}

func (fakeTransfers) run(name string, fn func(TransferEvent) error) error {
	if name == "nope" {
		return fmt.Errorf("%w: %s in registry", ErrNotFound, name)
	}
	d := "sha256:" + strings.Repeat("ef", 32)
	for _, ev := range []TransferEvent{
		{Phase: PhaseManifest},
		{Phase: PhaseLayer, Digest: d, Total: 100},
		{Phase: PhaseLayer, Digest: d, Total: 100, Completed: 50},
		{Phase: PhaseLayer, Digest: d, Total: 100, Completed: 100},
		{Phase: PhaseVerify},
		{Phase: PhaseWriteManifest},
	} {
		if err := fn(ev); err != nil {
			return err
		}
	}
	if name == "moved" { // the tag moved off an older manifest
		return fn(TransferEvent{Phase: PhasePrune})
	}
	return nil
}

func (t fakeTransfers) Pull(ctx context.Context, name string, insecure bool, fn func(TransferEvent) error) error {
	return t.run(name, fn)
}

func (t fakeTransfers) Push(ctx context.Context, name string, insecure bool, fn func(TransferEvent) error) error {
	return t.run(name, fn)
}

// ndjsonLines decodes a newline-delimited JSON body.
func ndjsonLines(b []byte) []map[string]any {
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			panic(err)
		}
		out = append(out, m)
	}
	return out
}
