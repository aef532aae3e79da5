package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
)

var llamaToHF = map[string]string{
	"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head",
	"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
	"attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
	"ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}

// ggufToHF writes a llama GGUF out as a Hugging Face checkpoint directory:
// the inverse of what Convert does, q/k rows un-permuted.
func ggufToHF(t *testing.T, path, dir string) *gguf.File {
	t.Helper()
	g, err := gguf.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	heads, kvHeads := int(g.HeadCount()), int(g.HeadCountKV())
	var ts []stEntry
	for _, ti := range g.Tensors {
		base := strings.TrimSuffix(ti.Name, ".weight")
		var hf string
		if b, ok := blockOf(ti.Name); ok {
			short := strings.TrimPrefix(base, fmt.Sprintf("blk.%d.", b))
			hf = fmt.Sprintf("model.layers.%d.%s.weight", b, llamaToHF[short])
		} else {
			hf = llamaToHF[base] + ".weight"
		}
		data, err := io.ReadAll(g.TensorData(f, ti))
		if err != nil {
			t.Fatal(err)
		}
		shape := make([]uint64, len(ti.Dims))
		for i, d := range ti.Dims {
			shape[len(shape)-1-i] = d
		}
		if n := map[string]int{"attn_q": heads, "attn_k": kvHeads}[base[strings.LastIndexByte(base, '.')+1:]]; n > 0 {
			rows := int(shape[0])
			rowBytes := len(data) / rows
			hd, half := rows/n, rows/n/2
			un := make([]byte, len(data))
			for h := 0; h < n; h++ {
				for i := 0; i < half; i++ {
					for k := 0; k < 2; k++ {
						from := (h*hd + 2*i + k) * rowBytes
						to := (h*hd + k*half + i) * rowBytes
						copy(un[to:to+rowBytes], data[from:from+rowBytes])
					}
				}
			}
			data = un
		}
		ts = append(ts, stEntry{hf, ti.Type.String(), shape, data})
	}
	writeSafetensors(t, filepath.Join(dir, "model.safetensors"), ts)
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": g.EmbeddingLength(), "num_hidden_layers": g.BlockCount(),
		"num_attention_heads": heads, "num_key_value_heads": kvHeads,
		"max_position_embeddings": g.ContextLength(), "torch_dtype": "float16",
	}
	ff, _ := g.ArchUint("feed_forward_length")
	cfg["intermediate_size"] = ff
	eps, _ := g.Float("llama.attention.layer_norm_rms_epsilon")
	cfg["rms_norm_eps"] = float32(eps)
	if fb, ok := g.Float("llama.rope.freq_base"); ok {
		cfg["rope_theta"] = fb
	}
	hfTokenizer(t, g, dir, cfg, 0)
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	return g
}

func convertDir(t *testing.T, dir string, opts Options) (string, *gguf.File) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.gguf")
	if err := ConvertFile(context.Background(), dir, out, opts); err != nil {
		t.Fatalf("ConvertFile: %v", err)
	}
	g, err := gguf.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, g
}

func llamaBench(t *testing.T, path string, gen int) {
	t.Helper()
	bench := testenv.LlamaBin(t, "llama-bench")
	out, err := exec.Command(bench, "-m", path, "-p", "8", "-n", fmt.Sprint(gen), "-r", "1", "-o", "csv").CombinedOutput()
	if err != nil {
		t.Fatalf("llama-bench does not load the converted model: %v\n%s", err, out)
	}
}

