package testmodel

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/olmhq/olm/internal/gguf"
)

// Spec describes a random-weight llama model for Generate. Zero fields take
// the defaults noted.
type Spec struct {
	// Name is general.name; "" means "olm test llama".
	Name string
	// Vocab is the number of tokens (at least 259: <unk>, <s>, </s> and the
	// 256 byte tokens; the rest are plain SentencePiece pieces).
	Vocab int
	// Embedding is the model width (embedding_length); a multiple of Heads.
	Embedding int
	// Blocks is the number of transformer blocks.
	Blocks int
	// FeedForward is the hidden width of the MLP.
	FeedForward int
	// Heads is the number of attention heads.
	Heads int
	// HeadsKV is the number of key/value heads; 0 means Heads.
	HeadsKV int
	// Context is the training context length; 0 means 4096.
	Context int
	// RopeFreqBase is rope.freq_base; 0 means 10000.
	RopeFreqBase float32
	// Seed selects the weights; the same Spec always gives the same bytes.
	Seed uint64
	// ChatTemplate, when set, is written as tokenizer.chat_template.
	ChatTemplate string
	// FIM gives the vocabulary fill-in-the-middle tokens, as code models
	// such as Qwen2.5-Coder have: its last three tokens become the control
	// tokens FIMPrefix, FIMSuffix and FIMMiddle, named in the metadata by
	// tokenizer.ggml.fim_{pre,suf,mid}_token_id (FIMTokenIDs returns them).
	// It needs Vocab ≥ 262. (omitempty keeps Cached's names of specs
	// without it as they were.)
	FIM bool `json:",omitempty"`
}

// The fill-in-the-middle tokens of a Spec with FIM set (Qwen's names, which
// llama.cpp also recognizes by text).
const (
	FIMPrefix = "<|fim_prefix|>"
	FIMSuffix = "<|fim_suffix|>"
	FIMMiddle = "<|fim_middle|>"
)

// FIMTokenIDs returns the IDs of the prefix, suffix and middle tokens of a
// model of spec s with FIM set.
func (s Spec) FIMTokenIDs() (pre, suf, mid int32) {
	n := int32(s.Vocab)
	return n - 3, n - 2, n - 1
}

// TinyLlama has the shape of the shared tiny model: F16 llama, 32000-token
// SPM vocabulary, width 8, one block (about 0.5M parameters).
var TinyLlama = Spec{Name: "olm tiny llama", Vocab: 32000, Embedding: 8, Blocks: 1, FeedForward: 32, Heads: 2, HeadsKV: 2, Seed: 1}

// BenchLlama is a compute-bound random llama of about 106M parameters
// (width 768, 8 blocks, 32000 tokens) for benchmarks; generate it into a
// cache folder, never into the repository (about 212 MB).
var BenchLlama = Spec{Name: "olm bench llama", Vocab: 32000, Embedding: 768, Blocks: 8, FeedForward: 2048, Heads: 12, HeadsKV: 12, Seed: 2}

// Params returns the number of parameters a model of spec s has.
func (s Spec) Params() uint64 {
	s = s.withDefaults()
	e, v, f := uint64(s.Embedding), uint64(s.Vocab), uint64(s.FeedForward)
	kv := e / uint64(s.Heads) * uint64(s.HeadsKV)
	block := 2*e + e*e*2 + 2*e*kv + 3*e*f
	return 2*e*v + e + uint64(s.Blocks)*block
}

func (s Spec) withDefaults() Spec {
	if s.Name == "" {
		s.Name = "olm test llama"
	}
	if s.HeadsKV == 0 {
		s.HeadsKV = s.Heads
	}
	if s.Context == 0 {
		s.Context = 4096
	}
	if s.RopeFreqBase == 0 {
		s.RopeFreqBase = 10000
	}
	return s
}

func (s Spec) check() error {
	switch {
	case s.Vocab < 259:
		return fmt.Errorf("testmodel: vocab %d < 259", s.Vocab)
	case s.Embedding <= 0 || s.Blocks <= 0 || s.FeedForward <= 0 || s.Heads <= 0:
		return fmt.Errorf("testmodel: embedding, blocks, feed-forward and heads must be positive")
	case s.Embedding%s.Heads != 0 || s.Heads%s.HeadsKV != 0:
		return fmt.Errorf("testmodel: embedding %d, heads %d, kv heads %d do not divide", s.Embedding, s.Heads, s.HeadsKV)
	case s.FIM && s.Vocab < 262:
		return fmt.Errorf("testmodel: vocab %d < 262 leaves no room for the FIM tokens", s.Vocab)
	case (s.Embedding/s.Heads)%2 != 0:
		return fmt.Errorf("testmodel: head size %d must be even for rope", s.Embedding/s.Heads)
	}
	return nil
}

