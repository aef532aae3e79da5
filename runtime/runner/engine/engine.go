package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
)

// Engine is a loaded model with its slots and decode loop. Create it with
// Load, serve it with Handler, stop it with Close. Its methods are safe for
// concurrent use.
type Engine struct {
	opts runner.LoadOptions
	// gpuLayers is opts.NumGPU, or the layer count llama.cpp's fit chose
	// for runner.NumGPUAuto (0 on CPU-only builds, -1 all layers)
	gpuLayers int
	model     *llama.Model
	lctx      *llama.Context       // generation context; nil for an embedding-only load
	tmpl      *llama.ChatTemplates // nil when the model has no usable template
	tmplMu    sync.Mutex           // ChatTemplates is single-goroutine
	proj      *llama.Projector     // nil without a multimodal projector
	loras     []*llama.LoRA        // applied to every context at scale 1
	info      runner.Info
	log       io.Writer

	nCtxSeq int // tokens per slot
	nBatch  int

	submit chan *task
	stop   chan struct{}
	loopWG sync.WaitGroup

	embMu  sync.Mutex
	embCtx *llama.Context

	closeOnce sync.Once
}

// Load loads the model of o and starts the decode loop. log receives the
// engine's messages (nil: discarded).
func Load(ctx context.Context, o runner.LoadOptions, log io.Writer) (*Engine, error) {
	if log == nil {
		log = io.Discard
	}
	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	if o.NumBatch <= 0 {
		o.NumBatch = runner.DefaultNumBatch
	}
	mp := modelParams(o)
	// a split GGUF's parts are loaded by path: blob names are digests,
	// which llama.cpp cannot discover by its -0000N-of-0000M naming
	model, err := llama.LoadModelSplits(ctx, append([]string{o.Model}, o.Parts...), mp)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", o.Model, err)
	}
	if _, ok := model.Meta(model.Arch() + ".pooling_type"); ok && !o.EmbeddingOnly {
		// Like Ollama: a model that declares a pooling type is an
		// embedding model and is not used for generation.
		fmt.Fprintf(log, "olm runner: %s declares a pooling type: loading it for embeddings only\n", o.Model)
		o.EmbeddingOnly = true
	}
	e := &Engine{opts: o, model: model, log: log, submit: make(chan *task), stop: make(chan struct{}), gpuLayers: o.NumGPU}
	if o.NumGPU == runner.NumGPUAuto {
		fit := model.Fit()
		e.gpuLayers = fit.GPULayers
		switch {
		case fit.Message != "":
			fmt.Fprintf(log, "olm runner: num_gpu auto: %s (%d GPU layers)\n", fit.Message, fit.GPULayers)
		case fit.Status == llama.FitOK:
			fmt.Fprintf(log, "olm runner: num_gpu auto: %d GPU layers fit in free GPU memory\n", fit.GPULayers)
		}
	}
	fail := func(err error) (*Engine, error) {
		e.freeExtras()
		if e.lctx != nil {
			e.lctx.Close()
		}
		if e.embCtx != nil {
			e.embCtx.Close()
		}
		model.Close()
		return nil, err
	}
	for _, path := range o.Adapters {
		a, err := model.LoadLoRA(path)
		if err != nil {
			return fail(fmt.Errorf("load LoRA adapter %s: %w", path, err))
		}
		e.loras = append(e.loras, a)
	}

	numCtx := o.NumCtx
	if numCtx <= 0 {
		numCtx = runner.DefaultNumCtx
	}
	if train := model.NumCtxTrain(); train > 0 && numCtx > train {
		numCtx = train
	}
	e.nCtxSeq = numCtx
	e.nBatch = o.NumBatch

	if !o.EmbeddingOnly {
		lctx, err := llama.NewContext(model, e.contextParams(llama.ContextParams{
			NumCtx:     numCtx * o.Parallel,
			NumBatch:   o.NumBatch,
			NumSeqMax:  o.Parallel,
			NumThreads: o.NumThread,
		}))
		if err != nil {
			return fail(fmt.Errorf("create context (num_ctx %d × %d slots): %w", numCtx, o.Parallel, err))
		}
		e.lctx = lctx
		if err := e.applyLoRA(lctx); err != nil {
			return fail(err)
		}
		e.nCtxSeq = lctx.NumCtxSeq()
		e.nBatch = lctx.NumBatch()
		if e.nBatch < o.Parallel {
			return fail(fmt.Errorf("%w: batch size %d is smaller than the %d slots", runner.ErrBadRequest, e.nBatch, o.Parallel))
		}
		if o.Projector != "" {
			p, err := model.LoadProjector(o.Projector, llama.ProjectorParams{
				UseGPU: e.gpuLayers != 0, NumThreads: o.NumThread, Marker: runner.ImageMarker})
			if err != nil {
				return fail(fmt.Errorf("load projector %s: %w", o.Projector, err))
			}
			e.proj = p
		}
	} else {
		if _, err := e.embedContext(); err != nil {
			return fail(err)
		}
	}
	if model.ChatTemplate("") != "" {
		if t, err := llama.NewChatTemplates(model, ""); err == nil {
			e.tmpl = t
		} else {
			fmt.Fprintf(log, "olm runner: warning: the model's chat template does not compile, chat needs a template from the request: %v\n", err)
		}
	}
	e.info = e.buildInfo()
	if e.lctx != nil {
		e.loopWG.Add(1)
		go e.loop()
	}
	fmt.Fprintf(log, "olm runner: loaded %s (%s, %d params): slots %d × %d tokens, batch %d\n",
		o.Model, model.Arch(), model.NumParams(), o.Parallel, e.nCtxSeq, e.nBatch)
	if e.proj != nil {
		fmt.Fprintf(log, "olm runner: projector %s: images enabled\n", o.Projector)
	}
	for _, a := range o.Adapters {
		fmt.Fprintf(log, "olm runner: LoRA adapter %s applied\n", a)
	}
	return e, nil
}

