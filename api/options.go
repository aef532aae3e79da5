package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Options are the model parameters of a request's "options" object, with
// the names of Ollama's API and Modelfile PARAMETER lines. Every field is a
// pointer: nil means "not set by this request", so the model's PARAMETER
// layer or the runtime default applies. Use Ptr to fill fields in Go.
//
// Sampling options take effect per request. Load-time options (numa,
// num_ctx, num_batch, num_gpu, main_gpu, low_vram, f16_kv, logits_all,
// vocab_only, use_mmap, use_mlock, num_thread, embedding_only) decide how
// the model is loaded; a request that changes them reloads the model.
type Options struct {
	// Load-time options.

	// Numa enables NUMA-aware thread placement.
	Numa *bool `json:"numa,omitempty"`
	// NumCtx is the context window in tokens (default 4096).
	NumCtx *int `json:"num_ctx,omitempty"`
	// NumBatch is the prompt-processing batch size in tokens (default 512).
	NumBatch *int `json:"num_batch,omitempty"`
	// NumGPU is the number of layers offloaded to the GPU (-1: all).
	NumGPU *int `json:"num_gpu,omitempty"`
	// MainGPU is the GPU that holds small tensors and scratch buffers.
	MainGPU *int `json:"main_gpu,omitempty"`
	// LowVRAM is accepted and ignored (deprecated in Ollama).
	LowVRAM *bool `json:"low_vram,omitempty"`
	// F16KV is accepted and ignored (deprecated in Ollama).
	F16KV *bool `json:"f16_kv,omitempty"`
	// LogitsAll is accepted and ignored (deprecated in Ollama).
	LogitsAll *bool `json:"logits_all,omitempty"`
	// VocabOnly is accepted and ignored (deprecated in Ollama).
	VocabOnly *bool `json:"vocab_only,omitempty"`
	// UseMMap maps the weights into memory (default true).
	UseMMap *bool `json:"use_mmap,omitempty"`
	// UseMLock locks the weights in RAM.
	UseMLock *bool `json:"use_mlock,omitempty"`
	// EmbeddingOnly loads the model for embeddings only.
	EmbeddingOnly *bool `json:"embedding_only,omitempty"`
	// NumThread is the number of CPU threads (0 or unset: automatic).
	NumThread *int `json:"num_thread,omitempty"`

	// Per-request (sampling) options.

	// NumKeep is the number of prompt tokens kept when the context is
	// shifted (default 4).
	NumKeep *int `json:"num_keep,omitempty"`
	// Seed seeds the sampler; the same seed and prompt give the same output
	// (default -1: random).
	Seed *int `json:"seed,omitempty"`
	// NumPredict is the maximum number of tokens to generate (default -1:
	// until the model stops or the context is full).
	NumPredict *int `json:"num_predict,omitempty"`
	// TopK samples from the K most likely tokens (default 40).
	TopK *int `json:"top_k,omitempty"`
	// TopP is nucleus sampling's probability mass (default 0.9).
	TopP *float32 `json:"top_p,omitempty"`
	// MinP is the minimum probability relative to the best token (default 0).
	MinP *float32 `json:"min_p,omitempty"`
	// TFSZ is accepted and ignored (tail-free sampling was removed from
	// llama.cpp).
	TFSZ *float32 `json:"tfs_z,omitempty"`
	// TypicalP is locally typical sampling's mass (default 1: off).
	TypicalP *float32 `json:"typical_p,omitempty"`
	// RepeatLastN is how many recent tokens the penalties consider
	// (default 64; 0 off; -1 num_ctx).
	RepeatLastN *int `json:"repeat_last_n,omitempty"`
	// Temperature is the sampling temperature (default 0.8; 0 is greedy).
	Temperature *float32 `json:"temperature,omitempty"`
	// RepeatPenalty penalizes repeated tokens (default 1.1).
	RepeatPenalty *float32 `json:"repeat_penalty,omitempty"`
	// PresencePenalty penalizes tokens already present (default 0).
	PresencePenalty *float32 `json:"presence_penalty,omitempty"`
	// FrequencyPenalty penalizes tokens by frequency (default 0).
	FrequencyPenalty *float32 `json:"frequency_penalty,omitempty"`
	// Mirostat selects Mirostat sampling: 0 off (default), 1 or 2.
	Mirostat *int `json:"mirostat,omitempty"`
	// MirostatTau is Mirostat's target entropy (default 5).
	MirostatTau *float32 `json:"mirostat_tau,omitempty"`
	// MirostatEta is Mirostat's learning rate (default 0.1).
	MirostatEta *float32 `json:"mirostat_eta,omitempty"`
	// PenalizeNewline is accepted and ignored (deprecated in Ollama).
	PenalizeNewline *bool `json:"penalize_newline,omitempty"`
	// Stop are stop sequences: generation ends when one is produced, and
	// it is not part of the output.
	Stop []string `json:"stop,omitempty"`
}

// Ptr returns a pointer to v, for filling Options.
func Ptr[T any](v T) *T { return &v }

// Merge returns o with every field that over sets replacing o's. Neither
// input is modified.
func (o Options) Merge(over Options) Options {
	out := o
	ov := reflect.ValueOf(over)
	rv := reflect.ValueOf(&out).Elem()
	for i := 0; i < ov.NumField(); i++ {
		f := ov.Field(i)
		if !f.IsNil() {
			rv.Field(i).Set(f)
		}
	}
	if over.Stop != nil {
		out.Stop = append([]string(nil), over.Stop...)
	}
	return out
}

// IsZero reports whether no option is set.
func (o Options) IsZero() bool {
	v := reflect.ValueOf(o)
	for i := 0; i < v.NumField(); i++ {
		if !v.Field(i).IsNil() {
			return false
		}
	}
	return true
}

// OptionsFromMap converts a parameter map (a Modelfile params layer, or
// CreateRequest.Parameters) to Options. A single "stop" string becomes a
// one-element list. Unknown names and mistyped values are errors that name
// the parameter.
func OptionsFromMap(m map[string]any) (Options, error) {
	var o Options
	known := optionNames()
	for k, v := range m {
		if !known[k] {
			return o, fmt.Errorf("unknown parameter %q", k)
		}
		if k == "stop" {
			if s, ok := v.(string); ok {
				m = cloneMap(m)
				m[k] = []string{s}
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return o, fmt.Errorf("parameters: %w", err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			return o, fmt.Errorf("parameter %q: want a %s, got %s", te.Field, te.Type, te.Value)
		}
		return o, fmt.Errorf("parameters: %w", err)
	}
	return o, nil
}

// Map returns the options that are set as a map from name to value (the
// inverse of OptionsFromMap).
func (o Options) Map() map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(o)
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.IsNil() {
			continue
		}
		name := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		if f.Kind() == reflect.Pointer {
			out[name] = f.Elem().Interface()
		} else {
			out[name] = f.Interface()
		}
	}
	return out
}

func optionNames() map[string]bool {
	t := reflect.TypeOf(Options{})
	m := make(map[string]bool, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		m[strings.Split(t.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	return m
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}
