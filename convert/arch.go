package convert

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/olmhq/olm/internal/gguf"
)

// arch describes how one Hugging Face architecture becomes GGUF.
type arch struct {
	// gguf is the GGUF architecture name (general.architecture).
	gguf string
	// hf lists the config.json "architectures" names handled.
	hf []string
	// names maps a HF tensor name (prefixes already normalised, without
	// .weight/.bias) to the GGUF base name; "" skips the tensor.
	names func(base string) (string, bool)
	// kv writes the architecture's hyperparameters.
	kv func(h hparams, m *meta) error
	// permuteQK applies llama.cpp's q/k row permutation (llama).
	permuteQK bool
	// normPlusOne adds 1 to every *norm.weight (Gemma's RMSNorm is 1+w).
	normPlusOne bool
	// skipLMHead drops lm_head.weight (Gemma 2 ties it to the embeddings).
	skipLMHead bool
	// truncateEmbd cuts token_embd to the tokenizer's size (Gemma 3).
	truncateEmbd bool
	// spmFirst prefers tokenizer.model over tokenizer.json.
	spmFirst bool
	// noSpacePrefix writes tokenizer.ggml.add_space_prefix = false with SPM.
	noSpacePrefix bool
}

var archs = []*arch{
	{gguf: "llama", hf: []string{"LlamaForCausalLM", "LLaMAForCausalLM", "MistralForCausalLM"}, names: decoderNames(false), kv: llamaKV, permuteQK: true, spmFirst: true},
	{gguf: "qwen2", hf: []string{"Qwen2ForCausalLM"}, names: decoderNames(false), kv: qwenKV, spmFirst: true},
	{gguf: "qwen3", hf: []string{"Qwen3ForCausalLM"}, names: decoderNames(false), kv: qwenKV, spmFirst: true},
	{gguf: "gemma2", hf: []string{"Gemma2ForCausalLM"}, names: decoderNames(true), kv: gemma2KV, normPlusOne: true, skipLMHead: true, spmFirst: true, noSpacePrefix: true},
	{gguf: "gemma3", hf: []string{"Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"}, names: decoderNames(true), kv: gemma3KV, normPlusOne: true, truncateEmbd: true, spmFirst: true, noSpacePrefix: true},
	{gguf: "phi3", hf: []string{"Phi3ForCausalLM"}, names: decoderNames(false), kv: phi3KV, spmFirst: true},
	{gguf: "bert", hf: []string{"BertModel", "BertForMaskedLM"}, names: bertNames, kv: bertKV},
}

// Supported returns the Hugging Face architectures convert handles.
func Supported() []string {
	var out []string
	for _, a := range archs {
		out = append(out, a.hf...)
	}
	sort.Strings(out)
	return out
}

func findArch(h hparams) (*arch, error) {
	name := h.architecture()
	for _, a := range archs {
		for _, n := range a.hf {
			if n == name {
				return a, nil
			}
		}
	}
	if name == "" {
		name = "none (config.json has no \"architectures\")"
	}
	return nil, fmt.Errorf("%w: architecture %s; supported: %s", ErrUnsupported, name, strings.Join(Supported(), ", "))
}

var layerRe = regexp.MustCompile(`^model\.layers\.(\d+)\.(.+)$`)

func decoderNames(gemma bool) func(string) (string, bool) {
	layer := map[string]string{
		"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
		"self_attn.o_proj": "attn_output", "self_attn.qkv_proj": "attn_qkv",
		"self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
		"mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
		"mlp.gate_up_proj": "ffn_up",
		"input_layernorm":  "attn_norm", "post_attention_layernorm": "ffn_norm",
	}
	if gemma {
		layer["post_attention_layernorm"] = "post_attention_norm"
		layer["pre_feedforward_layernorm"] = "ffn_norm"
		layer["post_feedforward_layernorm"] = "post_ffw_norm"
	}
	return func(base string) (string, bool) {
		// Multimodal wrappers keep the text model under language_model.
		for _, p := range []string{"model.language_model.", "language_model.model.", "language_model."} {
			if strings.HasPrefix(base, p) {
				rest := strings.TrimPrefix(base, p)
				if rest == "lm_head" || strings.HasPrefix(rest, "model.") {
					base = rest
				} else {
					base = "model." + rest
				}
				break
			}
		}
		switch {
		case strings.HasPrefix(base, "vision_tower.") || strings.HasPrefix(base, "multi_modal_projector.") ||
			strings.HasPrefix(base, "model.vision_tower.") || strings.HasPrefix(base, "model.multi_modal_projector.") ||
			strings.HasSuffix(base, "rotary_emb.inv_freq"):
			return "", true
		case base == "model.embed_tokens":
			return "token_embd", true
		case base == "model.norm":
			return "output_norm", true
		case base == "lm_head":
			return "output", true
		}
		if m := layerRe.FindStringSubmatch(base); m != nil {
			if g, ok := layer[m[2]]; ok {
				return "blk." + m[1] + "." + g, true
			}
		}
		return "", false
	}
}