// TestRoundTripTiny writes the shared tiny GGUF out as a Hugging Face
// directory, converts it back and checks that every tensor is byte-for-byte
// the same and the metadata equal, so llama.cpp computes the same.
func TestRoundTripTiny(t *testing.T) {
	src := testmodel.Tiny(t)
	dir := t.TempDir()
	orig := ggufToHF(t, src, dir)
	out, conv := convertDir(t, dir, Options{Name: orig.Name()})
	of, _ := os.Open(src)
	defer of.Close()
	cf, _ := os.Open(out)
	defer cf.Close()
	if len(conv.Tensors) != len(orig.Tensors) {
		t.Fatalf("%d tensors, original has %d", len(conv.Tensors), len(orig.Tensors))
	}
	for _, ot := range orig.Tensors {
		ct, ok := conv.Tensor(ot.Name)
		if !ok {
			t.Errorf("tensor %s missing", ot.Name)
			continue
		}
		if ct.Type != ot.Type || fmt.Sprint(ct.Dims) != fmt.Sprint(ot.Dims) {
			t.Errorf("tensor %s: %s %v, original %s %v", ot.Name, ct.Type, ct.Dims, ot.Type, ot.Dims)
			continue
		}
		a, _ := io.ReadAll(orig.TensorData(of, ot))
		b, _ := io.ReadAll(conv.TensorData(cf, ct))
		if !bytes.Equal(a, b) {
			t.Errorf("tensor %s: data differs", ot.Name)
		}
	}
	extra := map[string]bool{"llama.vocab_size": true, "tokenizer.ggml.pre": true}
	for _, kv := range orig.KV {
		v, ok := conv.Value(kv.Key)
		if !ok || !v.Equal(kv.Value) {
			t.Errorf("metadata %s = %v, original %v", kv.Key, v, kv.Value)
		}
	}
	for _, kv := range conv.KV {
		if _, ok := orig.Value(kv.Key); !ok && !extra[kv.Key] {
			t.Errorf("unexpected metadata %s = %v", kv.Key, kv.Value)
		}
	}
	llamaBench(t, out, 8)
}

type archCase struct {
	name   string
	vocab  string // ggml-vocab-<vocab>.gguf
	spm    int    // SentencePiece pieces in tokenizer.model (rest are added tokens)
	synth  synthConfig
	cfg    map[string]any
	shards bool
	opts   Options
	// wantTypes maps tensor names to the type they must have.
	wantTypes map[string]gguf.TensorType
}

