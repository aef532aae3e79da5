package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
)

// slot states.
const (
	slotIdle = iota
	slotPrompt
	slotGen
)

// slot is one sequence of the shared context.
type slot struct {
	id    int
	cache []llama.Token // tokens whose KV entries sequence id holds, in order

	state   int
	t       *task
	smp     *llama.Sampler
	prompt  []llama.Token
	trunc   bool
	cached  int         // prompt tokens reused from the cache
	next    llama.Token // sampled token to decode next (slotGen)
	outIdx  int         // batch index of this slot's logits, -1 for none
	gen     []llama.Token
	stop    stopper
	tStart  time.Time
	tFirst  time.Time
	lastUse time.Time
}

// loop is the single decode loop; it owns the generation context, the
// slots and the batch.
func (e *Engine) loop() {
	defer e.loopWG.Done()
	slots := make([]*slot, e.opts.Parallel)
	for i := range slots {
		slots[i] = &slot{id: i, outIdx: -1}
	}
	batch, err := llama.NewBatch(e.nBatch, 1)
	if err != nil {
		fmt.Fprintf(e.log, "olm runner: batch: %v\n", err)
		return
	}
	defer batch.Close()
	var pending []*task
	// decodeCtx stops a long decode when the engine closes.
	decodeCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-e.stop; cancel() }()

	defer func() { // fail whatever is left
		for _, s := range slots {
			if s.t != nil {
				e.finish(s, "", errClosed)
			}
		}
		for _, t := range pending {
			t.free()
			t.out.push(genEvent{done: true, err: errClosed})
			t.out.close()
		}
	}()

	for {
		active := 0
		for _, s := range slots {
			if s.t != nil {
				active++
			}
		}
		// Wait for work when there is none; otherwise take what is queued.
		if active == 0 && len(pending) == 0 {
			select {
			case t := <-e.submit:
				pending = append(pending, t)
			case <-e.stop:
				return
			}
		}
	drain:
		for {
			select {
			case t := <-e.submit:
				pending = append(pending, t)
			case <-e.stop:
				return
			default:
				break drain
			}
		}

		// Drop cancelled requests, waiting or running.
		kept := pending[:0]
		for _, t := range pending {
			if t.ctx.Err() != nil {
				t.free()
				t.out.close()
				continue
			}
			kept = append(kept, t)
		}
		pending = kept
		for _, s := range slots {
			if s.t != nil && s.t.ctx.Err() != nil {
				e.release(s)
			}
		}

		// Admit waiting requests into free slots.
		for len(pending) > 0 {
			s := bestSlot(slots, pending[0].prompt)
			if s == nil {
				break
			}
			t := pending[0]
			pending = pending[1:]
			if err := e.start(s, t); err != nil {
				t.free()
				t.out.push(genEvent{done: true, err: err})
				t.out.close()
			}
		}

		// Images are decoded on their own, before the shared batch: the
		// prompt tokens before an image were decoded in an earlier step.
		for _, s := range slots {
			for s.t != nil && s.state == slotPrompt && len(s.cache) < len(s.prompt) && isImage(s.prompt[len(s.cache)]) {
				e.evalImage(s)
			}
		}

		// Build the batch: generating slots first, then prompt chunks.
		batch.Clear()
		for _, s := range slots {
			s.outIdx = -1
			if s.state != slotGen {
				continue
			}
			if len(s.cache) >= e.nCtxSeq && !e.shift(s) {
				e.finish(s, runner.DoneLength, nil)
				continue
			}
			s.outIdx = batch.Len()
			batch.Add(s.next, len(s.cache), true, s.id) //nolint:errcheck // capacity: one token per slot ≤ nBatch
			s.cache = append(s.cache, s.next)
		}
		for _, s := range slots {
			if s.state != slotPrompt {
				continue
			}
			for len(s.cache) < len(s.prompt) && batch.Len() < batch.Cap() {
				pos := len(s.cache)
				if isImage(s.prompt[pos]) {
					break // decoded on its own in the next step
				}
				last := pos == len(s.prompt)-1
				if last {
					s.outIdx = batch.Len()
				}
				batch.Add(s.prompt[pos], pos, last, s.id) //nolint:errcheck // checked Cap above
				s.cache = append(s.cache, s.prompt[pos])
			}
		}
		if batch.Len() == 0 {
			continue
		}
		if err := e.lctx.Decode(decodeCtx, batch); err != nil {
			if decodeCtx.Err() != nil {
				return
			}
			fmt.Fprintf(e.log, "olm runner: decode: %v\n", err)
			// The KV state of the slots in this batch is unknown: drop it.
			for _, s := range slots {
				if s.t != nil && (s.state == slotGen || s.state == slotPrompt) {
					e.lctx.KVSeqRemove(s.id, -1, -1)
					s.cache = s.cache[:0]
					e.finish(s, "", fmt.Errorf("decode: %w", err))
				}
			}
			continue
		}
		now := time.Now()
		for _, s := range slots {
			if s.outIdx < 0 || s.t == nil {
				continue
			}
			tok, err := s.smp.Sample(e.lctx, s.outIdx)
			if err != nil {
				e.finish(s, "", fmt.Errorf("sample: %w", err))
				continue
			}
			if s.state == slotPrompt {
				s.state = slotGen
				s.tFirst = now
			}
			e.accept(s, tok)
		}
	}
}