// Vocabulary returns the SentencePiece-style vocabulary of a model with n
// tokens: tokens, scores and token types as llama.cpp's "llama" tokenizer
// expects them (<unk>, <s>, </s>, <0x00>…<0xFF>, then plain pieces, "▁"
// marking a word start, with falling scores).
func Vocabulary(n int) (tokens []string, scores []float32, types []int32) {
	const (
		normal  = 1
		unknown = 2
		control = 3
		byteTok = 6
	)
	tokens = make([]string, 0, n)
	scores = make([]float32, 0, n)
	types = make([]int32, 0, n)
	add := func(tok string, score float32, typ int32) {
		if len(tokens) < n {
			tokens, scores, types = append(tokens, tok), append(scores, score), append(types, typ)
		}
	}
	add("<unk>", 0, unknown)
	add("<s>", 0, control)
	add("</s>", 0, control)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, byteTok)
	}
	seen := make(map[string]bool, n)
	for _, t := range tokens {
		seen[t] = true
	}
	piece := func(p string) {
		if !seen[p] && len(tokens) < n {
			seen[p] = true
			add(p, -float32(len(tokens)), normal)
		}
	}
	var chars []string
	piece("▁")
	for c := byte(33); c < 127; c++ {
		chars = append(chars, string(c))
	}
	for _, c := range chars {
		piece(c)
	}
	for _, c := range chars {
		piece("▁" + c)
	}
	const letters = "etaoinshrdlcumwfgypbvkjxqz"
	for i := 0; i < len(letters); i++ {
		for j := 0; j < len(letters); j++ {
			piece(letters[i:i+1] + letters[j:j+1])
			piece("▁" + letters[i:i+1] + letters[j:j+1])
		}
	}
	for i := 0; i < len(letters) && len(tokens) < n; i++ {
		for j := 0; j < len(letters); j++ {
			for k := 0; k < len(letters); k++ {
				w := letters[i:i+1] + letters[j:j+1] + letters[k:k+1]
				piece(w)
				piece("▁" + w)
			}
		}
	}
	for i := 0; len(tokens) < n; i++ {
		piece("▁w" + strconv.Itoa(i))
	}
	return tokens, scores, types
}