var archCases = []archCase{
	{name: "llama-spm", vocab: "llama-spm", synth: synthConfig{hfArch: "LlamaForCausalLM", embd: 64, heads: 4, kv: 2, ff: 128, layers: 2, dtype: "BF16"},
		cfg:       map[string]any{"rope_theta": 10000.0},
		wantTypes: map[string]gguf.TensorType{"blk.0.attn_q.weight": gguf.TensorBF16, "blk.0.attn_norm.weight": gguf.TensorF32, "output.weight": gguf.TensorBF16}},
	{name: "llama3-bpe", vocab: "llama-bpe", synth: synthConfig{hfArch: "LlamaForCausalLM", embd: 64, heads: 4, kv: 1, ff: 128, layers: 2, dtype: "BF16", tied: true},
		cfg:  map[string]any{"rope_theta": 500000.0, "rope_scaling": map[string]any{"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
		opts: Options{DType: "F16"}, shards: true,
		wantTypes: map[string]gguf.TensorType{"blk.1.attn_k.weight": gguf.TensorF16, "rope_freqs.weight": gguf.TensorF32}},
	{name: "mistral", vocab: "llama-spm", synth: synthConfig{hfArch: "MistralForCausalLM", embd: 64, heads: 4, kv: 2, ff: 128, layers: 1, dtype: "F32"},
		cfg:       map[string]any{"rope_theta": 1e6, "sliding_window": nil},
		wantTypes: map[string]gguf.TensorType{"blk.0.ffn_up.weight": gguf.TensorF16}},
	{name: "qwen2", vocab: "qwen2", synth: synthConfig{hfArch: "Qwen2ForCausalLM", embd: 64, heads: 4, kv: 2, ff: 128, layers: 2, dtype: "BF16", tied: true},
		cfg:       map[string]any{"rope_theta": 1e6},
		wantTypes: map[string]gguf.TensorType{"blk.0.attn_q.bias": gguf.TensorF32}},
	{name: "qwen3-gpt2", vocab: "gpt-2", synth: synthConfig{hfArch: "Qwen3ForCausalLM", embd: 64, heads: 4, kv: 2, ff: 128, layers: 2, headDim: 32, dtype: "BF16"},
		cfg:       map[string]any{"rope_theta": 1e6},
		opts:      Options{DType: "bf16"},
		wantTypes: map[string]gguf.TensorType{"blk.0.attn_q_norm.weight": gguf.TensorF32, "blk.0.attn_q.weight": gguf.TensorBF16}},
	{name: "gemma2", vocab: "llama-spm", synth: synthConfig{hfArch: "Gemma2ForCausalLM", embd: 64, heads: 4, kv: 2, ff: 128, layers: 2, headDim: 16, dtype: "BF16", tied: true},
		cfg:       map[string]any{"attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "sliding_window": 4096, "query_pre_attn_scalar": 16},
		wantTypes: map[string]gguf.TensorType{"blk.0.post_ffw_norm.weight": gguf.TensorF32}},
	{name: "gemma3", vocab: "llama-spm", synth: synthConfig{hfArch: "Gemma3ForConditionalGeneration", embd: 64, heads: 4, kv: 1, ff: 128, layers: 2, headDim: 16, dtype: "BF16", tied: true},
		cfg:       map[string]any{"sliding_window": 512, "rope_local_base_freq": 10000.0, "rope_theta": 1e6},
		wantTypes: map[string]gguf.TensorType{"blk.0.attn_k_norm.weight": gguf.TensorF32}},
	{name: "phi3", vocab: "phi-3", spm: 32000, synth: synthConfig{hfArch: "Phi3ForCausalLM", embd: 64, heads: 4, kv: 4, ff: 128, layers: 2, dtype: "BF16"},
		cfg:       map[string]any{"rope_theta": 10000.0, "max_position_embeddings": 4096, "original_max_position_embeddings": 4096},
		wantTypes: map[string]gguf.TensorType{"blk.0.attn_qkv.weight": gguf.TensorBF16}},
	{name: "phi3-128k", vocab: "phi-3", spm: 32000, synth: synthConfig{hfArch: "Phi3ForCausalLM", embd: 64, heads: 4, kv: 4, ff: 128, layers: 1, dtype: "BF16"},
		cfg: map[string]any{"rope_theta": 10000.0, "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
			"rope_scaling": map[string]any{"type": "longrope",
				"long_factor":  []float64{1, 1.1, 1.3, 1.7, 2.5, 4, 7, 12},
				"short_factor": []float64{1, 1, 1, 1.05, 1.1, 1.2, 1.3, 1.5}}},
		wantTypes: map[string]gguf.TensorType{"rope_factors_long.weight": gguf.TensorF32, "rope_factors_short.weight": gguf.TensorF32}},
	{name: "bert", vocab: "bert-bge", synth: synthConfig{hfArch: "BertModel", embd: 64, heads: 4, kv: 4, ff: 128, layers: 2, dtype: "F32"},
		cfg:       map[string]any{"max_position_embeddings": 512},
		wantTypes: map[string]gguf.TensorType{"position_embd.weight": gguf.TensorF32, "blk.0.attn_q.weight": gguf.TensorF16, "blk.0.attn_q.bias": gguf.TensorF32}},
}

func vocabPath(t testing.TB, name string) string {
	return filepath.Join(testenv.LlamaSource(t), "models", "ggml-vocab-"+name+".gguf")
}

// buildCase writes the checkpoint directory of c and returns it with the
// source vocabulary.
func buildCase(t *testing.T, c archCase) (string, *gguf.File) {
	t.Helper()
	vg, err := gguf.ReadFile(vocabPath(t, c.vocab))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := map[string]any{}
	for k, v := range c.cfg {
		if v != nil {
			cfg[k] = v
		}
	}
	hfTokenizer(t, vg, dir, cfg, c.spm)
	writeJSON(t, filepath.Join(dir, "generation_config.json"), map[string]any{"do_sample": true, "temperature": 0.6, "top_p": 0.9, "top_k": 20, "repetition_penalty": 1.05})
	if c.synth.hfArch == "BertModel" {
		// sentence-transformers layout: CLS pooling
		writeJSON(t, filepath.Join(dir, "modules.json"), []map[string]any{
			{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
			{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
		})
		os.MkdirAll(filepath.Join(dir, "1_Pooling"), 0o755)
		writeJSON(t, filepath.Join(dir, "1_Pooling", "config.json"), map[string]any{"word_embedding_dimension": c.synth.embd, "pooling_mode_cls_token": true})
	}
	tokens, _ := vg.Strings("tokenizer.ggml.tokens")
	writeSynthetic(t, dir, c.synth, cfg, len(tokens), c.shards)
	return dir, vg
}

// TestArchitectures converts a small random checkpoint of every supported
// architecture, each with a real tokenizer rebuilt from one of llama.cpp's
// vocabularies, checks the tokenizer metadata equals the vocabulary's,
// loads the result in llama.cpp (llama-bench), and, in cgo builds, checks
// that the converted GGUF tokenizes the vocabulary's test inputs (.inp) to
// exactly the expected ids (.out) through the runtime binding.
func TestArchitectures(t *testing.T) {
	vectors := map[string]bool{}
	ran := 0
	for _, c := range archCases {
		t.Run(c.name, func(t *testing.T) {
			ran++
			dir, vg := buildCase(t, c)
			out, g := convertDir(t, dir, c.opts)
			info, err := Detect(dir)
			if err != nil {
				t.Fatal(err)
			}
			if info.Architecture != g.Architecture() || info.Params != g.ParameterCount() || info.Tensors != len(g.Tensors) {
				t.Errorf("Detect = %+v; converted %s, %d params, %d tensors", info, g.Architecture(), g.ParameterCount(), len(g.Tensors))
			}
			for key, want := range map[string]gguf.Value{
				"general.sampling.temp": gguf.Float32(0.6), "general.sampling.top_p": gguf.Float32(0.9),
				"general.sampling.top_k": gguf.Int32(20), "general.sampling.penalty_repeat": gguf.Float32(1.05),
			} {
				if v, _ := g.Value(key); !v.Equal(want) {
					t.Errorf("%s = %v, want %v (generation_config.json)", key, v, want)
				}
			}
			for name, typ := range c.wantTypes {
				if ti, ok := g.Tensor(name); !ok || ti.Type != typ {
					t.Errorf("tensor %s: %v (present %v), want %s", name, ti.Type, ok, typ)
				}
			}
			for _, kv := range vg.KV {
				if !strings.HasPrefix(kv.Key, "tokenizer.") || (kv.Key == "tokenizer.ggml.pre" && c.vocab == "bert-bge") {
					continue // bert-bge's pre name comes from hashing HF tokenizer output; llama.cpp ignores it for WordPiece
				}
				want := kv.Value
				if kv.Key == "tokenizer.ggml.token_type" {
					want = padAsUnused(vg)
				}
				v, ok := g.Value(kv.Key)
				if !ok || !v.Equal(want) {
					t.Errorf("%s = %v, vocabulary has %v", kv.Key, v, kv.Value)
				}
			}
			gen := 8
			if c.synth.hfArch == "BertModel" {
				gen = 0
				if p, _ := g.Uint("bert.pooling_type"); p != 2 {
					t.Errorf("bert.pooling_type = %d, want 2 (CLS, from 1_Pooling/config.json)", p)
				}
				if l, ok := g.Bool("tokenizer.ggml.normalizer.lowercase"); !ok || !l {
					t.Errorf("tokenizer.ggml.normalizer.lowercase = %v, %v; want true (BertNormalizer)", l, ok)
				}
				if _, ok := g.Value("tokenizer.ggml.normalizer.strip_accents"); ok {
					t.Error("strip_accents written though BertNormalizer leaves it null")
				}
				if c, ok := g.Bool("bert.attention.causal"); !ok || c {
					t.Errorf("bert.attention.causal = %v, %v; want false", c, ok)
				}
			}
			llamaBench(t, out, gen)
			// Gemma turns SentencePiece's dummy space prefix off, so the
			// llama-spm vectors (which have it) do not apply there.
			prefix, _ := g.Bool("tokenizer.ggml.add_space_prefix")
			if _, set := g.Value("tokenizer.ggml.add_space_prefix"); set && !prefix {
				return
			}
			if checkConverted != nil && checkConverted(t, c, out) {
				vectors[c.vocab] = true
			}
		})
	}
	if checkConverted != nil && !t.Failed() && ran == len(archCases) {
		for _, v := range []string{"llama-spm", "llama-bpe", "qwen2", "gpt-2", "phi-3", "bert-bge"} {
			if !vectors[v] {
				t.Errorf("the test vectors of vocabulary %s were not checked", v)
			}
		}
	}
}

// checkConverted, when set (by the cgo-only llama_test.go), runs further
// checks through llama.cpp's API on a converted case: tokenizer test vectors.
// It reports whether the case's vocabulary had test vectors.
var checkConverted func(t *testing.T, c archCase, out string) bool

// padAsUnused returns the vocabulary's token types with "[PADn]" filler
// tokens typed UNUSED: the phi-3 vocabulary was written by an older
// converter that typed them UNKNOWN, the pinned one (phi.py set_vocab)
// types them UNUSED, as convert does.
func padAsUnused(vg *gguf.File) gguf.Value {
	tokens, _ := vg.Strings("tokenizer.ggml.tokens")
	ta, _ := vg.Array("tokenizer.ggml.token_type")
	types, _ := gguf.Elems[int32](ta)
	out := append([]int32(nil), types...)
	for i, tok := range tokens {
		if tok == fmt.Sprintf("[PAD%d]", i) && out[i] == tokUnknown {
			out[i] = tokUnused
		}
	}
	return gguf.ArrayOf(out)
}

func TestRefusals(t *testing.T) {
	base := archCases[0]
	tests := []struct {
		name string
		edit func(t *testing.T, dir string)
		opts Options
		want error
		msg  string
	}{
		{"architecture", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["architectures"] = []string{"MambaForCausalLM"} })
		}, Options{}, ErrUnsupported, "MambaForCausalLM; supported: "},
		{"dtype", func(t *testing.T, dir string) {
			writeSafetensors(t, filepath.Join(dir, "model.safetensors"), []stEntry{{"model.embed_tokens.weight", "I8", []uint64{2, 2}, make([]byte, 4)}})
		}, Options{}, ErrUnsupported, "dtype I8; supported: F32, F16, BF16"},
		{"output dtype", nil, Options{DType: "Q4_0"}, ErrUnsupported, `"Q4_0"; supported: F16, BF16, F32`},
		{"no config", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "config.json")) }, Options{}, ErrNotFound, "config.json"},
		{"pytorch bin", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model.safetensors"))
			os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("x"), 0o644)
		}, Options{}, ErrUnsupported, "only safetensors"},
		{"truncated shard", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-10], 0o644)
		}, Options{}, ErrInvalid, "outside the file"},
		{"unknown tensor", func(t *testing.T, dir string) {
			writeSafetensors(t, filepath.Join(dir, "model.safetensors"), []stEntry{{"model.layers.0.mystery.weight", "F16", []uint64{2}, make([]byte, 4)}})
		}, Options{}, ErrUnsupported, `"model.layers.0.mystery.weight"`},
		{"huge vocab_size", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["vocab_size"] = 1 << 40 })
		}, Options{}, ErrInvalid, "vocab_size 1099511627776"},
		{"no tokenizer", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "tokenizer.model")) }, Options{}, ErrNotFound, "tokenizer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := buildCase(t, base)
			if tt.edit != nil {
				tt.edit(t, dir)
			}
			out := filepath.Join(t.TempDir(), "x.gguf")
			err := ConvertFile(context.Background(), dir, out, tt.opts)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a failed conversion left %s behind", out)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	dir, _ := buildCase(t, archCases[0])
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Convert(ctx, dir, io.Discard, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func editConfig(t *testing.T, dir string, f func(map[string]any)) {
	t.Helper()
	h, err := readConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	f(h)
	writeJSON(t, filepath.Join(dir, "config.json"), map[string]any(h))
}

func FuzzSafetensorsHeader(f *testing.F) {
	dir := f.TempDir()
	writeSafetensors(f, filepath.Join(dir, "a.safetensors"), []stEntry{{"x", "F16", []uint64{2, 3}, make([]byte, 12)}, {"y", "BF16", []uint64{1}, make([]byte, 2)}})
	b, _ := os.ReadFile(filepath.Join(dir, "a.safetensors"))
	f.Add(b)
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":{}}        "))
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := readSafetensors(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			return
		}
		for _, x := range ts {
			if x.begin < 8 || x.begin+x.size > int64(len(b)) {
				t.Fatalf("tensor %q at %d+%d outside %d bytes", x.Name, x.begin, x.size, len(b))
			}
		}
	})
}

