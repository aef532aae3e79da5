package server

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/runner"
)

// sampling returns the runner's sampling options: Ollama's defaults with
// the set fields of o applied.
func sampling(o api.Options) runner.Sampling {
	s := runner.DefaultSampling()
	setInt := func(dst *int, p *int) {
		if p != nil {
			*dst = *p
		}
	}
	setF := func(dst *float32, p *float32) {
		if p != nil {
			*dst = *p
		}
	}
	setInt(&s.NumKeep, o.NumKeep)
	setInt(&s.Seed, o.Seed)
	setInt(&s.NumPredict, o.NumPredict)
	setInt(&s.TopK, o.TopK)
	setF(&s.TopP, o.TopP)
	setF(&s.MinP, o.MinP)
	setF(&s.TypicalP, o.TypicalP)
	setInt(&s.RepeatLastN, o.RepeatLastN)
	setF(&s.Temperature, o.Temperature)
	setF(&s.RepeatPenalty, o.RepeatPenalty)
	setF(&s.PresencePenalty, o.PresencePenalty)
	setF(&s.FrequencyPenalty, o.FrequencyPenalty)
	setInt(&s.Mirostat, o.Mirostat)
	setF(&s.MirostatTau, o.MirostatTau)
	setF(&s.MirostatEta, o.MirostatEta)
	if o.Stop != nil {
		s.Stop = append([]string(nil), o.Stop...)
	}
	return s
}

// loadOptions returns how to load m with options o (the model's parameters
// merged with the request's).
func loadOptions(m *Model, o api.Options, embeddingOnly bool) runner.LoadOptions {
	l := runner.LoadOptions{
		Model:         m.WeightsPath,
		Parts:         m.WeightsParts,
		Projector:     m.ProjectorPath,
		Adapters:      m.AdapterPaths,
		EmbeddingOnly: embeddingOnly,
	}
	if o.NumCtx != nil {
		l.NumCtx = *o.NumCtx
	}
	if o.NumBatch != nil {
		l.NumBatch = *o.NumBatch
	}
	if o.NumGPU != nil {
		l.NumGPU = *o.NumGPU
	} else {
		// like Ollama: as many layers as fit in free GPU memory (all on
		// the CPU in a build without GPU offload)
		l.NumGPU = runner.NumGPUAuto
	}
	if o.NumThread != nil {
		l.NumThread = *o.NumThread
	}
	if o.UseMMap != nil && !*o.UseMMap {
		l.NoMmap = true
	}
	if o.UseMLock != nil {
		l.Mlock = *o.UseMLock
	}
	return l
}

// validateOptions rejects option values that cannot work, naming the field.
func validateOptions(o *api.Options) error {
	if o == nil {
		return nil
	}
	bad := func(name, why string) error {
		return fmt.Errorf("%w: options.%s %s", ErrBadRequest, name, why)
	}
	if o.NumCtx != nil && *o.NumCtx < 0 {
		return bad("num_ctx", "must not be negative")
	}
	if o.NumBatch != nil && *o.NumBatch < 0 {
		return bad("num_batch", "must not be negative")
	}
	if o.NumThread != nil && *o.NumThread < 0 {
		return bad("num_thread", "must not be negative")
	}
	if o.Temperature != nil && *o.Temperature < 0 {
		return bad("temperature", "must not be negative")
	}
	if o.TopP != nil && (*o.TopP < 0 || *o.TopP > 1) {
		return bad("top_p", "must be between 0 and 1")
	}
	if o.Mirostat != nil && (*o.Mirostat < 0 || *o.Mirostat > 2) {
		return bad("mirostat", "must be 0, 1 or 2")
	}
	return nil
}

// validateFormat checks a "format" field: absent, "", "json", or a JSON
// schema object. It returns what the runner takes as JSONSchema.
func validateFormat(field string, f json.RawMessage) (json.RawMessage, error) {
	if len(f) == 0 || string(f) == "null" || string(f) == `""` {
		return nil, nil
	}
	var s string
	if json.Unmarshal(f, &s) == nil {
		if s == "json" {
			return json.RawMessage(`"json"`), nil
		}
		return nil, fmt.Errorf("%w: %s must be \"json\" or a JSON schema object, got %q", ErrBadRequest, field, s)
	}
	var obj map[string]any
	if err := json.Unmarshal(f, &obj); err != nil {
		return nil, fmt.Errorf("%w: %s must be \"json\" or a JSON schema object", ErrBadRequest, field)
	}
	return f, nil
}

// keepAlive converts a request's keep_alive to the engine's form.
func keepAlive(d *api.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := d.Duration
	return &v
}