var bertLayerRe = regexp.MustCompile(`^encoder\.layer\.(\d+)\.(.+)$`)

func bertNames(base string) (string, bool) {
	base = strings.TrimPrefix(base, "bert.")
	switch base {
	case "embeddings.word_embeddings":
		return "token_embd", true
	case "embeddings.position_embeddings":
		return "position_embd", true
	case "embeddings.token_type_embeddings":
		return "token_types", true
	case "embeddings.LayerNorm":
		return "token_embd_norm", true
	case "embeddings.position_ids", "pooler.dense":
		return "", true
	}
	if strings.HasPrefix(base, "cls.") {
		return "", true
	}
	layer := map[string]string{
		"attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
		"attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
		"intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm",
	}
	if m := bertLayerRe.FindStringSubmatch(base); m != nil {
		if g, ok := layer[m[2]]; ok {
			return "blk." + m[1] + "." + g, true
		}
	}
	return "", false
}

// meta is the ordered metadata of the GGUF being built; a key set twice
// keeps its first position and takes the last value.
type meta struct {
	arch string
	kv   []gguf.KV
	idx  map[string]int
	// extra tensors generated from the config (rope factors).
	extra []extraTensor
}

type extraTensor struct {
	name string
	data []float32
}

func newMeta(arch string) *meta { return &meta{arch: arch, idx: map[string]int{}} }

func (m *meta) set(key string, v gguf.Value) {
	if i, ok := m.idx[key]; ok {
		m.kv[i].Value = v
		return
	}
	m.idx[key] = len(m.kv)
	m.kv = append(m.kv, gguf.KV{Key: key, Value: v})
}

func (m *meta) get(key string) (gguf.Value, bool) {
	i, ok := m.idx[key]
	if !ok {
		return gguf.Value{}, false
	}
	return m.kv[i].Value, true
}

func (m *meta) u32(suffix string, n int64) { m.set(m.arch+"."+suffix, gguf.Uint32(uint32(n))) }
func (m *meta) f32(suffix string, f float64) {
	m.set(m.arch+"."+suffix, gguf.Float32(float32(f)))
}

// baseKV writes what llama.cpp's TextModel.set_gguf_parameters writes.
func baseKV(h hparams, m *meta) error {
	blocks, err := h.mustInt("num_hidden_layers", "n_layers", "n_layer", "num_layers")
	if err != nil {
		return err
	}
	m.u32("block_count", blocks)
	if n, ok := h.int("max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"); ok {
		m.u32("context_length", n)
	}
	if n, ok := h.int("hidden_size", "n_embd", "dim"); ok {
		m.u32("embedding_length", n)
	}
	if n, ok := h.int("intermediate_size", "n_inner", "hidden_dim"); ok {
		m.u32("feed_forward_length", n)
	}
	if n, ok := h.int("num_attention_heads", "n_head", "n_heads"); ok {
		m.u32("attention.head_count", n)
	}
	if n, ok := h.int("num_key_value_heads", "n_kv_heads"); ok {
		m.u32("attention.head_count_kv", n)
	}
	if c, ok := h.bool("is_causal"); ok && !c {
		m.set(m.arch+".attention.causal", gguf.Bool(false))
	}
	r := h.rope()
	if rt := r.str("rope_type"); rt != "" {
		factor, hasFactor := r.float("factor")
		switch {
		case rt == "linear" && hasFactor:
			m.set(m.arch+".rope.scaling.type", gguf.String("linear"))
			m.f32("rope.scaling.factor", factor)
		case rt == "yarn" && hasFactor:
			m.set(m.arch+".rope.scaling.type", gguf.String("yarn"))
			m.f32("rope.scaling.factor", factor)
			if n, ok := r.int("original_max_position_embeddings"); ok {
				m.u32("rope.scaling.original_context_length", n)
			}
			if f, ok := r.float("extrapolation_factor"); ok {
				m.f32("rope.scaling.yarn_ext_factor", f)
			}
			if f, ok := r.float("attention_factor", "attn_factor"); ok {
				m.f32("rope.scaling.yarn_attn_factor", f)
			}
			if f, ok := r.float("beta_fast"); ok {
				m.f32("rope.scaling.yarn_beta_fast", f)
			}
			if f, ok := r.float("beta_slow"); ok {
				m.f32("rope.scaling.yarn_beta_slow", f)
			}
		case rt == "su" || rt == "longrope":
			m.set(m.arch+".rope.scaling.type", gguf.String("longrope"))
		case rt == "default", rt == "llama3", rt == "dynamic":
		default:
			return fmt.Errorf("%w: rope type %q; supported: linear, yarn, longrope, llama3", ErrUnsupported, rt)
		}
	}
	if f, ok := r.float("rope_theta"); ok {
		m.f32("rope.freq_base", f)
	}
	if f, ok := h.float("rope_local_base_freq", "local_rope_theta", "rope_local_theta", "swa_rope_theta"); ok {
		m.f32("rope.freq_base_swa", f)
	}
	if f, ok := h.float("rms_norm_eps", "norm_eps"); ok {
		m.f32("attention.layer_norm_rms_epsilon", f)
	}
	if f, ok := h.float("layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"); ok {
		m.f32("attention.layer_norm_epsilon", f)
	}
	if n, ok := h.int("head_dim"); ok {
		m.u32("attention.key_length", n)
		m.u32("attention.value_length", n)
	}
	return nil
}