// bestSlot returns the free slot whose cache shares the longest prefix with
// prompt (the least recently used among equals), or nil if none is free.
func bestSlot(slots []*slot, prompt []llama.Token) *slot {
	var best *slot
	bestN := -1
	for _, s := range slots {
		if s.t != nil {
			continue
		}
		n := commonPrefix(s.cache, prompt)
		if n > bestN || (n == bestN && s.lastUse.Before(best.lastUse)) {
			best, bestN = s, n
		}
	}
	return best
}

func commonPrefix(a, b []llama.Token) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// start puts t into the free slot s: truncates the prompt if needed,
// reuses the cached prefix, and builds the sampler.
func (e *Engine) start(s *slot, t *task) error {
	prompt, trunc := truncatePrompt(t.prompt, e.nCtxSeq, t.numKeep)
	smp, err := llama.NewSampler(e.model, t.sp)
	if err != nil {
		return fmt.Errorf("%w: sampler: %v", runner.ErrBadRequest, err)
	}
	// Like Ollama, the repeat penalties see the end of the prompt too.
	if lastN := t.sp.RepeatLastN; lastN != 0 {
		if lastN < 0 {
			lastN = e.nCtxSeq
		}
		for _, tok := range prompt[max(0, len(prompt)-lastN):] {
			smp.Accept(tok)
		}
	}
	n := commonPrefix(s.cache, prompt)
	if n >= len(prompt) {
		n = len(prompt) - 1 // re-evaluate the last token to get its logits
	}
	for _, sp := range t.images {
		if sp.start < n && n < sp.start+sp.n {
			n = sp.start // an image is decoded whole
		}
	}
	if !e.lctx.KVSeqRemove(s.id, n, -1) {
		e.lctx.KVSeqRemove(s.id, -1, -1)
		n = 0
	}
	s.cache = s.cache[:n]
	s.t, s.smp, s.prompt, s.trunc, s.cached = t, smp, prompt, trunc, n
	s.state = slotPrompt
	s.gen = s.gen[:0]
	s.stop = stopper{stops: t.stops}
	s.tStart = time.Now()
	s.tFirst = time.Time{}
	return nil
}

// truncatePrompt cuts a prompt that does not fit in a slot of nCtx tokens:
// it keeps the first numKeep tokens (at most half the context) and the
// most recent tokens, to 3/4 of the context.
func truncatePrompt(p []llama.Token, nCtx, numKeep int) ([]llama.Token, bool) {
	if len(p) < nCtx {
		return p, false
	}
	target := nCtx - nCtx/4
	keep := numKeep
	if keep < 0 || keep > nCtx/2 {
		keep = nCtx / 2
	}
	if keep > target {
		keep = target
	}
	out := make([]llama.Token, 0, target)
	out = append(out, p[:keep]...)
	out = append(out, p[len(p)-(target-keep):]...)
	return out, true
}