// applyLoRA applies the load's LoRA adapters (scale 1) to c.
func (e *Engine) applyLoRA(c *llama.Context) error {
	if len(e.loras) == 0 {
		return nil
	}
	if err := c.SetLoRA(e.loras, nil); err != nil {
		return fmt.Errorf("apply LoRA adapters: %w", err)
	}
	return nil
}

// extraSize is the size in bytes of the projector and adapter files.
func (e *Engine) extraSize() uint64 {
	var n uint64
	for _, p := range append([]string{e.opts.Projector}, e.opts.Adapters...) {
		if fi, err := os.Stat(p); p != "" && err == nil {
			n += uint64(fi.Size())
		}
	}
	return n
}

// freeExtras frees the projector and the adapters (after the contexts
// that use them).
func (e *Engine) freeExtras() {
	if e.proj != nil {
		e.proj.Close()
	}
	for _, a := range e.loras {
		a.Close()
	}
}

// contextParams adds the load options shared by every context to p.
func (e *Engine) contextParams(p llama.ContextParams) llama.ContextParams {
	switch e.opts.FlashAttention {
	case "on":
		p.FlashAttn = llama.FlashAttnOn
	case "off":
		p.FlashAttn = llama.FlashAttnOff
	}
	p.CacheTypeK, p.CacheTypeV = e.opts.KVCacheType, e.opts.KVCacheType
	return p
}

// modelParams returns how to load the model of o (Parallel and NumBatch
// already defaulted).
func modelParams(o runner.LoadOptions) llama.ModelParams {
	mp := llama.DefaultModelParams()
	if o.NumGPU == runner.NumGPUAuto {
		// fit the layers to free GPU memory, counting the context made
		// below (before the cap at the training context, so at worst
		// larger); CPU-only builds load every layer on the CPU
		mp.FitGPU = true
		fitCtx := o.NumCtx
		if fitCtx <= 0 {
			fitCtx = runner.DefaultNumCtx
		}
		mp.FitContext = (&Engine{opts: o}).contextParams(llama.ContextParams{
			NumCtx: fitCtx * o.Parallel, NumBatch: o.NumBatch, NumSeqMax: o.Parallel, NumThreads: o.NumThread})
	} else {
		mp.NumGPULayers = o.NumGPU
	}
	mp.UseMMap = !o.NoMmap
	mp.UseMLock = o.Mlock
	return mp
}

