package engine

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
)

// embedSeqs is how many short inputs are embedded in one decode.
const embedSeqs = 8

// embedContext returns the embedding context, creating it on first use.
// The caller must hold e.embMu (Load calls it before anything runs).
func (e *Engine) embedContext() (*llama.Context, error) {
	if e.embCtx != nil {
		return e.embCtx, nil
	}
	pool := llama.PoolingDefault
	if _, ok := e.model.Meta(e.model.Arch() + ".pooling_type"); !ok {
		pool = llama.PoolingMean // generative models declare none
	}
	n := e.nCtxSeq
	c, err := llama.NewContext(e.model, e.contextParams(llama.ContextParams{
		NumCtx:     n,
		NumBatch:   n,
		NumUBatch:  n, // non-causal pooling needs the whole input in one micro-batch
		NumSeqMax:  embedSeqs,
		NumThreads: e.opts.NumThread,
		Embeddings: true,
		Pooling:    pool,
	}))
	if err != nil {
		return nil, fmt.Errorf("create embedding context: %w", err)
	}
	if err := e.applyLoRA(c); err != nil {
		c.Close()
		return nil, err
	}
	e.embCtx = c
	return c, nil
}

// Embed returns one vector per input, L2-normalized unless raw, and the
// number of tokens evaluated. An input longer than the context fails with
// runner.ErrContextLength unless truncate is set.
func (e *Engine) Embed(ctx context.Context, inputs []string, truncate, raw bool) ([][]float32, int, error) {
	e.embMu.Lock()
	defer e.embMu.Unlock()
	c, err := e.embedContext()
	if err != nil {
		return nil, 0, err
	}
	nCtx := c.NumCtx()
	if u := c.NumUBatch(); u > 0 && u < nCtx {
		nCtx = u
	}
	batch, err := llama.NewBatch(nCtx, 1)
	if err != nil {
		return nil, 0, err
	}
	defer batch.Close()
	encode := e.model.HasEncoder() && !e.model.HasDecoder()
	toks := make([][]llama.Token, len(inputs))
	total := 0
	for i, in := range inputs {
		t, err := e.model.Tokenize(in, true, false)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: input %d: tokenize: %v", runner.ErrBadRequest, i, err)
		}
		if len(t) == 0 {
			return nil, 0, fmt.Errorf("%w: input %d is empty", runner.ErrBadRequest, i)
		}
		if len(t) > nCtx {
			if !truncate {
				return nil, 0, fmt.Errorf("%w: input %d has %d tokens, the context holds %d (set truncate to cut it)",
					runner.ErrContextLength, i, len(t), nCtx)
			}
			t = t[:nCtx]
		}
		toks[i] = t
		total += len(t)
	}
	// Pack inputs into batches of up to embedSeqs sequences and nCtx tokens.
	out := make([][]float32, len(inputs))
	for start := 0; start < len(toks); {
		end, n := start, 0
		for end < len(toks) && end-start < embedSeqs && n+len(toks[end]) <= nCtx {
			n += len(toks[end])
			end++
		}
		c.KVClear()
		batch.Clear()
		for seq, t := range toks[start:end] {
			for pos, tok := range t {
				if err := batch.Add(tok, pos, true, seq); err != nil {
					return nil, 0, err
				}
			}
		}
		if encode {
			err = c.Encode(ctx, batch)
		} else {
			err = c.Decode(ctx, batch)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("embed inputs %d-%d: %w", start, end-1, err)
		}
		for seq := range end - start {
			v, err := c.SeqEmbeddings(seq)
			if err != nil {
				return nil, 0, fmt.Errorf("embed input %d: %w", start+seq, err)
			}
			out[start+seq] = append([]float32(nil), v...)
			if !raw {
				llama.Normalize(out[start+seq])
			}
		}
		start = end
	}
	return out, total, nil
}

func (e *Engine) handleEmbed(w http.ResponseWriter, r *http.Request) {
	var req runner.EmbedRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Input) == 0 {
		writeError(w, fmt.Errorf("%w: no input", runner.ErrBadRequest))
		return
	}
	start := time.Now()
	vecs, n, err := e.Embed(r.Context(), req.Input, req.Truncate, req.Raw)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, runner.EmbedResponse{Embeddings: vecs, PromptEvalCount: n, Duration: time.Since(start)})
}
