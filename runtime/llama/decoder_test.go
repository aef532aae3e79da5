//go:build cgo

package llama_test

import (
	"slices"
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
