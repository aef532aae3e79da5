package build

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/oci"
)

// Details is what the GGUF header of a model's weights says about it, as
// `olm show -v` prints it.
type Details struct {
	Architecture    string   // general.architecture ("llama")
	Parameters      uint64   // parameter count (tensor elements)
	ParameterSize   string   // Parameters as people write it ("8B", "494.03M")
	ContextLength   uint64   // trained context length in tokens; 0 if unknown
	EmbeddingLength uint64   // embedding width; 0 if unknown
	Quantization    string   // file type ("Q4_K_M", "F16")
	Capabilities    []string // Ollama's names: completion, vision, embedding, tools, thinking, insert
}

// embeddingArchitectures are encoder-only architectures: they embed, they do
// not complete text.
var embeddingArchitectures = map[string]bool{
	"bert": true, "nomic-bert": true, "nomic-bert-moe": true, "jina-bert-v2": true,
	"jina-bert-v3": true, "t5encoder": true, "modern-bert": true, "neo-bert": true,
}

// isProjector reports whether a GGUF is a multimodal projector (clip or
// mtmd encoder) rather than language-model weights.
func isProjector(f *gguf.File, path string) bool {
	switch f.Architecture() {
	case "clip", "mtmd":
		return true
	}
	if _, ok := f.Value("clip.projector_type"); ok {
		return true
	}
	return strings.Contains(strings.ToLower(filepath.Base(path)), "mmproj")
}

// detailsOf reads Details from the header of the weights (the first part of
// a split GGUF), the projectors present, and the prompt templates.
func detailsOf(f *gguf.File, parts []*gguf.File, hasProjector bool, templates ...string) Details {
	d := Details{
		Architecture:    f.Architecture(),
		ContextLength:   f.ContextLength(),
		EmbeddingLength: f.EmbeddingLength(),
		Quantization:    f.Quantization(),
	}
	for _, p := range parts {
		d.Parameters += p.ParameterCount()
	}
	if n, ok := f.Uint("general.parameter_count"); ok && len(parts) == 0 {
		d.Parameters = n
	}
	d.ParameterSize = gguf.HumanParams(d.Parameters)
	d.Capabilities = capabilities(f, hasProjector, templates...)
	return d
}

var (
	toolsRE    = regexp.MustCompile(`\.Tools\b|\btools\b|tool_call`)
	thinkingRE = regexp.MustCompile(`\.Thinking\b|\.IsThinkSet\b|<think>|enable_thinking|reasoning_content`)
	suffixRE   = regexp.MustCompile(`\.Suffix\b`)
)

// capabilities derives Ollama's capability names: embedding for
// encoder-only models (or any with a pooling type and no causal
// attention), completion otherwise; vision with a projector or a vision
// encoder in the weights; tools, thinking and insert when a template (the
// Modelfile's Go template or the GGUF's Jinja chat template) handles them,
// and insert also when the vocabulary has fill-in-the-middle tokens.
func capabilities(f *gguf.File, hasProjector bool, templates ...string) []string {
	arch := f.Architecture()
	embed := embeddingArchitectures[arch]
	if !embed {
		if _, ok := f.Value(arch + ".pooling_type"); ok {
			if causal, ok := f.Bool(arch + ".attention.causal"); ok && !causal {
				embed = true
			}
		}
	}
	var caps []string
	if embed {
		return []string{"embedding"}
	}
	caps = append(caps, "completion")
	if hasProjector {
		caps = append(caps, "vision")
	} else if _, ok := f.Value(arch + ".vision.block_count"); ok {
		caps = append(caps, "vision")
	}
	all := strings.Join(append(templates, f.ChatTemplate()), "\n")
	if toolsRE.MatchString(all) {
		caps = append(caps, "tools")
	}
	if thinkingRE.MatchString(all) {
		caps = append(caps, "thinking")
	}
	if suffixRE.MatchString(all) || hasFIM(f) {
		caps = append(caps, "insert")
	}
	return caps
}

// fimRoles are the three fill-in-the-middle tokens as llama.cpp finds them
// (llama-vocab.cpp): by an ID in the metadata (the current key, then the
// deprecated one), else by the token's text.
var fimRoles = []struct {
	keys  []string
	texts []string
}{
	{[]string{"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"},
		[]string{"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"}},
	{[]string{"tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"},
		[]string{"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"}},
	{[]string{"tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"},
		[]string{"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"}},
}

// hasFIM reports whether the vocabulary has the prefix, suffix and middle
// tokens of fill-in-the-middle, so that the server can answer a generate
// request with a suffix without a template that uses .Suffix.
func hasFIM(f *gguf.File) bool {
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	var texts map[string]bool
	for _, role := range fimRoles {
		found := false
		for _, k := range role.keys {
			if id, ok := f.Uint(k); ok && id < uint64(len(tokens)) {
				found = true
				break
			}
		}
		if !found {
			if texts == nil {
				texts = make(map[string]bool)
				for _, t := range fimRoles {
					for _, x := range t.texts {
						texts[x] = false
					}
				}
				for _, tok := range tokens {
					if _, ok := texts[tok]; ok {
						texts[tok] = true
					}
				}
			}
			for _, x := range role.texts {
				found = found || texts[x]
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// configOf fills an oci.Config from Details, keeping base's descriptive
// fields (name, description, SPDX licenses).
func configOf(d Details, base oci.Config) oci.Config {
	return oci.Config{
		Name:          base.Name,
		Description:   base.Description,
		Licenses:      base.Licenses,
		Family:        d.Architecture,
		Architecture:  d.Architecture,
		Format:        "gguf",
		ParamSize:     d.ParameterSize,
		Quantization:  d.Quantization,
		ContextLength: int(d.ContextLength),
		Capabilities:  d.Capabilities,
		Requires:      base.Requires, // kept from the FROM model, as Ollama does
	}
}