func FuzzSentencePiece(f *testing.F) {
	f.Add(appendSentencePiece(nil, []spPiece{{"<unk>", 0, tokUnknown}, {"▁a", -1, tokNormal}, {"<0x00>", 0, tokByte}}, 2))
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseSentencePiece(b)
		if err != nil {
			return
		}
		re, err := parseSentencePiece(appendSentencePiece(nil, m.pieces, m.modelType))
		if err != nil || len(re.pieces) != len(m.pieces) {
			t.Fatalf("re-encoded model does not parse the same: %v", err)
		}
	})
}

// TestConvertElems checks the table and parallel fast paths against the
// element-by-element conversion.
func TestConvertElems(t *testing.T) {
	src := make([]byte, 2<<20+6)
	for i := range src {
		src[i] = byte(i*7919 + i>>8)
	}
	for _, c := range [][2]string{{"BF16", "F16"}, {"F16", "BF16"}} {
		fast := convertElems(nil, src, c[0], c[1], false)
		if len(fast) != len(src) {
			t.Fatalf("%s->%s: %d bytes from %d", c[0], c[1], len(fast), len(src))
		}
		for i := 0; i < len(src); i += 2 {
			x := uint16(src[i]) | uint16(src[i+1])<<8
			var want uint16
			if c[0] == "BF16" {
				want = gguf.F32ToF16(gguf.BF16ToF32(x))
			} else {
				want = gguf.F32ToBF16(gguf.F16ToF32(x))
			}
			if got := uint16(fast[i]) | uint16(fast[i+1])<<8; got != want {
				t.Fatalf("%s->%s element %d (%#04x): %#04x, want %#04x", c[0], c[1], i/2, x, got, want)
			}
		}
	}
	// addOne goes element by element: 1.5 (BF16 0x3fc0) + 1 = 2.5 (F32).
	got := convertElems(nil, []byte{0xc0, 0x3f}, "BF16", "F32", true)
	if f := math.Float32frombits(binary.LittleEndian.Uint32(got)); f != 2.5 {
		t.Errorf("1.5 + 1 = %v", f)
	}
}

