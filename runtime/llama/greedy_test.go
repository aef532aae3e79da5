//go:build cgo

package llama_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
)

// TestGreedyFastMatchesReference writes random logits (many ties, ±0,
// ±Inf, NaN, the maximum on penalized tokens) into a context's output and
// checks that the vectorized greedy path picks the same token as the plain
// reference loop and as llama.cpp's own penalties and greedy samplers (a
// logit bias of 0 routes through them), and that it leaves the logits as
// they were. Vocabularies of 32000 tokens (whole blocks of the vectorized
// maximum) and 1000 (a partial last block).
func TestGreedyFastMatchesReference(t *testing.T) {
	small, _ := generated(t, testmodel.Spec{Name: "olm greedy vocab", Vocab: 1000, Embedding: 8, Blocks: 1, FeedForward: 16, Heads: 2, Seed: 5})
	for _, m := range []*llama.Model{tiny(t), small} {
		c := newContext(t, m, llama.ContextParams{NumCtx: 512, NumThreads: 1})
		b, err := llama.NewBatch(1, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		b.Add(m.BOS(), 0, true)
		if err := c.Decode(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		logits, err := c.Logits(-1)
		if err != nil {
			t.Fatal(err)
		}
		n := m.NumVocab()
		for name, p := range map[string]llama.SamplerParams{
			"no penalties":        {},
			"repeat 2, last 8":    {RepeatPenalty: 2, RepeatLastN: 8},
			"repeat 0.5, last 64": {RepeatPenalty: 0.5, RepeatLastN: 64},
			"ollama defaults":     {RepeatPenalty: 1.1, RepeatLastN: 64},
			"frequency, presence": {RepeatPenalty: 1, FrequencyPenalty: 1, PresencePenalty: 0.5, RepeatLastN: 32},
			"all, whole context":  {RepeatPenalty: 2, FrequencyPenalty: 0.25, PresencePenalty: 1, RepeatLastN: -1, NumCtx: 512},
			"negative presence":   {RepeatPenalty: 1, PresencePenalty: -2, RepeatLastN: 16},
		} {
			t.Run(fmt.Sprintf("vocab %d, %s", n, name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(n), uint64(len(name))))
				fast, ref := mustSampler(t, m, p), mustSampler(t, m, p)
				llama.SetGreedyReference(ref, true)
				p.LogitBias = map[llama.Token]float32{0: 0}
				cpp := mustSampler(t, m, p)
				// a history with repeats (counts above 1) and token 0
				for range 40 {
					tok := llama.Token(rng.IntN(50))
					if rng.IntN(3) == 0 {
						tok = llama.Token(rng.IntN(n))
					}
					for _, s := range []*llama.Sampler{fast, ref, cpp} {
						s.Accept(tok)
					}
				}
				hist := make([]llama.Token, 0, 64) // recent picks, to put the maximum on penalized tokens
				before := make([]float32, n)
				for trial := range 400 {
					fillLogits(rng, logits, hist)
					copy(before, logits)
					got, err := fast.Sample(c, -1)
					if err != nil {
						t.Fatal(err)
					}
					for i := range logits {
						if math.Float32bits(logits[i]) != math.Float32bits(before[i]) {
							t.Fatalf("trial %d: logit %d is %v after sampling, was %v", trial, i, logits[i], before[i])
						}
					}
					want, err := ref.Sample(c, -1)
					if err != nil {
						t.Fatal(err)
					}
					lc, err := cpp.Sample(c, -1)
					if err != nil {
						t.Fatal(err)
					}
					if got != want || got != lc {
						t.Fatalf("trial %d: fast path chose %d (logit %v), reference loop %d (logit %v), llama.cpp %d", trial, got, logits[got], want, logits[want], lc)
					}
					hist = append(hist, got)
					if len(hist) > 64 {
						hist = hist[1:]
					}
				}
			})
		}
	}
}

func mustSampler(t *testing.T, m *llama.Model, p llama.SamplerParams) *llama.Sampler {
	t.Helper()
	s, err := llama.NewSampler(m, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fillLogits writes random logits of one of several kinds: small integers
// (ties everywhere, also between penalized and plain values), normal
// values, values with ±0, ±Inf and NaN mixed in, the maximum copied onto
// recently picked (penalized) tokens and a few other places, all -Inf, or
// NaN first.
func fillLogits(rng *rand.Rand, l []float32, hist []llama.Token) {
	kind := rng.IntN(7)
	for i := range l {
		switch kind {
		case 0, 5:
			l[i] = float32(rng.IntN(9) - 4)
		default:
			l[i] = float32(rng.NormFloat64() * 3)
		}
	}
	switch kind {
	case 2:
		specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
		for range 1 + rng.IntN(20) {
			l[rng.IntN(len(l))] = specials[rng.IntN(len(specials))]
		}
	case 3, 5:
		top := float32(20)
		if kind == 5 {
			top = 4
		}
		for _, tok := range hist {
			if rng.IntN(2) == 0 {
				l[tok] = top
			}
		}
		for range rng.IntN(4) {
			l[rng.IntN(len(l))] = top
		}
		if rng.IntN(4) == 0 {
			l[0] = top
		}
	case 4:
		neg := float32(math.Inf(-1))
		for i := range l {
			l[i] = neg
		}
		if rng.IntN(2) == 0 {
			l[rng.IntN(len(l))] = float32(math.NaN())
		}
	case 6:
		l[0] = float32(math.NaN())
	}
}