// Header returns the GGUF header of a model of spec s.
func Header(s Spec) (gguf.Header, error) {
	s = s.withDefaults()
	if err := s.check(); err != nil {
		return gguf.Header{}, err
	}
	tokens, scores, types := Vocabulary(s.Vocab)
	var fim []gguf.KV
	if s.FIM {
		const control = 3
		pre, suf, mid := s.FIMTokenIDs()
		for id, text := range map[int32]string{pre: FIMPrefix, suf: FIMSuffix, mid: FIMMiddle} {
			tokens[id], scores[id], types[id] = text, 0, control
		}
		fim = []gguf.KV{
			{Key: "tokenizer.ggml.fim_pre_token_id", Value: gguf.Uint32(uint32(pre))},
			{Key: "tokenizer.ggml.fim_suf_token_id", Value: gguf.Uint32(uint32(suf))},
			{Key: "tokenizer.ggml.fim_mid_token_id", Value: gguf.Uint32(uint32(mid))},
		}
	}
	headDim := s.Embedding / s.Heads
	kv := []gguf.KV{
		{Key: "general.architecture", Value: gguf.String("llama")},
		{Key: "general.name", Value: gguf.String(s.Name)},
		{Key: "llama.context_length", Value: gguf.Uint32(uint32(s.Context))},
		{Key: "llama.embedding_length", Value: gguf.Uint32(uint32(s.Embedding))},
		{Key: "llama.block_count", Value: gguf.Uint32(uint32(s.Blocks))},
		{Key: "llama.feed_forward_length", Value: gguf.Uint32(uint32(s.FeedForward))},
		{Key: "llama.rope.dimension_count", Value: gguf.Uint32(uint32(headDim))},
		{Key: "llama.rope.freq_base", Value: gguf.Float32(s.RopeFreqBase)},
		{Key: "llama.attention.head_count", Value: gguf.Uint32(uint32(s.Heads))},
		{Key: "llama.attention.head_count_kv", Value: gguf.Uint32(uint32(s.HeadsKV))},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: gguf.Float32(1e-5)},
		{Key: "general.file_type", Value: gguf.Uint32(uint32(gguf.FileTypeF16))},
		{Key: "tokenizer.ggml.model", Value: gguf.String("llama")},
		{Key: "tokenizer.ggml.tokens", Value: gguf.ArrayOf(tokens)},
		{Key: "tokenizer.ggml.scores", Value: gguf.ArrayOf(scores)},
		{Key: "tokenizer.ggml.token_type", Value: gguf.ArrayOf(types)},
		{Key: "tokenizer.ggml.bos_token_id", Value: gguf.Uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: gguf.Uint32(2)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: gguf.Uint32(0)},
		{Key: "tokenizer.ggml.add_bos_token", Value: gguf.Bool(true)},
		{Key: "tokenizer.ggml.add_eos_token", Value: gguf.Bool(false)},
	}
	kv = append(kv, fim...)
	if s.ChatTemplate != "" {
		kv = append(kv, gguf.KV{Key: "tokenizer.chat_template", Value: gguf.String(s.ChatTemplate)})
	}
	e, v, f := uint64(s.Embedding), uint64(s.Vocab), uint64(s.FeedForward)
	kvDim := uint64(headDim * s.HeadsKV)
	f16 := func(name string, dims ...uint64) gguf.TensorInfo {
		return gguf.TensorInfo{Name: name, Type: gguf.TensorF16, Dims: dims}
	}
	f32 := func(name string, dims ...uint64) gguf.TensorInfo {
		return gguf.TensorInfo{Name: name, Type: gguf.TensorF32, Dims: dims}
	}
	ts := []gguf.TensorInfo{f16("token_embd.weight", e, v)}
	for i := 0; i < s.Blocks; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			f32(p+"attn_norm.weight", e),
			f16(p+"attn_q.weight", e, e),
			f16(p+"attn_k.weight", e, kvDim),
			f16(p+"attn_v.weight", e, kvDim),
			f16(p+"attn_output.weight", e, e),
			f32(p+"ffn_norm.weight", e),
			f16(p+"ffn_gate.weight", e, f),
			f16(p+"ffn_up.weight", e, f),
			f16(p+"ffn_down.weight", f, e),
		)
	}
	ts = append(ts, f32("output_norm.weight", e), f16("output.weight", e, v))
	return gguf.Header{KV: kv, Tensors: ts}, nil
}

// Generate writes a random-weight llama GGUF of spec s to path, atomically
// (a temporary file in the same folder, renamed into place). The weights
// are a deterministic function of s.Seed and the tensor name; norms are F32
// near 1, matrices F16 uniform in ±1/sqrt(fan-in).
func Generate(path string, s Spec) error {
	h, err := Header(s)
	if err != nil {
		return err
	}
	return writeGGUF(path, h, 1<<20, func(w *gguf.Writer) error {
		buf := make([]byte, 0, 64<<10)
		for _, t := range w.Tensors() {
			hsh := fnv.New64a()
			hsh.Write([]byte(t.Name))
			rng := rand.New(rand.NewPCG(s.Seed, hsh.Sum64()))
			n := t.Elements()
			scale := float32(1 / math.Sqrt(float64(t.Dims[0])))
			for i := uint64(0); i < n; i++ {
				x := (rng.Float32()*2 - 1)
				if t.Type == gguf.TensorF32 {
					buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(1+0.1*x))
				} else {
					buf = binary.LittleEndian.AppendUint16(buf, gguf.F32ToF16(x*scale))
				}
				if len(buf) >= cap(buf)-4 {
					if _, err := w.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		return nil
	})
}

// writeGGUF writes the GGUF file with header h to path atomically: into a
// temporary file beside it, through a buffer of bufSize bytes, with the
// tensor data from fill, then renamed into place. Nothing is left behind on
// error.
func writeGGUF(path string, h gguf.Header, bufSize int, fill func(w *gguf.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, bufSize)
	w, err := gguf.NewWriter(bw, h)
	if err == nil {
		err = fill(w)
	}
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