// buildInfo gathers the model facts for /info.
func (e *Engine) buildInfo() runner.Info {
	m := e.model
	meta := m.Metadata()
	_, hasPooling := meta[m.Arch()+".pooling_type"]
	var caps []string
	if !e.opts.EmbeddingOnly {
		caps = append(caps, runner.CapCompletion)
	}
	if hasPooling || e.opts.EmbeddingOnly {
		caps = append(caps, runner.CapEmbedding)
	}
	if e.proj != nil {
		caps = append(caps, runner.CapVision)
	}
	if !e.opts.EmbeddingOnly && fimTokens(m) != nil {
		caps = append(caps, runner.CapInsert)
	}
	if e.tmpl != nil {
		c := e.tmpl.Caps()
		if c["tools"] || c["supports_tools"] || c["supports_tool_calls"] {
			caps = append(caps, runner.CapTools)
		}
		if c["thinking"] || c["supports_thinking"] || c["reasoning"] {
			caps = append(caps, runner.CapThinking)
		}
	}
	name := meta["general.name"]
	// Estimate the bytes offloaded to the GPU from the share of layers
	// (the output layer counts as one more); 0 on CPU builds.
	var vram uint64
	if e.gpuLayers != 0 && llama.SupportsGPUOffload() {
		layers := m.NumLayer() + 1
		off := e.gpuLayers
		if off < 0 || off > layers {
			off = layers
		}
		vram = m.Size() * uint64(off) / uint64(layers)
	}
	return runner.Info{
		ModelPath:     m.Path(),
		Name:          name,
		Architecture:  m.Arch(),
		Description:   m.Description(),
		ContextTrain:  m.NumCtxTrain(),
		Embedding:     m.NumEmbd(),
		Layers:        m.NumLayer(),
		Vocab:         m.NumVocab(),
		Params:        m.NumParams(),
		Size:          m.Size() + e.extraSize(),
		ChatTemplate:  m.ChatTemplate("") != "",
		Capabilities:  caps,
		Context:       e.nCtxSeq,
		Batch:         e.nBatch,
		Parallel:      e.opts.Parallel,
		EmbeddingOnly: e.opts.EmbeddingOnly,
		GPULayers:     e.gpuLayers,
		SizeVRAM:      vram,
		Metadata:      meta,
		FIM:           fimTokens(m),
	}
}

// fimTokens returns m's fill-in-the-middle tokens, or nil when it lacks one
// of the three.
func fimTokens(m *llama.Model) *runner.FIMTokens {
	pre, suf, mid := m.FIMPrefix(), m.FIMSuffix(), m.FIMMiddle()
	if pre == llama.TokenNull || suf == llama.TokenNull || mid == llama.TokenNull {
		return nil
	}
	f := &runner.FIMTokens{Prefix: int32(pre), Suffix: int32(suf), Middle: int32(mid), BOS: -1}
	if m.AddBOS() && m.BOS() != llama.TokenNull {
		f.BOS = int32(m.BOS())
	}
	return f
}

// Info returns the model's metadata and the engine's configuration.
func (e *Engine) Info() runner.Info { return e.info }

// Close stops the decode loop (requests in flight end with an error) and
// frees the model. It is idempotent.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		close(e.stop)
		e.loopWG.Wait()
		if e.tmpl != nil {
			e.tmpl.Close()
		}
		e.embMu.Lock()
		if e.embCtx != nil {
			e.embCtx.Close()
		}
		e.embMu.Unlock()
		if e.lctx != nil {
			e.lctx.Close()
		}
		e.freeExtras()
		e.model.Close()
	})
	return nil
}

