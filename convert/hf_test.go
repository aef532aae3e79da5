package convert

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/olmhq/olm/internal/gguf"
)

// Test helpers that write Hugging Face checkpoint directories.

type stEntry struct {
	name  string
	dtype string
	shape []uint64 // PyTorch order
	data  []byte
}

func writeSafetensors(t testing.TB, path string, ts []stEntry) {
	t.Helper()
	type hdr struct {
		DType   string   `json:"dtype"`
		Shape   []uint64 `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	h := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off int64
	for _, e := range ts {
		h[e.name] = hdr{e.dtype, e.shape, [2]int64{off, off + int64(len(e.data))}}
		off += int64(len(e.data))
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], uint64(len(b)))
	f.Write(lb[:])
	f.Write(b)
	for _, e := range ts {
		if _, err := f.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// randTensor makes a tensor of random values in ±scale of dtype.
func randTensor(rng *rand.Rand, name, dtype string, scale float32, shape ...uint64) stEntry {
	n := uint64(1)
	for _, d := range shape {
		n *= d
	}
	var b []byte
	for i := uint64(0); i < n; i++ {
		f := (rng.Float32()*2 - 1) * scale
		switch dtype {
		case "F32":
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		case "F16":
			b = binary.LittleEndian.AppendUint16(b, gguf.F32ToF16(f))
		case "BF16":
			b = binary.LittleEndian.AppendUint16(b, gguf.F32ToBF16(f))
		}
	}
	return stEntry{name, dtype, shape, b}
}

// hfTokenizer writes the tokenizer files of a vocabulary GGUF into dir as
// a Hugging Face checkpoint has them: tokenizer.model for SentencePiece
// vocabularies (with tokens from spmCount on as added tokens of
// tokenizer_config.json), tokenizer.json for BPE and WordPiece ones. It
// adds the special token ids and vocab_size to cfg.
func hfTokenizer(t testing.TB, g *gguf.File, dir string, cfg map[string]any, spmCount int) {
	t.Helper()
	tokens, _ := g.Strings("tokenizer.ggml.tokens")
	ta, _ := g.Array("tokenizer.ggml.token_type")
	types, _ := gguf.Elems[int32](ta)
	model, _ := g.String("tokenizer.ggml.model")
	cfg["vocab_size"] = len(tokens)
	tc := map[string]any{}
	for typ, key := range specialKeys {
		if id, ok := g.Uint(key); ok {
			if model != "llama" && (types[id] == tokControl || types[id] == tokUserDefined) {
				// an added token of tokenizer.json: name it in
				// tokenizer_config.json as HF does, for the converter to look up
				tc[typ+"_token"] = map[string]any{"content": tokens[id], "special": true}
				continue
			}
			cfg[typ+"_token_id"] = id
		}
	}
	for _, k := range []string{"bos", "eos"} {
		if b, ok := g.Bool("tokenizer.ggml.add_" + k + "_token"); ok {
			tc["add_"+k+"_token"] = b
		}
	}
	if s := g.ChatTemplate(); s != "" {
		tc["chat_template"] = s
	}
	switch model {
	case "llama":
		sa, _ := g.Array("tokenizer.ggml.scores")
		scores, _ := gguf.Elems[float32](sa)
		if spmCount <= 0 || spmCount > len(tokens) {
			spmCount = len(tokens)
		}
		var pieces []spPiece
		for i := 0; i < spmCount; i++ {
			pieces = append(pieces, spPiece{tokens[i], scores[i], types[i]})
		}
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), appendSentencePiece(nil, pieces, 1), 0o644); err != nil {
			t.Fatal(err)
		}
		dec := map[string]any{}
		for i := spmCount; i < len(tokens); i++ {
			if tokens[i] == fmt.Sprintf("[PAD%d]", i) {
				continue // filler the converter makes itself for ids past the tokenizer
			}
			dec[fmt.Sprint(i)] = map[string]any{"content": tokens[i], "special": types[i] == tokControl}
		}
		if len(dec) > 0 {
			tc["added_tokens_decoder"] = dec
		}
	case "gpt2", "bert":
		vocab := map[string]int{}
		var added []addedToken
		for i, s := range tokens {
			if types[i] == tokControl || types[i] == tokUserDefined {
				added = append(added, addedToken{ID: i, Content: s, Special: types[i] == tokControl})
				continue
			}
			if model == "bert" {
				if strings.HasPrefix(s, "▁") {
					s = strings.TrimPrefix(s, "▁")
				} else {
					s = "##" + s
				}
			}
			vocab[s] = i
		}
		tj := map[string]any{"version": "1.0", "added_tokens": added}
		if model == "bert" {
			tj["model"] = map[string]any{"type": "WordPiece", "unk_token": "[UNK]", "vocab": vocab}
			tj["pre_tokenizer"] = map[string]any{"type": "BertPreTokenizer"}
			tj["normalizer"] = map[string]any{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": nil, "lowercase": true}
		} else {
			merges, _ := g.Strings("tokenizer.ggml.merges")
			var mj any = merges
			if len(merges)%2 == 1 { // exercise the newer pair format too
				pairs := make([][2]string, len(merges))
				for i, m := range merges {
					a, b, _ := strings.Cut(m, " ")
					pairs[i] = [2]string{a, b}
				}
				mj = pairs
			}
			tj["model"] = map[string]any{"type": "BPE", "vocab": vocab, "merges": mj}
			pre, _ := g.String("tokenizer.ggml.pre")
			tj["pre_tokenizer"] = preTokenizerJSON(t, pre)
		}
		writeJSON(t, filepath.Join(dir, "tokenizer.json"), tj)
	default:
		t.Fatalf("vocabulary model %q", model)
	}
	writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), tc)
}

func preTokenizerJSON(t testing.TB, pre string) any {
	split := func(re string) any {
		return map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": re}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
		}}
	}
	switch pre {
	case "gpt-2":
		return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true}
	default:
		for re, name := range preRegexes {
			if name == pre {
				return split(re)
			}
		}
	}
	t.Fatalf("no tokenizer.json pre_tokenizer for %q", pre)
	return nil
}

// synthConfig describes a small random checkpoint of one architecture.
type synthConfig struct {
	hfArch              string
	embd, heads, kv, ff int
	layers              int
	headDim             int // 0: embd/heads
	dtype               string
	tied                bool
}

// writeSynthetic writes config.json and model.safetensors (sharded in two
// with an index when shards) of a random checkpoint with vocabulary size n.
func writeSynthetic(t testing.TB, dir string, s synthConfig, cfg map[string]any, n int, shards bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, uint64(len(s.hfArch))))
	E, H, KV, F := uint64(s.embd), uint64(s.heads), uint64(s.kv), uint64(s.ff)
	hd := E / H
	if s.headDim > 0 {
		hd = uint64(s.headDim)
	}
	V := uint64(n)
	dt := s.dtype
	var ts []stEntry
	add := func(name, dtype string, scale float32, shape ...uint64) {
		ts = append(ts, randTensor(rng, name, dtype, scale, shape...))
	}
	norm := func(name string, dim uint64) { add(name, dt, 0.1, dim) }
	cfg["architectures"] = []string{s.hfArch}
	cfg["hidden_size"] = E
	cfg["num_attention_heads"] = H
	cfg["num_key_value_heads"] = KV
	cfg["intermediate_size"] = F
	cfg["num_hidden_layers"] = s.layers
	if _, ok := cfg["max_position_embeddings"]; !ok {
		cfg["max_position_embeddings"] = 2048
	}
	cfg["tie_word_embeddings"] = s.tied
	switch s.hfArch {
	case "BertModel":
		cfg["layer_norm_eps"] = 1e-12
		cfg["type_vocab_size"] = 2
		P := uint64(cfg["max_position_embeddings"].(int))
		add("embeddings.word_embeddings.weight", dt, 0.1, V, E)
		add("embeddings.position_embeddings.weight", dt, 0.1, P, E)
		add("embeddings.token_type_embeddings.weight", dt, 0.1, 2, E)
		norm("embeddings.LayerNorm.weight", E)
		norm("embeddings.LayerNorm.bias", E)
		for l := 0; l < s.layers; l++ {
			p := fmt.Sprintf("encoder.layer.%d.", l)
			for _, x := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
				add(p+x+".weight", dt, 0.2, E, E)
				add(p+x+".bias", dt, 0.1, E)
			}
			norm(p+"attention.output.LayerNorm.weight", E)
			norm(p+"attention.output.LayerNorm.bias", E)
			add(p+"intermediate.dense.weight", dt, 0.2, F, E)
			add(p+"intermediate.dense.bias", dt, 0.1, F)
			add(p+"output.dense.weight", dt, 0.2, E, F)
			add(p+"output.dense.bias", dt, 0.1, E)
			norm(p+"output.LayerNorm.weight", E)
			norm(p+"output.LayerNorm.bias", E)
		}
		add("pooler.dense.weight", dt, 0.1, E, E)
		add("pooler.dense.bias", dt, 0.1, E)
	default:
		cfg["rms_norm_eps"] = 1e-6
		if s.headDim > 0 {
			cfg["head_dim"] = s.headDim
		}
		prefix := "model."
		if s.hfArch == "Gemma3ForConditionalGeneration" {
			prefix = "language_model.model."
		}
		add(prefix+"embed_tokens.weight", dt, 0.5, V, E)
		for l := 0; l < s.layers; l++ {
			p := fmt.Sprintf("%slayers.%d.", prefix, l)
			norm(p+"input_layernorm.weight", E)
			norm(p+"post_attention_layernorm.weight", E)
			if s.hfArch == "Phi3ForCausalLM" {
				add(p+"self_attn.qkv_proj.weight", dt, 0.2, (H+2*KV)*hd, E)
				add(p+"mlp.gate_up_proj.weight", dt, 0.2, 2*F, E)
			} else {
				add(p+"self_attn.q_proj.weight", dt, 0.2, H*hd, E)
				add(p+"self_attn.k_proj.weight", dt, 0.2, KV*hd, E)
				add(p+"self_attn.v_proj.weight", dt, 0.2, KV*hd, E)
				add(p+"mlp.gate_proj.weight", dt, 0.2, F, E)
				add(p+"mlp.up_proj.weight", dt, 0.2, F, E)
			}
			add(p+"self_attn.o_proj.weight", dt, 0.2, E, H*hd)
			add(p+"mlp.down_proj.weight", dt, 0.2, E, F)
			if s.hfArch == "Qwen2ForCausalLM" {
				add(p+"self_attn.q_proj.bias", dt, 0.1, H*hd)
				add(p+"self_attn.k_proj.bias", dt, 0.1, KV*hd)
				add(p+"self_attn.v_proj.bias", dt, 0.1, KV*hd)
			}
			if strings.HasPrefix(s.hfArch, "Qwen3") || strings.HasPrefix(s.hfArch, "Gemma3") {
				norm(p+"self_attn.q_norm.weight", hd)
				norm(p+"self_attn.k_norm.weight", hd)
			}
			if strings.HasPrefix(s.hfArch, "Gemma") {
				norm(p+"pre_feedforward_layernorm.weight", E)
				norm(p+"post_feedforward_layernorm.weight", E)
			}
		}
		norm(prefix+"norm.weight", E)
		if !s.tied {
			add("lm_head.weight", dt, 0.5, V, E)
		}
		if s.hfArch == "Gemma3ForConditionalGeneration" {
			add("vision_tower.vision_model.embeddings.patch_embedding.weight", dt, 0.1, 8, 3)
		}
	}
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	if !shards {
		writeSafetensors(t, filepath.Join(dir, "model.safetensors"), ts)
		return
	}
	half := len(ts) / 2
	names := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	writeSafetensors(t, filepath.Join(dir, names[0]), ts[:half])
	writeSafetensors(t, filepath.Join(dir, names[1]), ts[half:])
	wm := map[string]string{}
	for i, e := range ts {
		wm[e.name] = names[min(i/half, 1)]
	}
	writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{"metadata": map[string]any{}, "weight_map": wm})
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