func headDim(h hparams) (int64, error) {
	if n, ok := h.int("head_dim"); ok && n > 0 {
		return n, nil
	}
	e, err := h.mustInt("hidden_size")
	if err != nil {
		return 0, err
	}
	nh, err := h.mustInt("num_attention_heads")
	if err != nil || nh == 0 {
		return 0, fmt.Errorf("%w: config.json has no num_attention_heads", ErrInvalid)
	}
	return e / nh, nil
}

func llamaKV(h hparams, m *meta) error {
	if err := baseKV(h, m); err != nil {
		return err
	}
	if n, ok := h.int("vocab_size"); ok {
		m.u32("vocab_size", n)
	}
	hd, err := headDim(h)
	if err != nil {
		return err
	}
	m.u32("rope.dimension_count", hd)
	r := h.rope()
	if strings.EqualFold(r.str("rope_type"), "llama3") {
		base, ok := r.float("rope_theta")
		if !ok {
			base = 10000
		}
		factor := floatOr(r, "factor", 8)
		lowF := floatOr(r, "low_freq_factor", 1)
		highF := floatOr(r, "high_freq_factor", 4)
		oldCtx := floatOr(r, "original_max_position_embeddings", 8192)
		lowWave, highWave := oldCtx/lowF, oldCtx/highF
		var factors []float32
		for i := int64(0); i < hd; i += 2 {
			freq := 1 / math.Pow(base, float64(float32(i)/float32(hd)))
			wave := 2 * math.Pi / freq
			switch {
			case wave < highWave:
				factors = append(factors, 1)
			case wave > lowWave:
				factors = append(factors, float32(factor))
			default:
				smooth := (oldCtx/wave - lowF) / (highF - lowF)
				factors = append(factors, float32(1/((1-smooth)/factor+smooth)))
			}
		}
		m.extra = append(m.extra, extraTensor{"rope_freqs.weight", factors})
	}
	return nil
}

func floatOr(h hparams, key string, def float64) float64 {
	if f, ok := h.float(key); ok {
		return f
	}
	return def
}

func qwenKV(h hparams, m *meta) error {
	if err := baseKV(h, m); err != nil {
		return err
	}
	return poolingKV(h, m)
}

func gemma2KV(h hparams, m *meta) error {
	for _, k := range []string{"max_position_embeddings", "hidden_size", "intermediate_size", "num_attention_heads", "rms_norm_eps", "head_dim"} {
		if !h.has(k) {
			return fmt.Errorf("%w: config.json has no %s", ErrInvalid, k)
		}
	}
	n, _ := h.int("max_position_embeddings")
	m.u32("context_length", n)
	n, _ = h.int("hidden_size")
	m.u32("embedding_length", n)
	blocks, err := h.mustInt("num_hidden_layers")
	if err != nil {
		return err
	}
	m.u32("block_count", blocks)
	n, _ = h.int("intermediate_size")
	m.u32("feed_forward_length", n)
	heads, _ := h.int("num_attention_heads")
	m.u32("attention.head_count", heads)
	if kv, ok := h.int("num_key_value_heads"); ok {
		m.u32("attention.head_count_kv", kv)
	} else {
		m.u32("attention.head_count_kv", heads)
	}
	f, _ := h.float("rms_norm_eps")
	m.f32("attention.layer_norm_rms_epsilon", f)
	n, _ = h.int("head_dim")
	m.u32("attention.key_length", n)
	m.u32("attention.value_length", n)
	if f, ok := h.float("attn_logit_softcapping"); ok {
		m.f32("attn_logit_softcapping", f)
	}
	if f, ok := h.float("final_logit_softcapping"); ok {
		m.f32("final_logit_softcapping", f)
	}
	if n, ok := h.int("sliding_window"); ok {
		m.u32("attention.sliding_window", n)
	}
	return nil
}

