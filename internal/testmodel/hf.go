package testmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"github.com/olmhq/olm/internal/gguf"
)

// WriteHF writes a Hugging Face checkpoint directory of a random llama of
// spec s into dir (created if needed): config.json (LlamaForCausalLM),
// model.safetensors (F16 matrices, F32 norms, Hugging Face tensor names and
// layout), a SentencePiece tokenizer.model with the Vocabulary of s,
// tokenizer_config.json (with s.ChatTemplate when set) and
// generation_config.json. convert turns it into a GGUF of the same shape,
// so tests of `olm create FROM ./dir` and `olm convert` need no downloads.
func WriteHF(dir string, s Spec) error {
	s = s.withDefaults()
	if err := s.check(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	E, V, F := uint64(s.Embedding), uint64(s.Vocab), uint64(s.FeedForward)
	kvDim := E / uint64(s.Heads) * uint64(s.HeadsKV)
	// Each tensor is generated exactly as Generate generates its GGUF
	// counterpart (same seed, same values), then q/k rows are put in the
	// Hugging Face order, the inverse of llama.cpp's permutation; so
	// converting this directory gives Generate's tensors byte for byte.
	type tensor struct {
		name  string
		gguf  string
		dtype string
		shape []uint64 // PyTorch order
		heads int      // q/k: rows to un-permute per head count
	}
	ts := []tensor{{"model.embed_tokens.weight", "token_embd.weight", "F16", []uint64{V, E}, 0}}
	for i := 0; i < s.Blocks; i++ {
		p, g := fmt.Sprintf("model.layers.%d.", i), fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			tensor{p + "input_layernorm.weight", g + "attn_norm.weight", "F32", []uint64{E}, 0},
			tensor{p + "self_attn.q_proj.weight", g + "attn_q.weight", "F16", []uint64{E, E}, s.Heads},
			tensor{p + "self_attn.k_proj.weight", g + "attn_k.weight", "F16", []uint64{kvDim, E}, s.HeadsKV},
			tensor{p + "self_attn.v_proj.weight", g + "attn_v.weight", "F16", []uint64{kvDim, E}, 0},
			tensor{p + "self_attn.o_proj.weight", g + "attn_output.weight", "F16", []uint64{E, E}, 0},
			tensor{p + "post_attention_layernorm.weight", g + "ffn_norm.weight", "F32", []uint64{E}, 0},
			tensor{p + "mlp.gate_proj.weight", g + "ffn_gate.weight", "F16", []uint64{F, E}, 0},
			tensor{p + "mlp.up_proj.weight", g + "ffn_up.weight", "F16", []uint64{F, E}, 0},
			tensor{p + "mlp.down_proj.weight", g + "ffn_down.weight", "F16", []uint64{E, F}, 0},
		)
	}
	ts = append(ts, tensor{"model.norm.weight", "output_norm.weight", "F32", []uint64{E}, 0},
		tensor{"lm_head.weight", "output.weight", "F16", []uint64{V, E}, 0})

	type entry struct {
		DType   string   `json:"dtype"`
		Shape   []uint64 `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off int64
	for _, t := range ts {
		n := int64(2)
		if t.dtype == "F32" {
			n = 4
		}
		for _, d := range t.shape {
			n *= int64(d)
		}
		hdr[t.name] = entry{t.dtype, t.shape, [2]int64{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return err
	}
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	buf = append(buf, hb...)
	flush := func() error {
		if len(buf) >= 1<<20 {
			if _, err := f.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		return nil
	}
	for _, t := range ts {
		h := fnv.New64a()
		h.Write([]byte(t.gguf))
		rng := rand.New(rand.NewPCG(s.Seed, h.Sum64()))
		n := uint64(1)
		for _, d := range t.shape {
			n *= d
		}
		scale := float32(1 / math.Sqrt(float64(t.shape[len(t.shape)-1])))
		if t.heads > 0 {
			// rows in GGUF order, then un-permuted: GGUF row h*hd+2i+k
			// is HF row h*hd+k*hd/2+i.
			rows, cols := int(t.shape[0]), int(t.shape[1])
			g := make([]uint16, rows*cols)
			for i := range g {
				g[i] = gguf.F32ToF16((rng.Float32()*2 - 1) * scale)
			}
			hd := rows / t.heads
			for hf := 0; hf < rows; hf++ {
				h, r := hf/hd, hf%hd
				k, i := r/(hd/2), r%(hd/2)
				src := (h*hd + 2*i + k) * cols
				for c := 0; c < cols; c++ {
					buf = binary.LittleEndian.AppendUint16(buf, g[src+c])
				}
				if err := flush(); err != nil {
					f.Close()
					return err
				}
			}
			continue
		}
		for i := uint64(0); i < n; i++ {
			x := rng.Float32()*2 - 1
			if t.dtype == "F32" {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(1+0.1*x))
			} else {
				buf = binary.LittleEndian.AppendUint16(buf, gguf.F32ToF16(x*scale))
			}
			if err := flush(); err != nil {
				f.Close()
				return err
			}
		}
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}

	tokens, scores, types := Vocabulary(s.Vocab)
	var model []byte
	for i := range tokens {
		var p []byte
		p = protoBytes(p, 1, []byte(tokens[i]))
		p = binary.AppendUvarint(p, 2<<3|5)
		p = binary.LittleEndian.AppendUint32(p, math.Float32bits(scores[i]))
		p = binary.AppendUvarint(p, 3<<3)
		p = binary.AppendUvarint(p, uint64(types[i]))
		model = protoBytes(model, 1, p)
	}
	trainer := binary.AppendUvarint(binary.AppendUvarint(nil, 3<<3), 1) // model_type: unigram
	model = protoBytes(model, 2, trainer)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), model, 0o644); err != nil {
		return err
	}
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": s.Embedding, "intermediate_size": s.FeedForward, "num_hidden_layers": s.Blocks,
		"num_attention_heads": s.Heads, "num_key_value_heads": s.HeadsKV,
		"max_position_embeddings": s.Context, "rms_norm_eps": 1e-5, "rope_theta": s.RopeFreqBase,
		"vocab_size": s.Vocab, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false,
		"torch_dtype": "float16",
	}
	tc := map[string]any{"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer"}
	if s.ChatTemplate != "" {
		tc["chat_template"] = s.ChatTemplate
	}
	gen := map[string]any{"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.7, "top_p": 0.9}
	for name, v := range map[string]any{"config.json": cfg, "tokenizer_config.json": tc, "generation_config.json": gen} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// HFFiles lists the files WriteHF writes, sorted.
func HFFiles() []string {
	f := []string{"config.json", "generation_config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json"}
	sort.Strings(f)
	return f
}

func protoBytes(b []byte, field int, data []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}