// TestPermuteRows checks the q/k row order against llama.cpp's
// LlamaModel.permute (reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)): with
// one head of 6 rows the GGUF rows are HF rows 0,3,1,4,2,5; with two heads
// of 4 rows, 0,2,1,3 then 4,6,5,7.
func TestPermuteRows(t *testing.T) {
	for _, c := range []struct {
		heads, rows int
		want        []int
	}{
		{1, 6, []int{0, 3, 1, 4, 2, 5}},
		{2, 8, []int{0, 2, 1, 3, 4, 6, 5, 7}},
	} {
		dir := t.TempDir()
		var data []byte
		for r := 0; r < c.rows; r++ { // row r holds the F32 value r in both columns
			for k := 0; k < 2; k++ {
				data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(r)))
			}
		}
		path := filepath.Join(dir, "m.safetensors")
		writeSafetensors(t, path, []stEntry{{"model.layers.0.self_attn.q_proj.weight", "F32", []uint64{uint64(c.rows), 2}, data}})
		ck, err := openCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		p := plan{src: ck.tensors[0], rows: uint64(c.rows), rowElems: 2, permute: c.heads,
			info: gguf.TensorInfo{Name: "blk.0.attn_q.weight", Type: gguf.TensorF32, Dims: []uint64{2, uint64(c.rows)}}}
		var out bytes.Buffer
		if err := p.emit(context.Background(), &out, make([]byte, chunkSize), nil, func(int) {}); err != nil {
			t.Fatal(err)
		}
		for r, want := range c.want {
			got := math.Float32frombits(binary.LittleEndian.Uint32(out.Bytes()[r*8:]))
			if got != float32(want) {
				t.Errorf("%d heads: GGUF row %d holds HF row %v, want %d", c.heads, r, got, want)
			}
		}
	}
}