func gemma3KV(h hparams, m *meta) error {
	if err := baseKV(h, m); err != nil {
		return err
	}
	m.u32("context_length", intOr(h, "max_position_embeddings", 131072))
	m.u32("attention.head_count", intOr(h, "num_attention_heads", 8))
	m.f32("attention.layer_norm_rms_epsilon", floatOr(h, "rms_norm_eps", 1e-6))
	m.u32("attention.key_length", intOr(h, "head_dim", 256))
	m.u32("attention.value_length", intOr(h, "head_dim", 256))
	m.f32("rope.freq_base", floatOr(h.rope(), "rope_theta", 1_000_000))
	if f, ok := h.float("final_logit_softcapping"); ok && f != 0 {
		m.f32("final_logit_softcapping", f)
	}
	if p, ok := h.int("sliding_window_pattern"); !ok || p != 1 {
		if n, ok := h.int("sliding_window"); ok {
			m.u32("attention.sliding_window", n)
		}
	}
	m.u32("attention.head_count_kv", intOr(h, "num_key_value_heads", 4))
	return nil
}

func intOr(h hparams, key string, def int64) int64 {
	if n, ok := h.int(key); ok {
		return n
	}
	return def
}

func phi3KV(h hparams, m *meta) error {
	embd, err := h.mustInt("hidden_size", "n_embd")
	if err != nil {
		return err
	}
	heads, err := h.mustInt("num_attention_heads", "n_head")
	if err != nil || heads == 0 {
		return fmt.Errorf("%w: config.json has no num_attention_heads", ErrInvalid)
	}
	kvHeads := intOr(h, "num_key_value_heads", heads)
	eps, _ := h.float("rms_norm_eps")
	maxPos, err := h.mustInt("max_position_embeddings", "n_positions")
	if err != nil {
		return err
	}
	r := h.rope()
	origPos := intOr(r, "original_max_position_embeddings", maxPos)
	rot := floatOr(r, "partial_rotary_factor", 1)
	ropeDims := int64(rot*float64(embd)) / heads
	blocks, err := h.mustInt("num_hidden_layers")
	if err != nil {
		return err
	}
	ff, err := h.mustInt("intermediate_size")
	if err != nil {
		return err
	}
	m.u32("context_length", maxPos)
	m.u32("rope.scaling.original_context_length", origPos)
	m.u32("embedding_length", embd)
	m.u32("feed_forward_length", ff)
	m.u32("block_count", blocks)
	m.u32("attention.head_count", heads)
	m.u32("attention.head_count_kv", kvHeads)
	m.f32("attention.layer_norm_rms_epsilon", eps)
	m.u32("rope.dimension_count", ropeDims)
	m.f32("rope.freq_base", floatOr(r, "rope_theta", 10000))
	m.u32("attention.sliding_window", intOr(h, "sliding_window", 0))
	long, short := r.floats("long_factor"), r.floats("short_factor")
	if len(long) > 0 {
		scale := float64(maxPos) / float64(origPos)
		attn := 1.0
		switch rt := strings.ToLower(r.str("rope_type")); rt {
		case "su", "longrope":
			if scale > 1 {
				attn = math.Sqrt(1 + math.Log(scale)/math.Log(float64(origPos)))
			}
		case "yarn":
			if scale > 1 {
				attn = 0.1*math.Log(scale) + 1
			}
		default:
			return fmt.Errorf("%w: phi3 rope scaling type %q; supported: longrope, su, yarn", ErrUnsupported, rt)
		}
		if len(long) != len(short) || int64(len(long)) != ropeDims/2 {
			return fmt.Errorf("%w: phi3 rope long/short factors have %d/%d entries, want %d", ErrInvalid, len(long), len(short), ropeDims/2)
		}
		m.f32("rope.scaling.attn_factor", attn)
		m.extra = append(m.extra, extraTensor{"rope_factors_long.weight", long}, extraTensor{"rope_factors_short.weight", short})
	}
	return nil
}

func bertKV(h hparams, m *meta) error {
	if err := baseKV(h, m); err != nil {
		return err
	}
	m.set(m.arch+".attention.causal", gguf.Bool(false))
	return poolingKV(h, m)
}

// poolingKV is set by convert from modules.json (sentence-transformers).
func poolingKV(h hparams, m *meta) error {
	if p, ok := h["__pooling"].(uint32); ok {
		m.u32("pooling_type", int64(p))
	}
	return nil
}

func blockOf(name string) (int, bool) {
	if !strings.HasPrefix(name, "blk.") {
		return 0, false
	}
	rest := strings.TrimPrefix(name, "blk.")
	i := strings.IndexByte(rest, '.')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest[:i])
	return n, err == nil
}
