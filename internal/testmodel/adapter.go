package testmodel

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/olmhq/olm/internal/gguf"
)

// LoRASpec describes a random LoRA adapter for a model of some Spec, as
// llama.cpp's llama_adapter_lora_init reads it: general.type "adapter",
// adapter.type "lora", adapter.lora.alpha, and for each adapted weight W of
// shape [in, out] a pair W.lora_a [in, Rank] and W.lora_b [Rank, out] (GGUF
// dimension order, innermost first).
type LoRASpec struct {
	// Rank is the adapter's rank; 0 means 4.
	Rank int
	// Alpha is adapter.lora.alpha; the adapter's effective scale is
	// Alpha/Rank. 0 means Rank (scale 1).
	Alpha float32
	// Arch is general.architecture; "" means "llama". Another value makes
	// an adapter llama.cpp refuses for a llama model.
	Arch string
	// Zero writes all-zero B matrices: the adapter changes nothing.
	Zero bool
	// Seed selects the weights.
	Seed uint64
}

// LoRA returns the GGUF header of a LoRA adapter of spec l for a model of
// spec s. It adapts the attention query and output and the feed-forward
// down projection of every block.
func LoRA(s Spec, l LoRASpec) (gguf.Header, error) {
	s = s.withDefaults()
	if s.Embedding <= 0 || s.FeedForward <= 0 || s.Blocks <= 0 {
		return gguf.Header{}, fmt.Errorf("testmodel: LoRA needs a model spec with Embedding, FeedForward and Blocks")
	}
	if l.Rank <= 0 {
		l.Rank = 4
	}
	if l.Alpha == 0 {
		l.Alpha = float32(l.Rank)
	}
	if l.Arch == "" {
		l.Arch = "llama"
	}
	e, f, r := uint64(s.Embedding), uint64(s.FeedForward), uint64(l.Rank)
	var ts []gguf.TensorInfo
	pair := func(w string, in, out uint64) {
		ts = append(ts,
			gguf.TensorInfo{Name: w + ".lora_a", Type: gguf.TensorF32, Dims: []uint64{in, r}},
			gguf.TensorInfo{Name: w + ".lora_b", Type: gguf.TensorF32, Dims: []uint64{r, out}})
	}
	for i := 0; i < s.Blocks; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		pair(p+"attn_q.weight", e, e)
		pair(p+"attn_output.weight", e, e)
		pair(p+"ffn_down.weight", f, e)
	}
	return gguf.Header{KV: []gguf.KV{
		{Key: "general.architecture", Value: gguf.String(l.Arch)},
		{Key: "general.type", Value: gguf.String("adapter")},
		{Key: "general.name", Value: gguf.String(s.Name + " LoRA")},
		{Key: "adapter.type", Value: gguf.String("lora")},
		{Key: "adapter.lora.alpha", Value: gguf.Float32(l.Alpha)},
	}, Tensors: ts}, nil
}

// GenerateLoRA writes a LoRA adapter of spec l for a model of spec s to
// path, atomically. A and B are uniform in ±2 (B is zero with l.Zero), so a
// rank-4 adapter visibly changes a tiny model's output.
func GenerateLoRA(path string, s Spec, l LoRASpec) error {
	h, err := LoRA(s, l)
	if err != nil {
		return err
	}
	return writeF32(path, h, l.Seed, func(name string, rng *rand.Rand) float32 {
		if l.Zero && len(name) > 7 && name[len(name)-7:] == ".lora_b" {
			return 0
		}
		return rng.Float32()*4 - 2
	})
}

// ProjectorSpec describes a random LLaVA-style multimodal projector (a
// CLIP vision tower with an "mlp" projector) that llama.cpp's libmtmd
// loads for a text model of some Spec. The image is resized to ImageSize²
// pixels and cut into (ImageSize/PatchSize)² patches: that many embeddings
// (image tokens) per image.
type ProjectorSpec struct {
	// ImageSize is the square input size in pixels; 0 means 32.
	ImageSize int
	// PatchSize is the patch side in pixels; 0 means 8 (16 tokens an
	// image at the default size).
	PatchSize int
	// Embedding is the vision tower's width; 0 means 16.
	Embedding int
	// Heads is the vision tower's attention heads; 0 means 2.
	Heads int
	// Blocks is the vision tower's blocks; 0 means 2 (LLaVA uses the
	// output of the second to last).
	Blocks int
	// TextEmbedding is the projector's output width; 0 means the text
	// model's Embedding. A different value makes a projector libmtmd
	// refuses for that model.
	TextEmbedding int
	// Seed selects the weights.
	Seed uint64
}

func (p ProjectorSpec) withDefaults(s Spec) ProjectorSpec {
	if p.ImageSize <= 0 {
		p.ImageSize = 32
	}
	if p.PatchSize <= 0 {
		p.PatchSize = 8
	}
	if p.Embedding <= 0 {
		p.Embedding = 16
	}
	if p.Heads <= 0 {
		p.Heads = 2
	}
	if p.Blocks <= 0 {
		p.Blocks = 2
	}
	if p.TextEmbedding <= 0 {
		p.TextEmbedding = s.withDefaults().Embedding
	}
	return p
}

// Tokens returns the number of embeddings (image tokens) one image takes.
func (p ProjectorSpec) Tokens() int {
	p = p.withDefaults(Spec{Embedding: 1})
	n := p.ImageSize / p.PatchSize
	return n * n
}

