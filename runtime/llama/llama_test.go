//go:build cgo

package llama_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/llama"
)

func TestMain(m *testing.M) {
	if os.Getenv("OLM_LLAMA_LOG") != "" {
		llama.SetLogLevel(llama.LogDebug)
	}
	os.Exit(m.Run())
}

// llamaSrc returns the llama.cpp source folder (models/, templates).
func llamaSrc(t testing.TB) string {
	t.Helper()
	return filepath.Join(testenv.LlamaDir(t), "src")
}

var (
	tinyOnce  sync.Once
	tinyModel *llama.Model
	tinyErr   error
)

// tiny returns the shared tiny model, loaded once for the package's tests.
func tiny(t testing.TB) *llama.Model {
	t.Helper()
	testenv.LlamaDir(t)
	path := testmodel.Tiny(t)
	tinyOnce.Do(func() {
		tinyModel, tinyErr = llama.LoadModel(context.Background(), path, llama.DefaultModelParams())
	})
	if tinyErr != nil {
		t.Fatalf("load tiny model: %v", tinyErr)
	}
	return tinyModel
}

// generated writes a model of spec into the test's temp folder and loads it.
func generated(t testing.TB, spec testmodel.Spec) (*llama.Model, string) {
	t.Helper()
	testenv.LlamaDir(t)
	path := filepath.Join(t.TempDir(), "gen.gguf")
	if err := testmodel.Generate(path, spec); err != nil {
		t.Fatalf("generate model: %v", err)
	}
	m, err := llama.LoadModel(context.Background(), path, llama.DefaultModelParams())
	if err != nil {
		t.Fatalf("load generated model: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m, path
}

func newContext(t testing.TB, m *llama.Model, p llama.ContextParams) *llama.Context {
	t.Helper()
	c, err := llama.NewContext(m, p)
	if err != nil {
		t.Fatalf("NewContext: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// generate decodes prompt on sequence 0 and samples up to n tokens with s,
// stopping at end of generation.
func generate(t testing.TB, c *llama.Context, s *llama.Sampler, prompt []llama.Token, n int) []llama.Token {
	t.Helper()
	ctx := context.Background()
	b, err := llama.NewBatch(max(len(prompt), 1), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i, tok := range prompt {
		if err := b.Add(tok, i, i == len(prompt)-1, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Decode(ctx, b); err != nil {
		t.Fatalf("decode prompt: %v", err)
	}
	pos := len(prompt)
	var out []llama.Token
	for len(out) < n {
		tok, err := s.Sample(c, -1)
		if err != nil {
			t.Fatalf("sample: %v", err)
		}
		if c.Model().IsEOG(tok) {
			break
		}
		out = append(out, tok)
		b.Clear()
		b.Add(tok, pos, true, 0)
		pos++
		if err := c.Decode(ctx, b); err != nil {
			t.Fatalf("decode: %v", err)
		}
	}
	return out
}

func TestModelMetadata(t *testing.T) {
	m := tiny(t)
	if got := m.Arch(); got != "llama" {
		t.Errorf("Arch = %q, want llama", got)
	}
	if m.NumVocab() != 32000 {
		t.Errorf("NumVocab = %d, want 32000", m.NumVocab())
	}
	if m.NumEmbd() <= 0 || m.NumLayer() <= 0 || m.NumHead() <= 0 || m.NumCtxTrain() <= 0 {
		t.Errorf("shape: embd %d layer %d head %d ctx %d", m.NumEmbd(), m.NumLayer(), m.NumHead(), m.NumCtxTrain())
	}
	if m.NumParams() == 0 || m.Size() == 0 {
		t.Errorf("NumParams %d Size %d", m.NumParams(), m.Size())
	}
	if !strings.Contains(m.FileType(), "F16") {
		t.Errorf("FileType = %q, want F16", m.FileType())
	}
	if !strings.Contains(m.Description(), "llama") {
		t.Errorf("Description = %q", m.Description())
	}
	md := m.Metadata()
	if md["general.architecture"] != "llama" {
		t.Errorf("Metadata[general.architecture] = %q (%d keys)", md["general.architecture"], len(md))
	}
	if v, ok := m.Meta("llama.embedding_length"); !ok || v != strconv.Itoa(m.NumEmbd()) {
		t.Errorf("Meta(llama.embedding_length) = %q, %v; want %d", v, ok, m.NumEmbd())
	}
	if _, ok := m.Meta("no.such.key"); ok {
		t.Error("Meta(no.such.key) reported a value")
	}
	if m.BOS() != 1 || m.EOS() != 2 {
		t.Errorf("BOS %d EOS %d, want 1 and 2", m.BOS(), m.EOS())
	}
	if !m.IsEOG(m.EOS()) || m.IsEOG(m.BOS()) || m.IsEOG(-5) || m.IsEOG(1<<20) {
		t.Error("IsEOG wrong")
	}
	if !m.AddBOS() {
		t.Error("llama SPM vocab should add BOS")
	}
}

func TestGeneratedModelLoads(t *testing.T) {
	m, _ := generated(t, testmodel.TinyLlama)
	if m.Arch() != "llama" || m.NumVocab() != testmodel.TinyLlama.Vocab || m.NumEmbd() != testmodel.TinyLlama.Embedding {
		t.Fatalf("generated model: arch %q vocab %d embd %d", m.Arch(), m.NumVocab(), m.NumEmbd())
	}
	if got, want := m.NumParams(), testmodel.TinyLlama.Params(); got != want {
		t.Errorf("NumParams = %d, spec says %d", got, want)
	}
	c := newContext(t, m, llama.ContextParams{NumCtx: 256})
	s, _ := llama.NewSampler(m, llama.SamplerParams{})
	defer s.Close()
	prompt, _ := m.Tokenize("hello world", true, false)
	if out := generate(t, c, s, prompt, 8); len(out) == 0 {
		t.Error("generated model produced nothing")
	}
}

func TestTokenizeRoundTrip(t *testing.T) {
	m := tiny(t)
	for _, s := range []string{"Hello world", "  two leading spaces", "Äpfel und Öl ½", "tabs\tand\nnewlines\n", "emoji 🦙 ok", "a"} {
		toks, err := m.Tokenize(s, true, false)
		if err != nil {
			t.Fatalf("Tokenize(%q): %v", s, err)
		}
		if len(toks) < 2 || toks[0] != m.BOS() {
			t.Fatalf("Tokenize(%q) = %v: want BOS first", s, toks)
		}
		back, err := m.Detokenize(toks, true, false)
		if err != nil {
			t.Fatal(err)
		}
		// llama.cpp keeps SPM's space prefix when it drops the BOS
		if back != " "+s {
			t.Errorf("Detokenize(Tokenize(%q, BOS), removeSpecial) = %q", s, back)
		}
		plain, _ := m.Tokenize(s, false, false)
		if back, _ := m.Detokenize(plain, false, false); back != s {
			t.Errorf("Detokenize(Tokenize(%q)) = %q", s, back)
		}
		var pieces []byte
		for _, tok := range toks[1:] {
			pieces = m.AppendPiece(pieces, tok, false)
		}
		if got := strings.TrimPrefix(string(pieces), " "); got != s && string(pieces) != s {
			t.Errorf("pieces of %q join to %q", s, pieces)
		}
	}
	// special tokens
	toks, _ := m.Tokenize("</s>", false, true)
	if len(toks) != 1 || toks[0] != m.EOS() {
		t.Errorf("parseSpecial: %v, want [EOS]", toks)
	}
	toks, _ = m.Tokenize("</s>", false, false)
	if len(toks) <= 1 {
		t.Errorf("without parseSpecial </s> should be text, got %v", toks)
	}
	if got := m.TokenToPiece(m.EOS(), true); got != "</s>" {
		t.Errorf("TokenToPiece(EOS, special) = %q", got)
	}
	if got := m.TokenToPiece(m.EOS(), false); got != "" {
		t.Errorf("TokenToPiece(EOS, !special) = %q", got)
	}
	if _, err := m.Detokenize([]llama.Token{1, 99999}, false, false); !errors.Is(err, llama.ErrTokenize) {
		t.Errorf("Detokenize(bad id) = %v, want ErrTokenize", err)
	}
	empty, err := m.Tokenize("", false, false)
	if err != nil || len(empty) != 0 {
		t.Errorf("Tokenize(\"\") = %v, %v", empty, err)
	}
}

// TestTokenizerVectors checks Tokenize against llama.cpp's own reference
// vectors for real vocabularies (models/ggml-vocab-*.gguf with .inp/.out).
func TestTokenizerVectors(t *testing.T) {
	dir := filepath.Join(llamaSrc(t), "models")
	for _, name := range []string{"llama-spm", "llama-bpe", "qwen2", "phi-3", "bert-bge"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "ggml-vocab-"+name+".gguf")
			m, err := llama.LoadModel(context.Background(), path, llama.ModelParams{UseMMap: true, VocabOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			inp, err := os.ReadFile(path + ".inp")
			if err != nil {
				t.Fatal(err)
			}
			out, err := os.ReadFile(path + ".out")
			if err != nil {
				t.Fatal(err)
			}
			inputs := strings.Split(strings.TrimSuffix(string(inp), "\n__ggml_vocab_test__\n"), "\n__ggml_vocab_test__\n")
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(inputs) != len(lines) {
				t.Fatalf("%d inputs, %d outputs", len(inputs), len(lines))
			}
			for i, in := range inputs {
				var want []llama.Token
				for _, f := range strings.Fields(lines[i]) {
					n, _ := strconv.Atoi(f)
					want = append(want, llama.Token(n))
				}
				got, err := m.Tokenize(in, false, false)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 {
					got = nil
				}
				if !slices.Equal(got, want) {
					t.Errorf("Tokenize(%q) = %v, want %v", in, got, want)
				}
			}
		})
	}
}

func TestGreedyDeterministic(t *testing.T) {
	m := tiny(t)
	prompt, _ := m.Tokenize("Once upon a time", true, false)
	run := func() []llama.Token {
		c := newContext(t, m, llama.ContextParams{NumCtx: 512, NumThreads: 2})
		s, err := llama.NewSampler(m, llama.SamplerParams{Temperature: 0})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return generate(t, c, s, prompt, 24)
	}
	a, b := run(), run()
	if len(a) == 0 {
		t.Fatal("no tokens generated")
	}
	if !slices.Equal(a, b) {
		t.Errorf("greedy generation differs:\n%v\n%v", a, b)
	}
	// greedy means argmax of the logits
	c := newContext(t, m, llama.ContextParams{NumCtx: 512})
	s, _ := llama.NewSampler(m, llama.SamplerParams{})
	defer s.Close()
	generate(t, c, s, prompt, 0)
	logits, err := c.Logits(-1)
	if err != nil {
		t.Fatal(err)
	}
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	if got, _ := s.Sample(c, -1); got != llama.Token(best) {
		t.Errorf("greedy sample %d, argmax %d", got, best)
	}
}

func TestSeed(t *testing.T) {
	m := tiny(t)
	prompt, _ := m.Tokenize("The llama", true, false)
	run := func(seed int64) []llama.Token {
		c := newContext(t, m, llama.ContextParams{NumCtx: 512})
		p := llama.DefaultSamplerParams()
		p.Temperature, p.TopK, p.TopP, p.Seed = 1.5, 0, 1, seed
		s, err := llama.NewSampler(m, p)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return generate(t, c, s, prompt, 32)
	}
	a, b := run(42), run(42)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different output:\n%v\n%v", a, b)
	}
	if c := run(43); slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 gave the same %d tokens", len(a))
	}
}

func TestSamplerOptions(t *testing.T) {
	m := tiny(t)
	prompt, _ := m.Tokenize("x", true, false)
	for name, p := range map[string]llama.SamplerParams{
		"ollama defaults": llama.DefaultSamplerParams(),
		"mirostat 1":      {Temperature: 0.8, Mirostat: 1, MirostatTau: 5, MirostatEta: 0.1, Seed: 1},
		"mirostat 2":      {Temperature: 0.8, Mirostat: 2, MirostatTau: 5, MirostatEta: 0.1, Seed: 1},
		"penalties":       {Temperature: 1, TopK: 50, TopP: 0.95, MinP: 0.05, TypicalP: 0.9, RepeatLastN: -1, RepeatPenalty: 1.3, PresencePenalty: 0.5, FrequencyPenalty: 0.5, Seed: 7},
		"logit bias":      {LogitBias: map[llama.Token]float32{100: 1000}},
	} {
		t.Run(name, func(t *testing.T) {
			c := newContext(t, m, llama.ContextParams{NumCtx: 256})
			s, err := llama.NewSampler(m, p)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, tok := range prompt {
				s.Accept(tok)
			}
			out := generate(t, c, s, prompt, 8)
			if len(out) == 0 {
				t.Fatal("nothing generated")
			}
			if name == "logit bias" && out[0] != 100 {
				t.Errorf("logit bias +1000 on token 100, first token %d", out[0])
			}
		})
	}
	for name, p := range map[string]llama.SamplerParams{
		"nan temperature": {Temperature: float32(math.NaN())},
		"mirostat 3":      {Mirostat: 3},
		"repeat_last_n":   {RepeatLastN: -2},
	} {
		if _, err := llama.NewSampler(m, p); !errors.Is(err, llama.ErrSampler) {
			t.Errorf("%s: err = %v, want ErrSampler", name, err)
		}
	}
}

func TestGrammar(t *testing.T) {
	m := tiny(t)
	prompt, _ := m.Tokenize("Answer:", true, false)

	t.Run("gbnf", func(t *testing.T) {
		for seed := int64(0); seed < 4; seed++ {
			c := newContext(t, m, llama.ContextParams{NumCtx: 256})
			s, err := llama.NewSampler(m, llama.SamplerParams{Temperature: 1, Seed: seed, Grammar: `root ::= ("yes" | "no") "."`})
			if err != nil {
				t.Fatal(err)
			}
			out := generate(t, c, s, prompt, 16)
			s.Close()
			text, _ := m.Detokenize(out, false, false)
			if text != "yes." && text != "no." {
				t.Errorf("seed %d: %q is not in the grammar's language", seed, text)
			}
		}
	})

	t.Run("json schema", func(t *testing.T) {
		schema := `{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer","minimum":0,"maximum":9}},"required":["ok","n"],"additionalProperties":false}`
		g, err := llama.JSONSchemaToGrammar([]byte(schema))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(g, "root ::=") {
			t.Fatalf("grammar has no root rule:\n%s", g)
		}
		for seed := int64(0); seed < 3; seed++ {
			c := newContext(t, m, llama.ContextParams{NumCtx: 512})
			s, err := llama.NewSampler(m, llama.SamplerParams{Temperature: 1, Seed: seed, Grammar: g})
			if err != nil {
				t.Fatal(err)
			}
			out := generate(t, c, s, prompt, 200)
			s.Close()
			text, _ := m.Detokenize(out, false, false)
			var v struct {
				OK *bool `json:"ok"`
				N  *int  `json:"n"`
			}
			dec := json.NewDecoder(strings.NewReader(text))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&v); err != nil || v.OK == nil || v.N == nil || *v.N < 0 || *v.N > 9 {
				t.Errorf("seed %d: output %q does not match the schema (%v)", seed, text, err)
			}
		}
	})

	t.Run("format json", func(t *testing.T) {
		g, err := llama.JSONGrammar()
		if err != nil {
			t.Fatal(err)
		}
		c := newContext(t, m, llama.ContextParams{NumCtx: 1024})
		s, err := llama.NewSampler(m, llama.SamplerParams{Temperature: 0.7, Seed: 3, Grammar: g, LogitBias: map[llama.Token]float32{m.EOS(): 5}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := generate(t, c, s, prompt, 400)
		text, _ := m.Detokenize(out, false, false)
		if !strings.HasPrefix(strings.TrimSpace(text), "{") {
			t.Errorf("format json output %q does not start an object", text)
		}
		if len(out) < 400 && !json.Valid([]byte(text)) {
			t.Errorf("finished output %q is not valid JSON", text)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for _, g := range []string{`root ::= "unterminated`, `root ::= undefined-rule`, `nonsense`} {
			if _, err := llama.NewSampler(m, llama.SamplerParams{Grammar: g}); !errors.Is(err, llama.ErrGrammar) {
				t.Errorf("grammar %q: err = %v, want ErrGrammar", g, err)
			}
		}
		if _, err := llama.NewSampler(m, llama.SamplerParams{Grammar: `root ::= "a"`, GrammarLazy: true}); !errors.Is(err, llama.ErrGrammar) {
			t.Errorf("lazy grammar without triggers: %v", err)
		}
		if _, err := llama.JSONSchemaToGrammar([]byte(`{"type":`)); !errors.Is(err, llama.ErrSchema) {
			t.Errorf("bad schema: %v", err)
		}
	})

	t.Run("lazy", func(t *testing.T) {
		// the grammar only applies after the trigger word: before it, output is free
		s, err := llama.NewSampler(m, llama.SamplerParams{Temperature: 0, Grammar: `root ::= "<call>" [0-9]+ "</call>"`, GrammarLazy: true,
			GrammarTriggers: []llama.GrammarTrigger{{Type: llama.TriggerWord, Value: "<call>"}}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c := newContext(t, m, llama.ContextParams{NumCtx: 256})
		free := newContext(t, m, llama.ContextParams{NumCtx: 256})
		fs, _ := llama.NewSampler(m, llama.SamplerParams{})
		defer fs.Close()
		if a, b := generate(t, c, s, prompt, 6), generate(t, free, fs, prompt, 6); !slices.Equal(a, b) {
			t.Errorf("untriggered lazy grammar changed greedy output: %v vs %v", a, b)
		}
	})
}

func TestBatchMultiSequence(t *testing.T) {
	m := tiny(t)
	ctx := context.Background()
	a, _ := m.Tokenize("first sequence here", true, false)
	b, _ := m.Tokenize("and a second, longer one", true, false)

	// reference: each alone
	ref := func(toks []llama.Token) []float32 {
		c := newContext(t, m, llama.ContextParams{NumCtx: 256})
		bt, _ := llama.NewBatch(len(toks), 1)
		defer bt.Close()
		for i, tok := range toks {
			bt.Add(tok, i, i == len(toks)-1)
		}
		if err := c.Decode(ctx, bt); err != nil {
			t.Fatal(err)
		}
		l, _ := c.Logits(-1)
		return slices.Clone(l)
	}
	ra, rb := ref(a), ref(b)

	c := newContext(t, m, llama.ContextParams{NumCtx: 512, NumSeqMax: 2})
	bt, err := llama.NewBatch(len(a)+len(b), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bt.Close()
	for i, tok := range a {
		bt.Add(tok, i, i == len(a)-1, 0)
	}
	for i, tok := range b {
		bt.Add(tok, i, i == len(b)-1, 1)
	}
	if err := bt.Add(1, 0, false, 0); !errors.Is(err, llama.ErrBatchFull) {
		t.Errorf("Add past capacity: %v, want ErrBatchFull", err)
	}
	if err := c.Decode(ctx, bt); err != nil {
		t.Fatal(err)
	}
	// Logits takes the token's index in the batch
	la, err := c.Logits(len(a) - 1)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := c.Logits(len(a) + len(b) - 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(la, ra); d > 1e-3 {
		t.Errorf("sequence 0 logits differ from a lone decode by %g", d)
	}
	if d := maxDiff(lb, rb); d > 1e-3 {
		t.Errorf("sequence 1 logits differ from a lone decode by %g", d)
	}
	if _, err := c.Logits(0); !errors.Is(err, llama.ErrNoOutput) {
		t.Errorf("Logits(0) of a token without output = %v, want ErrNoOutput", err)
	}
	if _, err := c.Logits(1000); !errors.Is(err, llama.ErrNoOutput) {
		t.Errorf("Logits(1000) = %v, want ErrNoOutput", err)
	}

	// KV cache per sequence
	if got := c.KVSeqPosMax(0); got != len(a)-1 {
		t.Errorf("KVSeqPosMax(0) = %d, want %d", got, len(a)-1)
	}
	if !c.KVSeqRemove(1, -1, -1) || c.KVSeqPosMax(1) != -1 {
		t.Error("removing sequence 1 failed")
	}
	if c.KVSeqPosMax(0) != len(a)-1 {
		t.Error("removing sequence 1 touched sequence 0")
	}
	// trim seq 0 to its first 2 tokens and redo the rest: same logits
	if !c.KVSeqRemove(0, 2, -1) || c.KVSeqPosMax(0) != 1 {
		t.Fatalf("partial remove: pos max %d", c.KVSeqPosMax(0))
	}
	bt.Clear()
	for i := 2; i < len(a); i++ {
		bt.Add(a[i], i, i == len(a)-1, 0)
	}
	if err := c.Decode(ctx, bt); err != nil {
		t.Fatal(err)
	}
	l, _ := c.Logits(-1)
	if d := maxDiff(l, ra); d > 1e-3 {
		t.Errorf("after KV trim and re-decode, logits differ by %g", d)
	}
	// copy seq 0 into 1, continue both with the same token: same logits
	c.KVSeqCopy(0, 1, -1, -1)
	bt.Clear()
	bt.Add(a[0], len(a), true, 0)
	bt.Add(a[0], len(a), true, 1)
	if err := c.Decode(ctx, bt); err != nil {
		t.Fatal(err)
	}
	l0, _ := c.Logits(0)
	l1, _ := c.Logits(1)
	if d := maxDiff(l0, l1); d > 1e-3 {
		t.Errorf("copied sequence diverges by %g", d)
	}
	c.KVSeqKeep(1)
	if c.KVSeqPosMax(0) != -1 || c.KVSeqPosMax(1) != len(a) {
		t.Errorf("KVSeqKeep(1): pos max %d, %d", c.KVSeqPosMax(0), c.KVSeqPosMax(1))
	}
	c.KVClear()
	if c.KVSeqPosMax(1) != -1 {
		t.Error("KVClear left tokens")
	}
	// invalid: a sequence id beyond NumSeqMax
	bt.Clear()
	bt.Add(1, 0, true, 7)
	if err := c.Decode(ctx, bt); !errors.Is(err, llama.ErrInvalidBatch) {
		t.Errorf("seq 7 of 2: %v, want ErrInvalidBatch", err)
	}
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestEmbeddings(t *testing.T) {
	m := tiny(t)
	ctx := context.Background()
	texts := []string{"the cat sat", "a completely different sentence about llamas"}
	c := newContext(t, m, llama.ContextParams{NumCtx: 512, NumSeqMax: 2, Embeddings: true, Pooling: llama.PoolingMean})
	b, _ := llama.NewBatch(64, 1)
	defer b.Close()
	for seq, s := range texts {
		toks, _ := m.Tokenize(s, true, false)
		for i, tok := range toks {
			b.Add(tok, i, true, seq)
		}
	}
	if err := c.Decode(ctx, b); err != nil {
		t.Fatal(err)
	}
	var vecs [][]float32
	for seq := range texts {
		v, err := c.SeqEmbeddings(seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != m.NumEmbd() {
			t.Fatalf("embedding length %d, want n_embd %d", len(v), m.NumEmbd())
		}
		llama.Normalize(v)
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		if math.Abs(n-1) > 1e-4 {
			t.Errorf("normalized norm² = %g", n)
		}
		vecs = append(vecs, v)
	}
	if maxDiff(vecs[0], vecs[1]) < 1e-6 {
		t.Error("different texts gave the same embedding")
	}
	// the same text alone gives the same vector (sequences do not mix)
	c2 := newContext(t, m, llama.ContextParams{NumCtx: 512, Embeddings: true, Pooling: llama.PoolingMean})
	b.Clear()
	toks, _ := m.Tokenize(texts[1], true, false)
	for i, tok := range toks {
		b.Add(tok, i, true)
	}
	if err := c2.Decode(ctx, b); err != nil {
		t.Fatal(err)
	}
	v, _ := c2.SeqEmbeddings(0)
	if d := maxDiff(llama.Normalize(v), vecs[1]); d > 1e-4 {
		t.Errorf("batched and lone embeddings differ by %g", d)
	}

	// per-token embeddings without pooling
	c3 := newContext(t, m, llama.ContextParams{NumCtx: 512, Embeddings: true, Pooling: llama.PoolingNone})
	if err := c3.Decode(ctx, b); err != nil {
		t.Fatal(err)
	}
	for i := range toks {
		e, err := c3.Embeddings(i)
		if err != nil || len(e) != m.NumEmbd() {
			t.Fatalf("token %d embedding: %d values, %v", i, len(e), err)
		}
	}
	if _, err := c3.SeqEmbeddings(0); !errors.Is(err, llama.ErrNoOutput) {
		t.Errorf("SeqEmbeddings without pooling: %v, want ErrNoOutput", err)
	}
	if llama.Normalize([]float32{0, 0})[0] != 0 {
		t.Error("Normalize(0) changed")
	}
}

func TestCancel(t *testing.T) {
	// default threads: the context's decoder thread; one thread: the
	// caller's thread
	for _, threads := range []int{0, 1} {
		t.Run(fmt.Sprintf("threads %d", threads), func(t *testing.T) { testCancel(t, threads) })
	}
}

func testCancel(t *testing.T, threads int) {
	m := tiny(t)
	c := newContext(t, m, llama.ContextParams{NumCtx: 512, NumThreads: threads})
	s, _ := llama.NewSampler(m, llama.SamplerParams{})
	defer s.Close()
	b, _ := llama.NewBatch(1, 1)
	defer b.Close()

	// a generation loop stops at the first Decode after cancel
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Add(m.BOS(), 0, true)
	n := 0
	var err error
	for pos := 1; pos < 100; pos++ {
		if err = c.Decode(ctx, b); err != nil {
			break
		}
		tok, _ := s.Sample(c, -1)
		n++
		if n == 5 {
			cancel()
		}
		b.Clear()
		b.Add(tok, pos, true)
	}
	if !errors.Is(err, llama.ErrAborted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrAborted and context.Canceled", err)
	}
	if n != 5 {
		t.Errorf("%d tokens decoded after cancel, want 0 (stopped after %d)", n-5, n)
	}
	// the context is usable again afterwards
	if err := c.Decode(context.Background(), b); err != nil {
		t.Errorf("decode after abort: %v", err)
	}
}

// TestCancelMidDecode cancels a long prompt decode while it runs: the abort
// callback must stop it well before it would finish.
func TestCancelMidDecode(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	m, _ := generated(t, testmodel.Spec{Name: "cancel", Vocab: 32000, Embedding: 256, Blocks: 4, FeedForward: 768, Heads: 4, Seed: 9})
	// default threads: the context's decoder thread; one thread: the
	// caller's thread
	for _, threads := range []int{0, 1} {
		t.Run(fmt.Sprintf("threads %d", threads), func(t *testing.T) { testCancelMidDecode(t, m, threads) })
	}
}

func testCancelMidDecode(t *testing.T, m *llama.Model, threads int) {
	c := newContext(t, m, llama.ContextParams{NumCtx: 2048, NumBatch: 2048, NumUBatch: 256, NumThreads: threads})
	b, _ := llama.NewBatch(2048, 1)
	defer b.Close()
	for i := 0; i < 2048; i++ {
		b.Add(llama.Token(100+i%1000), i, i == 2047)
	}
	start := time.Now()
	if err := c.Decode(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	c.KVClear()

	ctx, cancel := context.WithTimeout(context.Background(), full/10)
	defer cancel()
	start = time.Now()
	err := c.Decode(ctx, b)
	took := time.Since(start)
	if !errors.Is(err, llama.ErrAborted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v after %v (full decode %v), want ErrAborted", err, took, full)
	}
	if took > full/2 {
		t.Errorf("abort took %v; a full decode takes %v", took, full)
	}
	t.Logf("full decode %v, aborted after %v", full, took)
	// what was processed may stay; the rest of the cache is consistent
	if p := c.KVSeqPosMax(0); p >= 2047 {
		t.Errorf("aborted decode reached position %d", p)
	}
}

func TestClose(t *testing.T) {
	testenv.LlamaDir(t)
	path := testmodel.Tiny(t)
	m, err := llama.LoadModel(context.Background(), path, llama.DefaultModelParams())
	if err != nil {
		t.Fatal(err)
	}
	c, err := llama.NewContext(m, llama.ContextParams{NumCtx: 256})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := llama.NewSampler(m, llama.SamplerParams{Grammar: `root ::= "a"`})
	tmpl, err := llama.NewChatTemplates(m, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := llama.NewBatch(4, 1)
	// closing the model first keeps it alive for its dependents
	for i := 0; i < 2; i++ {
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b.Add(m.BOS(), 0, true)
	if err := c.Decode(context.Background(), b); err != nil {
		t.Errorf("decode on a context of a closed model: %v", err)
	}
	if _, err := llama.NewContext(m, llama.ContextParams{}); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("NewContext on closed model: %v, want ErrClosed", err)
	}
	for i := 0; i < 2; i++ {
		for _, cl := range []interface{ Close() error }{c, s, tmpl, b} {
			if err := cl.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Decode(context.Background(), b); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("Decode after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Sample(c, -1); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("Sample after Close: %v", err)
	}
	if err := b.Add(1, 0, false); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	if _, err := m.Tokenize("x", false, false); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("Tokenize after Close: %v", err)
	}
	if _, err := tmpl.Apply(llama.ChatInput{}); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("Apply after Close: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	testenv.LlamaDir(t)
	dir := t.TempDir()
	src, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badMagic := slices.Clone(src)
	copy(badMagic, "NOPE")
	cases := map[string]string{
		"truncated data":   write("trunc.gguf", src[:len(src)/2]),
		"truncated header": write("head.gguf", src[:64]),
		"empty":            write("empty.gguf", nil),
		"bad magic":        write("magic.gguf", badMagic),
		"text":             write("text.gguf", []byte("FROM llama3\n")),
		"directory":        dir,
	}
	for name, p := range cases {
		m, err := llama.LoadModel(context.Background(), p, llama.DefaultModelParams())
		if !errors.Is(err, llama.ErrLoad) {
			m.Close()
			t.Errorf("%s: err = %v, want ErrLoad", name, err)
		}
	}
	_, err = llama.LoadModel(context.Background(), filepath.Join(dir, "missing.gguf"), llama.DefaultModelParams())
	if !errors.Is(err, llama.ErrLoad) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := llama.LoadModel(ctx, testmodel.Tiny(t), llama.DefaultModelParams()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled load: %v", err)
	}
}

func TestQuantize(t *testing.T) {
	testenv.LlamaDir(t)
	dir := t.TempDir()
	in := testmodel.Tiny(t)
	ctx := context.Background()
	for _, ft := range []struct{ name, want string }{{"q8_0", "Q8_0"}, {"Q4_K_M", "Q4_K - Medium"}} {
		out := filepath.Join(dir, ft.name+".gguf")
		if err := llama.Quantize(ctx, in, out, llama.QuantizeParams{FileType: ft.name, Threads: 2}); err != nil {
			t.Fatalf("Quantize %s: %v", ft.name, err)
		}
		m, err := llama.LoadModel(ctx, out, llama.DefaultModelParams())
		if err != nil {
			t.Fatalf("load %s: %v", ft.name, err)
		}
		if m.FileType() != ft.want {
			t.Errorf("%s: FileType %q, want %q", ft.name, m.FileType(), ft.want)
		}
		c := newContext(t, m, llama.ContextParams{NumCtx: 256})
		s, _ := llama.NewSampler(m, llama.SamplerParams{})
		p, _ := m.Tokenize("hi", true, false)
		if len(generate(t, c, s, p, 4)) == 0 {
			t.Errorf("%s model generates nothing", ft.name)
		}
		s.Close()
		c.Close()
		m.Close()
	}
	err := llama.Quantize(ctx, filepath.Join(dir, "q8_0.gguf"), filepath.Join(dir, "again.gguf"), llama.QuantizeParams{FileType: "q4_0"})
	if !errors.Is(err, llama.ErrAlreadyQuantized) {
		t.Errorf("requantize: %v, want ErrAlreadyQuantized", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "again.gguf")); err == nil {
		t.Error("a refused quantize left an output file")
	}
	if err := llama.Quantize(ctx, in, filepath.Join(dir, "x.gguf"), llama.QuantizeParams{FileType: "q9_X"}); !errors.Is(err, llama.ErrUnknownFileType) {
		t.Errorf("unknown type: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestFileTypes(t *testing.T) {
	for _, name := range []string{"q4_k_m", "Q8_0", " f16 ", "bf16"} {
		if _, err := llama.ParseFileType(name); err != nil {
			t.Errorf("ParseFileType(%q): %v", name, err)
		}
	}
	if _, err := llama.ParseFileType("q1"); !errors.Is(err, llama.ErrUnknownFileType) {
		t.Errorf("ParseFileType(q1): %v", err)
	}
	if !slices.Contains(llama.FileTypes(), "Q4_K_M") {
		t.Error("FileTypes lacks Q4_K_M")
	}
}

// TestConcurrentModelUse shares one Model between goroutines: tokenizing
// concurrently, and decoding in two contexts at once.
func TestConcurrentModelUse(t *testing.T) {
	m := tiny(t)
	want, _ := m.Tokenize("the same text every time", true, false)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				got, err := m.Tokenize("the same text every time", true, false)
				if err != nil || !slices.Equal(got, want) {
					errs <- fmt.Sprintf("tokenize: %v %v", got, err)
					return
				}
			}
		}()
	}
	outs := make([][]llama.Token, 2)
	for g := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := llama.NewContext(m, llama.ContextParams{NumCtx: 256, NumThreads: 1})
			if err != nil {
				errs <- err.Error()
				return
			}
			defer c.Close()
			s, _ := llama.NewSampler(m, llama.SamplerParams{})
			defer s.Close()
			outs[g] = generate(t, c, s, want, 16)
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if !slices.Equal(outs[0], outs[1]) {
		t.Errorf("parallel greedy generations differ: %v vs %v", outs[0], outs[1])
	}
}