// shift makes room in a full slot by dropping half of the tokens after
// num_keep, when the request has a num_predict limit and the model's cache
// can shift. It reports whether room was made.
func (e *Engine) shift(s *slot) bool {
	if s.t.numPredict <= 0 || !e.lctx.KVCanShift() {
		return false
	}
	n := len(s.cache)
	keep := s.t.numKeep
	if keep < 0 || keep > n/2 {
		keep = n / 2
	}
	discard := (n - keep) / 2
	if discard <= 0 {
		return false
	}
	if !e.lctx.KVSeqRemove(s.id, keep, keep+discard) {
		return false
	}
	e.lctx.KVSeqAdd(s.id, keep+discard, n, -discard)
	s.cache = append(s.cache[:keep], s.cache[keep+discard:]...)
	return true
}

// accept handles a token sampled for slot s.
func (e *Engine) accept(s *slot, tok llama.Token) {
	if e.model.IsEOG(tok) {
		e.finish(s, runner.DoneStop, nil)
		return
	}
	s.gen = append(s.gen, tok)
	piece := e.model.TokenToPiece(tok, s.t.special[tok])
	out, stopped := s.stop.push(piece)
	s.t.emit(out)
	if stopped {
		e.finish(s, runner.DoneStop, nil)
		return
	}
	if s.t.numPredict > 0 && len(s.gen) >= s.t.numPredict {
		e.finish(s, runner.DoneLength, nil)
		return
	}
	s.next = tok
}

// finish ends the request in slot s with a reason (or an error) and frees
// the slot; the slot's cache stays for the next request.
func (e *Engine) finish(s *slot, reason string, err error) {
	t := s.t
	ev := genEvent{done: true, reason: reason, err: err, truncated: s.trunc}
	if err == nil {
		// Text held back for a stop string that never completed is output.
		t.emit(s.stop.flush())
		if t.noStream {
			ev.piece = string(t.text)
		}
		now := time.Now()
		first := s.tFirst
		if first.IsZero() {
			first = now
		}
		ev.timings = runner.Timings{
			PromptEvalCount:    len(s.prompt) - s.cached,
			PromptEvalDuration: first.Sub(s.tStart),
			EvalCount:          len(s.gen),
			EvalDuration:       now.Sub(first),
			PromptCached:       s.cached,
		}
		ctx := make([]llama.Token, 0, len(s.prompt)+len(s.gen))
		for _, tok := range s.prompt {
			if !isImage(tok) { // images are not tokens a client can send back
				ctx = append(ctx, tok)
			}
		}
		ctx = append(ctx, s.gen...)
		ev.context = ctx
		if e.opts.Verbose {
			tm := ev.timings
			fmt.Fprintf(e.log, "olm runner: slot %d: prompt %d tokens (+%d cached%s) in %v, %d tokens in %v (%.1f tok/s), %s\n",
				s.id, tm.PromptEvalCount, tm.PromptCached, map[bool]string{true: ", truncated"}[s.trunc],
				tm.PromptEvalDuration.Round(time.Millisecond), tm.EvalCount, tm.EvalDuration.Round(time.Millisecond),
				float64(tm.EvalCount)/max(tm.EvalDuration.Seconds(), 1e-9), reason)
		}
	} else if e.opts.Verbose {
		fmt.Fprintf(e.log, "olm runner: slot %d: failed: %v\n", s.id, err)
	}
	t.out.push(ev)
	t.out.close()
	e.release(s)
}

// release frees slot s (its KV cache and token list stay for reuse).
func (e *Engine) release(s *slot) {
	if s.t != nil && s.t.ctx.Err() != nil {
		s.t.out.close()
	}
	if s.smp != nil {
		s.smp.Close()
		s.smp = nil
	}
	if s.t != nil {
		s.t.free()
	}
	s.t = nil
	s.state = slotIdle
	s.outIdx = -1
	s.lastUse = time.Now()
}