// Projector returns the GGUF header of a projector of spec p for a text
// model of spec s.
func Projector(s Spec, p ProjectorSpec) (gguf.Header, error) {
	p = p.withDefaults(s)
	if p.ImageSize%p.PatchSize != 0 || p.Embedding%p.Heads != 0 {
		return gguf.Header{}, fmt.Errorf("testmodel: projector image size must be a multiple of the patch size and width a multiple of heads")
	}
	e := uint64(p.Embedding)
	ff := 2 * e
	hidden := 2 * e
	patches := uint64(p.Tokens())
	ps := uint64(p.PatchSize)
	t := func(name string, dims ...uint64) gguf.TensorInfo {
		return gguf.TensorInfo{Name: name, Type: gguf.TensorF32, Dims: dims}
	}
	ts := []gguf.TensorInfo{
		t("v.patch_embd.weight", ps, ps, 3, e),
		t("v.patch_embd.bias", e),
		t("v.position_embd.weight", e, patches),
		t("v.pre_ln.weight", e),
		t("v.pre_ln.bias", e),
	}
	for i := 0; i < p.Blocks; i++ {
		b := fmt.Sprintf("v.blk.%d.", i)
		ts = append(ts,
			t(b+"ln1.weight", e), t(b+"ln1.bias", e),
			t(b+"attn_q.weight", e, e), t(b+"attn_q.bias", e),
			t(b+"attn_k.weight", e, e), t(b+"attn_k.bias", e),
			t(b+"attn_v.weight", e, e), t(b+"attn_v.bias", e),
			t(b+"attn_out.weight", e, e), t(b+"attn_out.bias", e),
			t(b+"ln2.weight", e), t(b+"ln2.bias", e),
			t(b+"ffn_up.weight", e, ff), t(b+"ffn_up.bias", ff),
			t(b+"ffn_down.weight", ff, e), t(b+"ffn_down.bias", e),
		)
	}
	ts = append(ts,
		t("mm.0.weight", e, hidden), t("mm.0.bias", hidden),
		t("mm.2.weight", hidden, uint64(p.TextEmbedding)), t("mm.2.bias", uint64(p.TextEmbedding)),
	)
	return gguf.Header{KV: []gguf.KV{
		{Key: "general.architecture", Value: gguf.String("clip")},
		{Key: "general.name", Value: gguf.String(s.withDefaults().Name + " projector")},
		{Key: "general.file_type", Value: gguf.Uint32(0)},
		{Key: "clip.has_vision_encoder", Value: gguf.Bool(true)},
		{Key: "clip.has_text_encoder", Value: gguf.Bool(false)},
		{Key: "clip.projector_type", Value: gguf.String("mlp")},
		{Key: "clip.use_gelu", Value: gguf.Bool(true)},
		{Key: "clip.vision.image_size", Value: gguf.Uint32(uint32(p.ImageSize))},
		{Key: "clip.vision.patch_size", Value: gguf.Uint32(uint32(p.PatchSize))},
		{Key: "clip.vision.embedding_length", Value: gguf.Uint32(uint32(e))},
		{Key: "clip.vision.feed_forward_length", Value: gguf.Uint32(uint32(ff))},
		{Key: "clip.vision.projection_dim", Value: gguf.Uint32(uint32(p.TextEmbedding))},
		{Key: "clip.vision.attention.head_count", Value: gguf.Uint32(uint32(p.Heads))},
		{Key: "clip.vision.attention.layer_norm_epsilon", Value: gguf.Float32(1e-5)},
		{Key: "clip.vision.block_count", Value: gguf.Uint32(uint32(p.Blocks))},
		{Key: "clip.vision.image_mean", Value: gguf.ArrayOf([]float32{0.48145466, 0.4578275, 0.40821073})},
		{Key: "clip.vision.image_std", Value: gguf.ArrayOf([]float32{0.26862954, 0.26130258, 0.27577711})},
	}, Tensors: ts}, nil
}

// GenerateProjector writes a projector of spec p for a text model of spec
// s to path, atomically. Weights are F32 uniform in ±1/sqrt(fan-in); norm
// weights near 1, biases near 0.
func GenerateProjector(path string, s Spec, p ProjectorSpec) error {
	h, err := Projector(s, p)
	if err != nil {
		return err
	}
	fanIn := map[string]float32{}
	for _, t := range h.Tensors {
		if len(t.Dims) >= 2 {
			in := t.Dims[0]
			if len(t.Dims) == 4 { // conv kernel: patch × patch × channels
				in = t.Dims[0] * t.Dims[1] * t.Dims[2]
			}
			fanIn[t.Name] = float32(1 / math.Sqrt(float64(in)))
		}
	}
	return writeF32(path, h, p.Seed, func(name string, rng *rand.Rand) float32 {
		x := rng.Float32()*2 - 1
		switch {
		case fanIn[name] != 0:
			return x * fanIn[name]
		case len(name) > 7 && name[len(name)-7:] == ".weight": // norms
			return 1 + 0.1*x
		default: // biases
			return 0.1 * x
		}
	})
}

// writeF32 writes a GGUF whose tensors are all F32 with values from val
// (seeded per tensor name), atomically.
func writeF32(path string, h gguf.Header, seed uint64, val func(name string, rng *rand.Rand) float32) error {
	for _, t := range h.Tensors {
		if t.Type != gguf.TensorF32 {
			return fmt.Errorf("testmodel: %s is not F32", t.Name)
		}
	}
	return writeGGUF(path, h, 4096, func(w *gguf.Writer) error {
		for _, t := range w.Tensors() {
			hsh := fnv.New64a()
			hsh.Write([]byte(t.Name))
			rng := rand.New(rand.NewPCG(seed, hsh.Sum64()))
			buf := make([]byte, 0, 4*t.Elements())
			for i := uint64(0); i < t.Elements(); i++ {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(val(t.Name, rng)))
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
}