func TestNormalizerFlags(t *testing.T) {
	for _, c := range []struct {
		json         string
		lower, strip string
	}{
		{`{"type":"BertNormalizer","lowercase":false,"strip_accents":null}`, "false", "nil"},
		{`{"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"Lowercase"},{"type":"StripAccents"}]}`, "true", "true"},
		{`{"type":"NFC"}`, "nil", "nil"},
	} {
		var x any
		json.Unmarshal([]byte(c.json), &x)
		l, s := normalizerFlags(x)
		str := func(b *bool) string {
			if b == nil {
				return "nil"
			}
			return fmt.Sprint(*b)
		}
		if str(l) != c.lower || str(s) != c.strip {
			t.Errorf("normalizerFlags(%s) = %s, %s; want %s, %s", c.json, str(l), str(s), c.lower, c.strip)
		}
	}
}

func TestDetectPre(t *testing.T) {
	split := func(re string) string {
		b, _ := json.Marshal(map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": re}, "behavior": "Isolated"},
			map[string]any{"type": "ByteLevel", "use_regex": false},
		}})
		return string(b)
	}
	for _, c := range []struct{ json, want string }{
		{`{"type":"ByteLevel","add_prefix_space":false}`, "gpt-2"},
		{`{"type":"ByteLevel","use_regex":false}`, "default"},
		{split(`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`), "llama-bpe"},
		{split(`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`), "qwen2"},
		{split(`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`), "tekken"},
		{split(`\p{N}+`), "default"},
		{`null`, "default"},
	} {
		if got := detectPre(json.RawMessage(c.json)); got != c.want {
			t.Errorf("detectPre(%s) = %q, want %q", c.json, got, c.want)
		}
	}
}

