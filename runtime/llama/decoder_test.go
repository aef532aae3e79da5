//go:build cgo

package llama_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/olmhq/olm/runtime/llama"
)

// TestDecodeThread checks where decodes run: a batch that llama.cpp
// computes on one thread runs on the caller's thread (no OpenMP team can
// start, and the hand-off to the context's decoder thread costs two thread
// wake-ups); a batch computed by several threads is handed to the decoder
// thread, so that one OS thread owns the team. The tokens are the same
// either way.
func TestDecodeThread(t *testing.T) {
	m := tiny(t)
	prompt, err := m.Tokenize("Once upon a time there was a little", true, false)
	if err != nil {
		t.Fatal(err)
	}
	const n = 24
	var first []llama.Token
	for _, tc := range []struct {
		name                     string
		threads, threadsBatch    int
		wantDirect, wantHandoffs int64
	}{
		{"one thread", 1, 1, 1 + n, 0},
		{"one thread, prompt on two", 1, 2, n, 1},
		{"two threads", 2, 2, 0, 1 + n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newContext(t, m, llama.ContextParams{NumCtx: 512, NumThreads: tc.threads, NumThreadsBatch: tc.threadsBatch})
			s, err := llama.NewSampler(m, llama.SamplerParams{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			toks := generate(t, c, s, prompt, n)
			if len(toks) != n {
				t.Fatalf("generated %d tokens, want %d (the tiny model should not stop early)", len(toks), n)
			}
			direct, handoffs := llama.DecodeCounts(c)
			if direct != tc.wantDirect || handoffs != tc.wantHandoffs {
				t.Errorf("decodes on the caller's thread %d, on the decoder thread %d; want %d and %d", direct, handoffs, tc.wantDirect, tc.wantHandoffs)
			}
			if first == nil {
				first = toks
			} else if !slices.Equal(toks, first) {
				t.Errorf("tokens\n%v\ndiffer from the first case's\n%v", toks, first)
			}
		})
	}
}

// TestOneDecoderThread: every context's multi-threaded decodes run on the
// same OS thread, so that the process has one OpenMP team (a second team
// made libgomp's waits sleep in the kernel and single-token decodes ~4×
// slower), and contexts decoding at the same time from several goroutines
// still get their own results.
func TestOneDecoderThread(t *testing.T) {
	m := tiny(t)
	a := newContext(t, m, llama.ContextParams{NumCtx: 256, NumThreads: 2})
	b := newContext(t, m, llama.ContextParams{NumCtx: 256, NumThreads: 2})
	ta, tb := llama.DecoderThread(a), llama.DecoderThread(b)
	if ta == 0 || ta != tb {
		t.Fatalf("decoder threads %d and %d, want one", ta, tb)
	}
	if ta == syscall.Gettid() {
		t.Fatalf("the decoder thread is the caller's (%d)", ta)
	}
	prompt, err := m.Tokenize("Once upon a time", true, false)
	if err != nil {
		t.Fatal(err)
	}
	// greedy generation of n tokens; errors, not t.Fatal: it runs on
	// other goroutines too
	run := func(c *llama.Context) ([]llama.Token, error) {
		s, err := llama.NewSampler(m, llama.SamplerParams{})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		bt, err := llama.NewBatch(len(prompt), 1)
		if err != nil {
			return nil, err
		}
		defer bt.Close()
		c.KVClear()
		for i, tok := range prompt {
			bt.Add(tok, i, i == len(prompt)-1)
		}
		var out []llama.Token
		for pos := len(prompt); len(out) < 32; pos++ {
			if err := c.Decode(context.Background(), bt); err != nil {
				return nil, err
			}
			tok, err := s.Sample(c, -1)
			if err != nil {
				return nil, err
			}
			out = append(out, tok)
			bt.Clear()
			bt.Add(tok, pos, true)
		}
		return out, nil
	}
	want, err := run(a)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([][]llama.Token, 2)
	errs := make([]error, 2)
	for i, c := range []*llama.Context{a, b} {
		wg.Go(func() { got[i], errs[i] = run(c) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if !slices.Equal(got[i], want) {
			t.Errorf("context %d generated\n%v\nalone\n%v", i, got[i], want)
		}
	}
}
