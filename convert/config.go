package convert

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// hparams is config.json, with text_config (multimodal models) merged over
// the root, read through find-first accessors like llama.cpp's find_hparam.
type hparams map[string]any

func readConfig(dir string) (hparams, error) {
	b, err := readSmall(filepath.Join(dir, "config.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%w: config.json in %s", ErrNotFound, dir)
		}
		return nil, err
	}
	var h hparams
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: config.json: %v", ErrInvalid, err)
	}
	if tc, ok := h["text_config"].(map[string]any); ok {
		for k, v := range tc {
			h[k] = v
		}
	}
	return h, nil
}

func (h hparams) has(key string) bool { _, ok := h[key]; return ok && h[key] != nil }

// int returns the first of keys that holds a whole number.
func (h hparams) int(keys ...string) (int64, bool) {
	for _, k := range keys {
		if f, ok := h[k].(float64); ok && f == math.Trunc(f) {
			return int64(f), true
		}
	}
	return 0, false
}

func (h hparams) float(keys ...string) (float64, bool) {
	for _, k := range keys {
		if f, ok := h[k].(float64); ok {
			return f, true
		}
	}
	return 0, false
}

func (h hparams) str(key string) string { s, _ := h[key].(string); return s }

func (h hparams) bool(key string) (bool, bool) { b, ok := h[key].(bool); return b, ok }

func (h hparams) obj(key string) hparams {
	if m, ok := h[key].(map[string]any); ok {
		return m
	}
	return hparams{}
}

func (h hparams) mustInt(keys ...string) (int64, error) {
	if n, ok := h.int(keys...); ok && n >= 0 {
		return n, nil
	}
	return 0, fmt.Errorf("%w: config.json has no %s", ErrInvalid, keys[0])
}

// architecture returns config.json's first "architectures" entry.
func (h hparams) architecture() string {
	if a, ok := h["architectures"].([]any); ok && len(a) > 0 {
		s, _ := a[0].(string)
		return s
	}
	return ""
}

// rope returns rope_parameters / rope_scaling with the root-level rope
// values mirrored in, as llama.cpp's TextModel does.
func (h hparams) rope() hparams {
	r := hparams{}
	for k, v := range h.obj("rope_scaling") {
		r[k] = v
	}
	for k, v := range h.obj("rope_parameters") {
		r[k] = v
	}
	if full, ok := r["full_attention"].(map[string]any); ok {
		r = full
	}
	if !r.has("rope_theta") {
		if v, ok := h.float("rope_theta", "rotary_emb_base"); ok {
			r["rope_theta"] = v
		}
	}
	if !r.has("rope_type") && r.has("type") {
		r["rope_type"] = r["type"]
	}
	if !r.has("original_max_position_embeddings") && h.has("original_max_position_embeddings") {
		r["original_max_position_embeddings"] = h["original_max_position_embeddings"]
	}
	if !r.has("partial_rotary_factor") && h.has("partial_rotary_factor") {
		r["partial_rotary_factor"] = h["partial_rotary_factor"]
	}
	return r
}

func (h hparams) floats(key string) []float32 {
	a, ok := h[key].([]any)
	if !ok {
		return nil
	}
	out := make([]float32, 0, len(a))
	for _, x := range a {
		f, ok := x.(float64)
		if !ok {
			return nil
		}
		out = append(out, float32(f))
	}
	return out
}
