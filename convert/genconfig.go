package convert

import (
	"encoding/json"
	"path/filepath"

	"github.com/olmhq/olm/internal/gguf"
)

// generationKV copies generation_config.json's sampling defaults into
// general.sampling.*, as llama.cpp's converter (gguf-py Metadata) does.
// A missing or malformed file adds nothing.
func generationKV(dir string, m *meta) {
	b, err := readSmall(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return
	}
	var g hparams
	if json.Unmarshal(b, &g) != nil {
		return
	}
	if s := g.str("sequence"); s != "" {
		m.set("general.sampling.sequence", gguf.String(s))
	}
	ints := []struct{ key, name string }{{"top_k", "top_k"}, {"penalty_last_n", "penalty_last_n"}, {"mirostat", "mirostat"}}
	for _, k := range ints {
		if n, ok := g.int(k.key); ok {
			m.set("general.sampling."+k.name, gguf.Int32(int32(n)))
		}
	}
	floats := []struct {
		name string
		keys []string
	}{
		{"top_p", []string{"top_p"}}, {"min_p", []string{"min_p"}},
		{"xtc_probability", []string{"xtc_probability"}}, {"xtc_threshold", []string{"xtc_threshold"}},
		{"temp", []string{"temperature"}}, {"penalty_repeat", []string{"penalty_repeat", "repetition_penalty"}},
		{"mirostat_tau", []string{"mirostat_tau"}}, {"mirostat_eta", []string{"mirostat_eta"}},
	}
	for _, f := range floats {
		if x, ok := g.float(f.keys...); ok {
			m.set("general.sampling."+f.name, gguf.Float32(float32(x)))
		}
	}
}