// TestWriteHFMatchesGenerate converts testmodel.WriteHF's directory and
// compares it with testmodel.Generate's GGUF of the same spec: the same
// tensors byte for byte (an independent check of the q/k permutation, since
// WriteHF un-permutes with its own code) and the same metadata.
func TestWriteHFMatchesGenerate(t *testing.T) {
	spec := testmodel.Spec{Name: "hf", Vocab: 600, Embedding: 32, Blocks: 2, FeedForward: 64, Heads: 4, HeadsKV: 2, Seed: 5}
	dir := t.TempDir()
	if err := testmodel.WriteHF(dir, spec); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(t.TempDir(), "want.gguf")
	if err := testmodel.Generate(want, spec); err != nil {
		t.Fatal(err)
	}
	got, g := convertDir(t, dir, Options{Name: "hf"})
	w, err := gguf.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	gf, _ := os.Open(got)
	defer gf.Close()
	wf, _ := os.Open(want)
	defer wf.Close()
	if len(g.Tensors) != len(w.Tensors) {
		t.Fatalf("%d tensors, want %d", len(g.Tensors), len(w.Tensors))
	}
	for _, wt := range w.Tensors {
		gt, ok := g.Tensor(wt.Name)
		if !ok || gt.Type != wt.Type || fmt.Sprint(gt.Dims) != fmt.Sprint(wt.Dims) {
			t.Errorf("tensor %s: %+v, want %+v", wt.Name, gt, wt)
			continue
		}
		a, _ := io.ReadAll(g.TensorData(gf, gt))
		b, _ := io.ReadAll(w.TensorData(wf, wt))
		if !bytes.Equal(a, b) {
			t.Errorf("tensor %s differs", wt.Name)
		}
	}
	// Metadata Generate writes that an HF directory does not carry.
	absent := map[string]bool{"tokenizer.ggml.unknown_token_id": true}
	for _, kv := range w.KV {
		v, ok := g.Value(kv.Key)
		if absent[kv.Key] {
			continue
		}
		if !ok || !v.Equal(kv.Value) {
			t.Errorf("%s = %v, Generate wrote %v", kv.Key, v, kv.Value)
		}
	}
	if v, _ := g.Float("general.sampling.temp"); math.Abs(v-0.7) > 1e-6 {
		t.Errorf("general.sampling.temp = %v, want 0.7 from generation_config.json", v)
	}
	llamaBench(t, got, 8)
}

