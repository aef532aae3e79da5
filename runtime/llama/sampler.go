//go:build cgo

package llama

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"unsafe"
)

// Sampler chooses the next token from a Context's logits with the options
// of SamplerParams, keeping the history that penalties, mirostat and the
// grammar need. Use one Sampler per sequence, from one goroutine at a time.
type Sampler struct {
	closer
	m *Model
	s *C.olm_sampler
}

func validFloat(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

// NewSampler builds the sampler chain for p on m's vocabulary. The chain
// is: logit bias, penalties (repeat, frequency, presence over RepeatLastN
// tokens), then either greedy (Temperature ≤ 0), mirostat 1/2 (after
// temperature), or top-k → typical → top-p → min-p → temperature → random
// choice with Seed. A Grammar constrains every choice (or, lazily, every
// choice after a trigger). Invalid parameters give ErrSampler; a grammar or
// trigger that does not parse gives ErrGrammar.
func NewSampler(m *Model, p SamplerParams) (*Sampler, error) {
	for name, v := range map[string]float32{
		"temperature": p.Temperature, "top_p": p.TopP, "min_p": p.MinP, "typical_p": p.TypicalP,
		"repeat_penalty": p.RepeatPenalty, "presence_penalty": p.PresencePenalty,
		"frequency_penalty": p.FrequencyPenalty, "mirostat_tau": p.MirostatTau, "mirostat_eta": p.MirostatEta,
	} {
		if !validFloat(v) {
			return nil, fmt.Errorf("%w: %s is %v", ErrSampler, name, v)
		}
	}
	if p.RepeatPenalty < 0 {
		return nil, fmt.Errorf("%w: repeat_penalty %v must not be negative", ErrSampler, p.RepeatPenalty)
	}
	if p.Mirostat < 0 || p.Mirostat > 2 {
		return nil, fmt.Errorf("%w: mirostat %d must be 0, 1 or 2", ErrSampler, p.Mirostat)
	}
	if p.RepeatLastN < -1 {
		return nil, fmt.Errorf("%w: repeat_last_n %d must be ≥ -1", ErrSampler, p.RepeatLastN)
	}
	if err := m.acquire(); err != nil {
		return nil, err
	}

	// grammar first: it is the part that can fail
	var grammar *C.struct_llama_sampler
	if p.Grammar != "" {
		g, err := newGrammar(m, p)
		if err != nil {
			m.release()
			return nil, err
		}
		grammar = g
	}

	cp := C.llama_sampler_chain_default_params()
	cp.no_perf = true
	chain := C.llama_sampler_chain_init(cp)
	add := func(s *C.struct_llama_sampler) { C.llama_sampler_chain_add(chain, s) }
	nVocab := C.int32_t(m.nVocab)

	biased := false
	if len(p.LogitBias) > 0 {
		biases := make([]C.llama_logit_bias, 0, len(p.LogitBias))
		for t, b := range p.LogitBias {
			if t < 0 || int(t) >= m.nVocab {
				continue
			}
			biases = append(biases, C.llama_logit_bias{token: C.llama_token(t), bias: C.float(b)})
		}
		if len(biases) > 0 {
			cb := (*C.llama_logit_bias)(C.malloc(C.size_t(len(biases)) * C.size_t(unsafe.Sizeof(biases[0]))))
			copy(unsafe.Slice(cb, len(biases)), biases)
			add(C.llama_sampler_init_logit_bias(nVocab, C.int32_t(len(biases)), cb))
			biased = true
			C.free(unsafe.Pointer(cb))
		}
	}

	lastN := p.RepeatLastN
	if lastN < 0 {
		lastN = p.NumCtx
		if lastN <= 0 {
			lastN = 4096
		}
	}
	repeat := p.RepeatPenalty
	if repeat == 0 {
		repeat = 1
	}
	// Penalties come right after the logit bias. Without a bias the
	// olm_sampler applies them itself (same arithmetic, but it touches only
	// the tokens of the history instead of looking every vocabulary token
	// up in a map on every step).
	penLastN := 0
	if lastN > 0 && (repeat != 1 || p.FrequencyPenalty != 0 || p.PresencePenalty != 0) {
		if biased {
			add(C.llama_sampler_init_penalties(nVocab, C.int32_t(min(lastN, math.MaxInt32)), C.float(repeat), C.float(p.FrequencyPenalty), C.float(p.PresencePenalty)))
		} else {
			penLastN = min(lastN, math.MaxInt32)
		}
	}

	seed := C.uint32_t(C.LLAMA_DEFAULT_SEED)
	if p.Seed >= 0 {
		seed = C.uint32_t(uint32(p.Seed))
	}
	switch {
	case p.Temperature <= 0:
		add(C.llama_sampler_init_greedy())
	case p.Mirostat == MirostatV1:
		add(C.llama_sampler_init_temp(C.float(p.Temperature)))
		add(C.llama_sampler_init_mirostat(nVocab, seed, C.float(p.MirostatTau), C.float(p.MirostatEta), 100))
	case p.Mirostat == MirostatV2:
		add(C.llama_sampler_init_temp(C.float(p.Temperature)))
		add(C.llama_sampler_init_mirostat_v2(seed, C.float(p.MirostatTau), C.float(p.MirostatEta)))
	default:
		if p.TopK > 0 {
			add(C.llama_sampler_init_top_k(C.int32_t(min(p.TopK, math.MaxInt32))))
		}
		if p.TypicalP > 0 && p.TypicalP < 1 {
			add(C.llama_sampler_init_typical(C.float(p.TypicalP), 1))
		}
		if p.TopP > 0 && p.TopP < 1 {
			add(C.llama_sampler_init_top_p(C.float(p.TopP), 1))
		}
		if p.MinP > 0 {
			add(C.llama_sampler_init_min_p(C.float(p.MinP), 1))
		}
		add(C.llama_sampler_init_temp(C.float(p.Temperature)))
		add(C.llama_sampler_init_dist(seed))
	}

	s := &Sampler{m: m, s: C.olm_sampler_new(chain, grammar)}
	// greedy alone (no bias, no grammar): picked straight from the logits
	greedyOnly := p.Temperature <= 0 && !biased && grammar == nil
	C.olm_sampler_set_fast(s.s, nVocab, C.int32_t(penLastN), C.float(repeat), C.float(p.FrequencyPenalty), C.float(p.PresencePenalty), C.bool(greedyOnly))
	runtime.SetFinalizer(s, (*Sampler).Close)
	return s, nil
}

// newGrammar builds the (lazy) grammar sampler of p.
func newGrammar(m *Model, p SamplerParams) (*C.struct_llama_sampler, error) {
	var patterns []string
	var tokens []C.llama_token
	for _, t := range p.GrammarTriggers {
		switch t.Type {
		case TriggerWord:
			// a word that is one special token triggers on that token
			if toks, err := m.Tokenize(t.Value, false, true); err == nil && len(toks) == 1 && m.IsControl(toks[0]) {
				tokens = append(tokens, C.llama_token(toks[0]))
			} else {
				patterns = append(patterns, regexp.QuoteMeta(t.Value))
			}
		case TriggerPattern:
			patterns = append(patterns, t.Value)
		case TriggerPatternFull:
			v := t.Value
			if v == "" || v[0] != '^' {
				v = "^" + v
			}
			if v[len(v)-1] != '$' {
				v += "$"
			}
			patterns = append(patterns, v)
		case TriggerToken:
			if t.Token < 0 || int(t.Token) >= m.nVocab {
				return nil, fmt.Errorf("%w: trigger token %d outside the vocabulary", ErrGrammar, t.Token)
			}
			tokens = append(tokens, C.llama_token(t.Token))
		default:
			return nil, fmt.Errorf("%w: unknown trigger type %d", ErrGrammar, t.Type)
		}
	}
	if p.GrammarLazy && len(patterns) == 0 && len(tokens) == 0 {
		return nil, fmt.Errorf("%w: a lazy grammar needs at least one trigger", ErrGrammar)
	}
	cg := cstr(p.Grammar)
	defer free(cg)
	var cpat **C.char
	if len(patterns) > 0 {
		arr := (*[1 << 20]*C.char)(C.malloc(C.size_t(len(patterns)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))[:len(patterns):len(patterns)]
		for i, s := range patterns {
			arr[i] = cstr(s)
		}
		defer func() {
			for _, s := range arr {
				free(s)
			}
			C.free(unsafe.Pointer(&arr[0]))
		}()
		cpat = &arr[0]
	}
	var ctok *C.llama_token
	if len(tokens) > 0 {
		ctok = (*C.llama_token)(C.malloc(C.size_t(len(tokens)) * 4))
		copy(unsafe.Slice(ctok, len(tokens)), tokens)
		defer C.free(unsafe.Pointer(ctok))
	}
	var cerr *C.char
	lastError()
	g := C.olm_grammar_init(m.vocab, cg, C.bool(p.GrammarLazy), cpat, C.size_t(len(patterns)), ctok, C.size_t(len(tokens)), &cerr)
	if g == nil {
		return nil, takeErr(ErrGrammar, cerr)
	}
	if p.GrammarPrefill != "" && !p.GrammarLazy {
		for _, t := range m.prefillTokens(p.GrammarPrefill) {
			if C.olm_grammar_accept(g, C.llama_token(t), &cerr) != 0 {
				C.llama_sampler_free(g)
				return nil, fmt.Errorf("%w: the grammar rejects its prefill %q: %s", ErrGrammar, p.GrammarPrefill, takeString(cerr))
			}
		}
	}
	return g, nil
}

// Sample picks the next token from the logits of the token at batch index
// idx of c's last Decode (-1: the last output), and accepts it into the sampler's history and grammar. It
// fails with ErrNoOutput when that output has no logits and with
// ErrGrammar when the grammar allows no token.
func (s *Sampler) Sample(c *Context, idx int) (Token, error) {
	if s == nil || s.s == nil {
		return TokenNull, ErrClosed
	}
	if !c.ok() {
		return TokenNull, ErrClosed
	}
	var out C.llama_token
	var cerr *C.char
	if C.olm_sampler_sample(s.s, c.p, C.int32_t(idx), &out, &cerr) != 0 {
		msg := takeString(cerr)
		if len(msg) >= 7 && msg[:7] == "grammar" {
			return TokenNull, fmt.Errorf("%w: %s", ErrGrammar, msg)
		}
		return TokenNull, fmt.Errorf("%w: %s", ErrNoOutput, msg)
	}
	return Token(out), nil
}

// Accept adds t to the history the penalties and mirostat use, without
// touching the grammar: use it for prompt tokens (Ollama's repeat penalty
// counts them) or tokens chosen elsewhere.
func (s *Sampler) Accept(t Token) {
	if s == nil || s.s == nil {
		return
	}
	var cerr *C.char
	if C.olm_sampler_accept(s.s, C.llama_token(t), false, &cerr) != 0 {
		takeString(cerr)
	}
}

// Reset forgets the history and restarts the grammar, for a new
// generation with the same settings.
func (s *Sampler) Reset() {
	if s != nil && s.s != nil {
		C.olm_sampler_reset(s.s)
	}
}

// setGreedyReference makes a greedy sampler pick its tokens with the plain
// reference loop instead of the vectorized path (for tests that compare
// the two).
func (s *Sampler) setGreedyReference(on bool) {
	if s != nil && s.s != nil {
		C.olm_sampler_set_greedy_ref(s.s, C.bool(on))
	}
}

// Close frees the sampler. It is idempotent.
func (s *Sampler) Close() error {
	if s == nil || !s.markClosed() {
		return nil
	}
	runtime.SetFinalizer(s, nil)
	C.olm_sampler_free(s.s)
	s.s = nil
	s.m.release()
	return nil
}

// prefillTokens returns tokens whose pieces spell text exactly, for feeding
// a grammar: the normal tokenization when it round-trips (minus a
// SentencePiece space token before a leading special token), else the
// vocabulary's byte tokens.
func (m *Model) prefillTokens(text string) []Token {
	toks, err := m.Tokenize(text, false, true)
	if err == nil {
		spell := func(ts []Token) string {
			var b []byte
			for _, t := range ts {
				b = m.AppendPiece(b, t, true)
			}
			return string(b)
		}
		if spell(toks) == text {
			return toks
		}
		if len(toks) > 1 && strings.TrimSpace(m.TokenToPiece(toks[0], true)) == "" && spell(toks[1:]) == text {
			return toks[1:]
		}
	}
	bt := m.byteTokens()
	if bt == nil {
		return toks
	}
	out := make([]Token, 0, len(text))
	for i := 0; i < len(text); i++ {
		out = append(out, bt[text[i]])
	}
	return out
}

// byteTokens maps each byte to the vocabulary's <0xNN> token, or is nil
// when the vocabulary has none (BPE vocabularies spell bytes differently,
// but their tokenization round-trips).
func (m *Model) byteTokens() *[256]Token {
	m.byteOnce.Do(func() {
		var bt [256]Token
		found := 0
		for i := 0; i < m.nVocab && found < 256; i++ {
			s := m.TokenText(Token(i))
			if len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>' {
				if v, err := strconv.ParseUint(s[3:5], 16, 8); err == nil {
					bt[v] = Token(i)
					found++
				}
			}
		}
		if found == 256 {
			m.bytes = &bt
		}
	})
	return m.bytes
}
