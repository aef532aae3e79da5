package build_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/runtime/llama"
)

// byteLevel returns GPT-2's byte-to-character mapping.
func byteLevel() []string {
	var out [256]string
	n := 0
	for b := 0; b < 256; b++ {
		if b >= 33 && b <= 126 || b >= 161 && b <= 172 || b >= 174 && b <= 255 {
			out[b] = string(rune(b))
		} else {
			out[b] = string(rune(256 + n))
			n++
		}
	}
	return out[:]
}

// writeHFLlama writes a tiny random LlamaForCausalLM checkpoint with a
// byte-level BPE tokenizer: config.json, tokenizer.json,
// tokenizer_config.json and model.safetensors (F16).
func writeHFLlama(t *testing.T, dir string) {
	t.Helper()
	const hidden, ff, heads, vocab = 64, 128, 4, 260
	tokens := map[string]int{}
	for i, s := range byteLevel() {
		tokens[s] = i
	}
	tokens["he"], tokens["ll"] = 256, 257
	writeJSONFile(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": hidden, "intermediate_size": ff, "num_hidden_layers": 1,
		"num_attention_heads": heads, "num_key_value_heads": heads, "vocab_size": vocab,
		"max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
		"torch_dtype": "float16", "bos_token_id": 258, "eos_token_id": 259, "tie_word_embeddings": false,
	})
	writeJSONFile(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": 258, "content": "<s>", "special": true},
			{"id": 259, "content": "</s>", "special": true},
		},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true},
		"model":         map[string]any{"type": "BPE", "vocab": tokens, "merges": []string{"h e", "l l"}},
	})
	writeJSONFile(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"bos_token": "<s>", "eos_token": "</s>",
		"chat_template": "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
	})
	shapes := map[string][]int{
		"model.embed_tokens.weight":                      {vocab, hidden},
		"model.norm.weight":                              {hidden},
		"lm_head.weight":                                 {vocab, hidden},
		"model.layers.0.input_layernorm.weight":          {hidden},
		"model.layers.0.post_attention_layernorm.weight": {hidden},
		"model.layers.0.self_attn.q_proj.weight":         {hidden, hidden},
		"model.layers.0.self_attn.k_proj.weight":         {hidden, hidden},
		"model.layers.0.self_attn.v_proj.weight":         {hidden, hidden},
		"model.layers.0.self_attn.o_proj.weight":         {hidden, hidden},
		"model.layers.0.mlp.gate_proj.weight":            {ff, hidden},
		"model.layers.0.mlp.up_proj.weight":              {ff, hidden},
		"model.layers.0.mlp.down_proj.weight":            {hidden, ff},
	}
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	var data []byte
	for i, n := range names {
		count := 1
		for _, d := range shapes[n] {
			count *= d
		}
		start := len(data)
		for j := 0; j < count; j++ {
			v := float32(math.Sin(float64(i*7919+j))) * 0.05
			if len(shapes[n]) == 1 {
				v = 1
			}
			data = binary.LittleEndian.AppendUint16(data, gguf.F32ToF16(v))
		}
		header[n] = map[string]any{"dtype": "F16", "shape": shapes[n], "data_offsets": []int{start, len(data)}}
	}
	hb, _ := json.Marshal(header)
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	out = append(append(out, hb...), data...)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBuildFromRealSafetensors converts a checkpoint with olm's converter
// and quantizes the result in one build.
func TestBuildFromRealSafetensors(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf")
	os.Mkdir(hf, 0o755)
	writeHFLlama(t, hf)
	res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM ./hf\nPARAMETER temperature 0.3"), Dir: dir, Tags: []string{"hf"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := res.Details
	if d.Architecture != "llama" || d.EmbeddingLength != 64 || d.ContextLength != 512 || d.Quantization != "F16" {
		t.Errorf("details %+v", d)
	}
	info, err := build.Show(ctx, s, res.Tags[0], build.ShowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.ChatTemplate == "" {
		t.Error("the checkpoint's chat template did not reach the GGUF")
	}
}

// TestBuildSafetensorsQuantizedRuns converts, quantizes to Q8_0 and loads
// the stored weights in llama.cpp.
func TestBuildSafetensorsQuantizedRuns(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	b.Quantizer = realQuantizer(t)
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf")
	os.Mkdir(hf, 0o755)
	writeHFLlama(t, hf)
	res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM ./hf"), Dir: dir, Tags: []string{"hf:q8"}, Quantize: "q8_0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Details.Quantization != "Q8_0" {
		t.Errorf("quantization %s", res.Details.Quantization)
	}
	path, err := s.BlobPath(res.Model.Weights[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := llama.LoadModel(ctx, path, llama.ModelParams{UseMMap: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lc, err := llama.NewContext(m, llama.ContextParams{NumCtx: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	toks, err := m.Tokenize("hello", true, false)
	if err != nil || len(toks) < 2 {
		t.Fatalf("tokenize: %v %v", toks, err)
	}
	batch, err := llama.NewBatch(len(toks), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Close()
	for i, tk := range toks {
		batch.Add(tk, i, i == len(toks)-1, 0)
	}
	if err := lc.Decode(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if logits, err := lc.Logits(len(toks) - 1); err != nil || len(logits) != 260 {
		t.Errorf("logits %d %v", len(logits), err)
	}
}