// genEvent is what the decode loop tells a request's handler.
type genEvent struct {
	// piece is the next piece of text; on the final event of a task that
	// does not stream, the whole text.
	piece     string
	done      bool
	reason    string
	timings   runner.Timings
	context   []llama.Token
	truncated bool
	err       error
}

// task is one generation request inside the engine.
type task struct {
	ctx        context.Context
	prompt     []llama.Token
	sp         llama.SamplerParams
	numPredict int
	numKeep    int
	stops      []string
	special    map[llama.Token]bool // tokens rendered as text (preserved tokens)
	images     []imageSpan          // images in prompt (placeholder positions)
	chunks     *llama.Chunks        // the images' chunks; nil without images
	out        *outbox[genEvent]
	// noStream: the text is gathered in text and sent with the final
	// event only (CompletionRequest.NoStream), instead of an event per piece.
	noStream bool
	text     []byte
}

// emit sends a piece of released text to t's reader, or keeps it for the
// final event when t does not stream.
func (t *task) emit(piece string) {
	if piece == "" {
		return
	}
	if t.noStream {
		t.text = append(t.text, piece...)
		return
	}
	t.out.push(genEvent{piece: piece})
}

// free releases what t holds in C memory (its image chunks). It is
// idempotent; the decode loop calls it when t leaves it.
func (t *task) free() {
	if t.chunks != nil {
		t.chunks.Close()
	}
}

// errClosed is sent to requests when the engine shuts down.
var errClosed = errors.New("runner is shutting down")

// generate queues t and returns once the decode loop accepted it.
func (e *Engine) generate(t *task) error {
	if e.lctx == nil {
		return fmt.Errorf("%w: this runner was loaded for embeddings only", runner.ErrUnsupported)
	}
	if len(t.prompt) == 0 {
		return fmt.Errorf("%w: empty prompt", runner.ErrBadRequest)
	}
	for _, tok := range t.prompt {
		if isImage(tok) && t.chunks != nil {
			continue
		}
		if tok < 0 || int(tok) >= e.model.NumVocab() {
			return fmt.Errorf("%w: token %d is outside the vocabulary (0..%d)", runner.ErrBadRequest, tok, e.model.NumVocab()-1)
		}
	}
	select {
	case e.submit <- t:
		return nil
	case <-e.stop:
		return errClosed
	case <-t.ctx.Done():
		return t.ctx.Err()
	}
}

// tokenizePrompt tokenizes a prompt with special tokens parsed, adding BOS
// when the vocabulary wants one and the text does not start with it.
func (e *Engine) tokenizePrompt(text string) ([]llama.Token, error) {
	toks, err := e.model.Tokenize(text, true, true)
	if err != nil {
		return nil, fmt.Errorf("%w: tokenize: %v", runner.ErrBadRequest, err)
	}
	bos := e.model.BOS()
	if len(toks) >= 2 && bos != llama.TokenNull && toks[0] == bos && toks[1] == bos {
		toks = toks[1:]
	}
	return toks, nil
}

// samplerParams converts runner options to llama's.
func (e *Engine) samplerParams(s runner.Sampling) llama.SamplerParams {
	return llama.SamplerParams{
		Temperature:      s.Temperature,
		TopK:             s.TopK,
		TopP:             s.TopP,
		MinP:             s.MinP,
		TypicalP:         s.TypicalP,
		RepeatLastN:      s.RepeatLastN,
		RepeatPenalty:    s.RepeatPenalty,
		PresencePenalty:  s.PresencePenalty,
		FrequencyPenalty: s.FrequencyPenalty,
		Seed:             int64(s.Seed),
		Mirostat:         llama.Mirostat(s.Mirostat),
		MirostatTau:      s.MirostatTau,
		MirostatEta:      s.MirostatEta,
		NumCtx:           e.nCtxSeq,
	}
}