// TestBPEWithoutMerges: a BPE tokenizer.json whose merges list is empty or
// absent (a tokenizer that never merges) converts to a GGUF with an empty
// tokenizer.ggml.merges array, which llama.cpp loads; without the key it
// refuses the vocabulary ("cannot find tokenizer merges").
func TestBPEWithoutMerges(t *testing.T) {
	var c archCase
	for _, a := range archCases {
		if a.name == "qwen3-gpt2" {
			c = a
		}
	}
	for _, tc := range []struct {
		name string
		edit func(model map[string]any)
	}{
		{"empty", func(m map[string]any) { m["merges"] = []string{} }},
		{"absent", func(m map[string]any) { delete(m, "merges") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := buildCase(t, c)
			p := filepath.Join(dir, "tokenizer.json")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var tj map[string]any
			if err := json.Unmarshal(b, &tj); err != nil {
				t.Fatal(err)
			}
			tc.edit(tj["model"].(map[string]any))
			writeJSON(t, p, tj)
			out, g := convertDir(t, dir, Options{})
			v, ok := g.Value("tokenizer.ggml.merges")
			if !ok {
				t.Fatal("no tokenizer.ggml.merges")
			}
			if merges, ok := g.Strings("tokenizer.ggml.merges"); !ok || len(merges) != 0 {
				t.Fatalf("tokenizer.ggml.merges = %v, want an empty string array", v)
			}
			llamaBench(t, out, 2)
		})
	}
}

// TestConvert16Exhaustive checks every BF16 and F16 bit pattern, in order
// (runs of four in the fast range take the 64-bit path) and shuffled,
// converted into another buffer, in place, and from an unaligned start,
// against the element-by-element conversion.
func TestConvert16Exhaustive(t *testing.T) {
	const n = 1 << 16
	ordered := make([]byte, 0, 4*n)
	for r := 0; r < 2; r++ { // twice: big enough to split across goroutines
		for i := 0; i < n; i++ {
			ordered = binary.LittleEndian.AppendUint16(ordered, uint16(i))
		}
	}
	shuffled := slices.Clone(ordered)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := len(shuffled)/2 - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		a, b := shuffled[2*i:2*i+2], shuffled[2*j:2*j+2]
		a[0], a[1], b[0], b[1] = b[0], b[1], a[0], a[1]
	}
	for _, srcType := range []string{"BF16", "F16"} {
		want := func(x uint16) uint16 {
			if srcType == "BF16" {
				return gguf.F32ToF16(gguf.BF16ToF32(x))
			}
			return gguf.F32ToBF16(gguf.F16ToF32(x))
		}
		for name, src := range map[string][]byte{"ordered": ordered, "shuffled": shuffled, "unaligned": ordered[2 : len(ordered)-4]} {
			check := func(how string, got []byte) {
				t.Helper()
				for i := 0; i < len(src); i += 2 {
					x := binary.LittleEndian.Uint16(src[i:])
					if g := binary.LittleEndian.Uint16(got[i:]); g != want(x) {
						t.Fatalf("%s %s %s: element %d (%#04x) = %#04x, want %#04x", srcType, name, how, i/2, x, g, want(x))
					}
				}
			}
			out := make([]byte, len(src))
			convert16(out, src, srcType)
			check("copy", out)
			in := slices.Clone(src)
			convert16(in, in, srcType)
			check("in place", in)
		}
	}
}

// TestMappedFileTruncated: a safetensors file cut short while it is being
// converted (its mapping now faults) gives an error, not a crash, both in
// the parallel BF16→F16 conversion and when bytes pass through.
func TestMappedFileTruncated(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.safetensors")
	const size = 4 << 20
	if err := os.WriteFile(p, bytes.Repeat([]byte{0x80, 0x3f}, size/2), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := mapFile(f, size)
	if m == nil {
		t.Fatal("cannot map the file")
	}
	defer unmapFile(m)
	out := make([]byte, size)
	if err := convert16(out, m, "BF16"); err != nil || binary.LittleEndian.Uint16(out) != 0x3c00 {
		t.Fatalf("convert16 of the intact file: %#04x, %v", binary.LittleEndian.Uint16(out), err)
	}
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	if err := convert16(out, m, "BF16"); err == nil || !errors.Is(err, ErrInvalid) {
		t.Fatalf("convert16 of a truncated mapping: %v", err)
	}
	pl := &plan{src: &stTensor{Name: "x", DType: "F16", file: &stFile{data: m}}, info: gguf.TensorInfo{Name: "x", Type: gguf.TensorF16}}
	var sink bytes.Buffer
	err = pl.emitMapped(context.Background(), &sink, m, 0, size, make([]byte, chunkSize), nil, func(int) {})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "changed while being converted") {
		t.Fatalf("pass-through of a truncated mapping: %v", err)
	}
}
