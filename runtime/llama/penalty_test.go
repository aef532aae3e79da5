//go:build cgo

package llama_test

import (
	"slices"
	"testing"

	"github.com/olmhq/olm/runtime/llama"
)

// TestPenaltiesMatchLlamaCpp: without a logit bias the sampler applies the
// repetition penalties itself (and picks greedy tokens straight from the
// logits); with one, llama.cpp's penalties sampler does. A bias of 0 changes
// no logit, so both must choose the same tokens, greedy and seeded.
func TestPenaltiesMatchLlamaCpp(t *testing.T) {
	m := tiny(t)
	prompt, err := m.Tokenize("Once upon a time there was a little", true, false)
	if err != nil {
		t.Fatal(err)
	}
	run := func(p llama.SamplerParams) []llama.Token {
		c := newContext(t, m, llama.ContextParams{NumCtx: 512})
		s, err := llama.NewSampler(m, p)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, tok := range prompt { // as the runner: the prompt counts
			s.Accept(tok)
		}
		return generate(t, c, s, prompt, 96)
	}
	// the penalties matter on this model (else the test shows nothing)
	if plain, pen := run(llama.SamplerParams{}), run(llama.SamplerParams{RepeatPenalty: 1.5, RepeatLastN: 16}); slices.Equal(plain, pen) {
		t.Fatalf("repeat penalty changed nothing: %v", plain)
	}
	for name, p := range map[string]llama.SamplerParams{
		"greedy repeat":          {RepeatPenalty: 1.5, RepeatLastN: 16},
		"greedy all penalties":   {RepeatPenalty: 1.3, FrequencyPenalty: 0.4, PresencePenalty: 0.6, RepeatLastN: 64},
		"greedy whole context":   {RepeatPenalty: 1.2, RepeatLastN: -1, NumCtx: 512},
		"greedy no penalties":    {},
		"seeded repeat":          {Temperature: 0.9, TopK: 40, TopP: 0.9, RepeatPenalty: 1.4, RepeatLastN: 8, Seed: 42},
		"seeded presence only":   {Temperature: 1.2, PresencePenalty: 1.5, RepeatPenalty: 1, RepeatLastN: 32, Seed: 7},
		"seeded frequency, long": {Temperature: 0.7, MinP: 0.05, FrequencyPenalty: 0.8, RepeatLastN: 200, Seed: 3},
	} {
		t.Run(name, func(t *testing.T) {
			fast := run(p)
			p.LogitBias = map[llama.Token]float32{0: 0} // llama.cpp's penalties sampler
			ref := run(p)
			if len(fast) < 32 || !slices.Equal(fast, ref) {
				t.Errorf("sampler's penalties chose\n%v\nllama.cpp's\n%v", fast, ref)
			}
		})
	}
}
