package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParseModel reads a manifest of any format olm reads (see DetectFormat) into
// the model view. fetch reads the config blob and the small layers
// (template, system, params, messages, licenses), whose Data it fills; their
// sizes are bounded (MaxConfigSize, MaxSmallLayerSize) and their digests
// verified. With a nil fetch, ParseModel reads only the manifest: the config
// fields stay empty and no Data is filled.
//
// It refuses, with an error naming the problem, manifests of unknown formats
// (ErrUnsupportedFormat), models without GGUF weights (ErrUnsupportedFormat),
// invalid digests, negative sizes, file paths that escape the model folder
// (ErrInvalidManifest) and oversized documents (ErrTooLarge).
func ParseModel(ctx context.Context, manifest []byte, fetch Fetcher) (*Model, error) {
	m, err := decodeManifest(manifest, "")
	if err != nil {
		return nil, err
	}
	f, err := detect(m)
	if err != nil {
		return nil, err
	}
	p := &parser{ctx: ctx, fetch: fetch, m: m, model: &Model{Format: f}}
	switch f {
	case FormatModelPack, FormatModelPackCNAI:
		err = p.modelPack()
	case FormatOllama:
		err = p.ollama()
	case FormatDocker, FormatDockerV01:
		err = p.docker()
	case FormatKitOps:
		err = p.kitOps()
	}
	if err != nil {
		return nil, err
	}
	if len(p.model.Weights) == 0 {
		return nil, fmt.Errorf("%w: the %s manifest has no GGUF weights layer; %s", ErrUnsupportedFormat, f, describeLayers(m))
	}
	c := &p.model.Config
	if c.Requires == "" {
		c.Requires = m.Annotations[AnnotationRequires]
	}
	if c.Requires != "" && !requiresVersion.MatchString(c.Requires) {
		return nil, fmt.Errorf("%w: the model requires %q, which is not a version such as 0.5.0", ErrInvalidManifest, clip(c.Requires))
	}
	if err := p.fetchSmall(); err != nil {
		return nil, err
	}
	return p.model, nil
}

func describeLayers(m *rawManifest) string {
	var mt []string
	for _, l := range m.Layers {
		if !slices.Contains(mt, l.MediaType) {
			mt = append(mt, fmt.Sprintf("%q", clip(l.MediaType)))
		}
	}
	return "its layers are [" + strings.Join(mt, ", ") + "]"
}

type parser struct {
	ctx   context.Context
	fetch Fetcher
	m     *rawManifest
	model *Model
}

// config fetches and decodes the config blob into v. It does nothing without
// a fetcher, or for an empty config.
func (p *parser) config(v any) error {
	d := p.m.Config
	if d.MediaType == MediaTypeEmptyJSON {
		return nil
	}
	data, err := p.read("config", d, MaxConfigSize)
	if err != nil || data == nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: config %s (%s) is not valid JSON: %v", ErrInvalidManifest, d.Digest, d.MediaType, err)
	}
	return nil
}

// read returns a small blob: the descriptor's embedded data, or what fetch
// returns, verified against size and digest. Nil without a fetcher.
func (p *parser) read(what string, d ocispec.Descriptor, limit int64) ([]byte, error) {
	if d.Size > limit {
		return nil, fmt.Errorf("%w: %s %s is %d bytes, the limit is %d", ErrTooLarge, what, d.Digest, d.Size, limit)
	}
	data := d.Data
	if data == nil {
		if p.fetch == nil {
			return nil, nil
		}
		var err error
		data, err = p.fetch(p.ctx, d)
		if err != nil {
			return nil, fmt.Errorf("fetch %s %s: %w", what, d.Digest, err)
		}
	}
	if int64(len(data)) != d.Size {
		return nil, fmt.Errorf("%w: %s %s is %d bytes, the manifest says %d", ErrInvalidManifest, what, d.Digest, len(data), d.Size)
	}
	if got := digest.SHA256.FromBytes(data); got != d.Digest {
		return nil, fmt.Errorf("%w: %s content has digest %s, the manifest says %s", ErrInvalidManifest, what, got, d.Digest)
	}
	return data, nil
}

// fetchSmall fills Data of the small layers.
func (p *parser) fetchSmall() error {
	mdl := p.model
	fill := func(what string, l *Layer) error {
		data, err := p.read(what, l.Descriptor(l.MediaType), MaxSmallLayerSize)
		if err != nil {
			return err
		}
		l.Data = data
		return nil
	}
	small := []struct {
		what string
		l    *Layer
	}{{"template", mdl.Template}, {"chat template", mdl.ChatTemplate}, {"system", mdl.System}, {"params", mdl.Params}, {"messages", mdl.Messages}}
	for _, s := range small {
		if s.l != nil {
			if err := fill(s.what+" layer", s.l); err != nil {
				return err
			}
		}
	}
	for i := range mdl.Licenses {
		if err := fill("license layer", &mdl.Licenses[i]); err != nil {
			return err
		}
	}
	if mdl.Params != nil && mdl.Params.Data != nil && !json.Valid(mdl.Params.Data) {
		return fmt.Errorf("%w: params layer %s is not valid JSON", ErrInvalidManifest, mdl.Params.Digest)
	}
	if mdl.Messages != nil && mdl.Messages.Data != nil && !json.Valid(mdl.Messages.Data) {
		return fmt.Errorf("%w: messages layer %s is not valid JSON", ErrInvalidManifest, mdl.Messages.Digest)
	}
	return nil
}

// layer makes a Layer from a descriptor, with its file name from the given
// annotation keys (first found wins).
func layer(d ocispec.Descriptor, keys ...string) (Layer, error) {
	l := Layer{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType}
	for _, k := range keys {
		if v, ok := d.Annotations[k]; ok && v != "" {
			name, err := cleanFilename(v)
			if err != nil {
				return Layer{}, fmt.Errorf("layer %s annotation %s: %w", d.Digest, k, err)
			}
			l.Filename = name
			break
		}
	}
	return l, nil
}

// isGGUFName reports whether a file name has the .gguf extension.
func isGGUFName(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".gguf")
}

// isProjectorName reports whether a GGUF file name is a multimodal projector
// by llama.cpp's naming ("mmproj-model-f16.gguf").
func isProjectorName(name string) bool {
	return strings.HasPrefix(strings.ToLower(path.Base(name)), "mmproj")
}

// addOllamaLayer files an application/vnd.ollama.image.* layer (also used in
// ModelPack and Docker manifests for Modelfile behaviour). It reports false
// for other media types.
func (p *parser) addOllamaLayer(l Layer) bool {
	mdl := p.model
	switch l.MediaType {
	case MediaTypeOllamaModel, MediaTypeOllamaEmbed:
		mdl.Weights = append(mdl.Weights, l)
	case MediaTypeOllamaProjector:
		mdl.Projectors = append(mdl.Projectors, l)
	case MediaTypeOllamaAdapter:
		mdl.Adapters = append(mdl.Adapters, l)
	case MediaTypeOllamaTemplate, MediaTypeOllamaPrompt:
		mdl.Template = &l // the last one wins, as in Ollama
	case MediaTypeOllamaSystem:
		mdl.System = &l
	case MediaTypeOllamaParams:
		mdl.Params = &l
	case MediaTypeOllamaMessages:
		mdl.Messages = &l
	case MediaTypeOllamaLicense, MediaTypeDockerLicense:
		mdl.Licenses = append(mdl.Licenses, l)
	case MediaTypeDockerChatTemplate:
		mdl.ChatTemplate = &l
	case MediaTypeDockerMMProj:
		mdl.Projectors = append(mdl.Projectors, l)
	default:
		return false
	}
	return true
}

func (p *parser) modelPack() error {
	var cfg modelPackConfig
	if err := p.config(&cfg); err != nil {
		return err
	}
	c := &p.model.Config
	c.Name = cfg.Descriptor.Name
	c.Description = cfg.Descriptor.Description
	c.Family = cfg.Descriptor.Family
	c.Licenses = cfg.Descriptor.Licenses
	c.Architecture = cfg.Config.Architecture
	c.Format = cfg.Config.Format
	c.ParamSize = cfg.Config.ParamSize
	c.Quantization = cfg.Config.Quantization
	c.Capabilities = capabilitiesFromModelPack(cfg.Config.Capabilities)
	if cfg.Descriptor.CreatedAt != nil {
		c.Created = cfg.Descriptor.CreatedAt.UTC()
	} else if t, err := time.Parse(time.RFC3339, p.m.Annotations[AnnotationCreated]); err == nil {
		c.Created = t.UTC()
	}
	if c.Format != "" && !strings.EqualFold(c.Format, "gguf") {
		return fmt.Errorf("%w: the ModelPack model's format is %q; olm runs GGUF models", ErrUnsupportedFormat, clip(c.Format))
	}

	for _, d := range p.m.Layers {
		l, err := layer(d, AnnotationModelPackFilepath, AnnotationCNAIFilepath, AnnotationTitle)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidManifest, err)
		}
		if p.addOllamaLayer(l) {
			continue
		}
		kind, archive, ok := modelPackKind(d.MediaType)
		if !ok || kind != "weight" {
			p.model.Other = append(p.model.Other, l)
			continue
		}
		l.Archive = archive
		if archive != ArchiveNone {
			// A title names the archive ("weights.tar"), not the file in it.
			if named, err := layer(d, AnnotationModelPackFilepath, AnnotationCNAIFilepath); err == nil {
				l.Filename = named.Filename
			}
		}
		name := l.Filename
		switch {
		case archive == ArchiveNone && name != "" && !isGGUFName(name):
			// Weights in another format (safetensors, …) among GGUF files.
			if c.Format == "" {
				return fmt.Errorf("%w: ModelPack weight layer %s is %q, not a GGUF file; olm runs GGUF models", ErrUnsupportedFormat, d.Digest, clip(name))
			}
			p.model.Other = append(p.model.Other, l)
		case isProjectorName(name):
			p.model.Projectors = append(p.model.Projectors, l)
		default:
			p.model.Weights = append(p.model.Weights, l)
		}
	}
	sortSplit(p.model.Weights)
	return nil
}

// modelPackKind splits a ModelPack media type (cncf or cnai) into its kind
// ("weight", "weight.config", "doc", "code", "dataset") and archive.
func modelPackKind(mt string) (kind string, archive Archive, ok bool) {
	rest, found := strings.CutPrefix(mt, "application/vnd.cncf.model.")
	if !found {
		if rest, found = strings.CutPrefix(mt, MediaTypeCNAIPrefix); !found {
			return "", "", false
		}
	}
	kind, format, found := strings.Cut(rest, ".v1.")
	if !found {
		// The earliest cnai drafts used application/vnd.cnai.model.weight.raw.
		if k, f, ok := strings.Cut(rest, "."); ok && (f == "raw" || f == "tar") {
			kind, format = k, f
		} else {
			return "", "", false
		}
	}
	switch format {
	case "raw":
		return kind, ArchiveNone, true
	case "tar":
		return kind, ArchiveTar, true
	case "tar+gzip":
		return kind, ArchiveTarGzip, true
	case "tar+zstd":
		return kind, ArchiveTarZstd, true
	}
	return "", "", false
}

var splitRE = regexp.MustCompile(`-(\d{5})-of-(\d{5})\.gguf$`)

// sortSplit orders the parts of a split GGUF by their part number when every
// weight file is named like llama.cpp's gguf-split output.
func sortSplit(ws []Layer) {
	if len(ws) < 2 {
		return
	}
	for _, w := range ws {
		if !splitRE.MatchString(w.Filename) {
			return
		}
	}
	slices.SortStableFunc(ws, func(a, b Layer) int {
		x, _ := strconv.Atoi(splitRE.FindStringSubmatch(a.Filename)[1])
		y, _ := strconv.Atoi(splitRE.FindStringSubmatch(b.Filename)[1])
		return x - y
	})
}

// capabilityOrder is the canonical order of Config.Capabilities.
var capabilityOrder = []string{"completion", "vision", "embedding", "tools", "thinking", "insert"}

func sortCapabilities(cs []string) []string {
	var out []string
	for _, c := range capabilityOrder {
		if slices.Contains(cs, c) {
			out = append(out, c)
		}
	}
	for _, c := range cs {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func capabilitiesFromModelPack(c *modelPackCapabilities) []string {
	if c == nil {
		return nil
	}
	var out []string
	if slices.Contains(c.OutputTypes, "text") {
		out = append(out, "completion")
	}
	if slices.Contains(c.InputTypes, "image") {
		out = append(out, "vision")
	}
	if slices.Contains(c.OutputTypes, "embedding") {
		out = append(out, "embedding")
	}
	if c.ToolUsage != nil && *c.ToolUsage {
		out = append(out, "tools")
	}
	if c.Reasoning != nil && *c.Reasoning {
		out = append(out, "thinking")
	}
	return out
}

func (p *parser) ollama() error {
	var cfg ollamaConfig
	if err := p.config(&cfg); err != nil {
		return err
	}
	c := &p.model.Config
	c.Format = cfg.ModelFormat
	c.Family = cfg.ModelFamily
	if c.Family == "" && len(cfg.ModelFamilies) > 0 {
		c.Family = cfg.ModelFamilies[0]
	}
	c.Architecture = c.Family
	c.ParamSize = cfg.ModelType
	c.Quantization = cfg.FileType
	c.ContextLength = cfg.ContextLen
	c.Capabilities = sortCapabilities(cfg.Capabilities)
	c.Requires = cfg.Requires
	if c.Format != "" && !strings.EqualFold(c.Format, "gguf") {
		return fmt.Errorf("%w: the Ollama model's format is %q; olm runs GGUF models", ErrUnsupportedFormat, clip(c.Format))
	}
	for _, d := range p.m.Layers {
		l, err := layer(d, AnnotationTitle)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidManifest, err)
		}
		if !p.addOllamaLayer(l) {
			p.model.Other = append(p.model.Other, l)
		}
	}
	return nil
}

func (p *parser) docker() error {
	var cfg dockerConfig
	if err := p.config(&cfg); err != nil {
		return err
	}
	c := &p.model.Config
	c.Format = cfg.Config.Format
	c.Architecture = cfg.Config.Architecture
	c.ParamSize = cfg.Config.Parameters
	c.Quantization = cfg.Config.Quantization
	if cfg.Config.ContextSize != nil && *cfg.Config.ContextSize > 0 {
		c.ContextLength = int(*cfg.Config.ContextSize)
	}
	if cfg.Descriptor.Created != nil {
		c.Created = cfg.Descriptor.Created.UTC()
	}
	if c.Format != "" && !strings.EqualFold(c.Format, "gguf") {
		return fmt.Errorf("%w: the Docker model's format is %q; olm runs GGUF models", ErrUnsupportedFormat, clip(c.Format))
	}
	for _, d := range p.m.Layers {
		l, err := layer(d, AnnotationModelPackFilepath, AnnotationTitle)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidManifest, err)
		}
		switch {
		case d.MediaType == MediaTypeDockerGGUF:
			p.model.Weights = append(p.model.Weights, l)
		case p.addOllamaLayer(l):
		default:
			p.model.Other = append(p.model.Other, l)
		}
	}
	sortSplit(p.model.Weights)
	return nil
}

func (p *parser) kitOps() error {
	var kf kitFile
	if err := p.config(&kf); err != nil {
		return err
	}
	c := &p.model.Config
	c.Name = kf.Package.Name
	c.Description = kf.Package.Description
	for _, lic := range []string{kf.Package.License, modelField(kf.Model, func(m *kitModel) string { return m.License })} {
		if lic != "" && !slices.Contains(c.Licenses, lic) {
			c.Licenses = append(c.Licenses, lic)
		}
	}
	if kf.Model != nil {
		c.Format = strings.ToLower(kf.Model.Format)
		if c.Name == "" {
			c.Name = kf.Model.Name
		}
	}

	var parts []kitModelPart
	if kf.Model != nil {
		parts = kf.Model.Parts
	}
	partIndex := 0
	for _, d := range p.m.Layers {
		// The title of a ModelKit layer names the archive ("model.tar"),
		// not the file inside: the filepath annotation or the Kitfile does.
		l, err := layer(d, AnnotationModelPackFilepath)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidManifest, err)
		}
		titled, err := layer(d, AnnotationTitle)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidManifest, err)
		}
		kind, archive, ok := kitOpsKind(d.MediaType)
		if !ok {
			if d.MediaType == MediaTypeKitOpsConfig || !p.addOllamaLayer(titled) {
				p.model.Other = append(p.model.Other, titled)
			}
			continue
		}
		l.Archive = archive
		switch kind {
		case "model":
			if kf.Model == nil && p.fetch != nil {
				return fmt.Errorf("%w: ModelKit has a model layer but its Kitfile has no model", ErrInvalidManifest)
			}
			name := l.Filename
			if name == "" && kf.Model != nil {
				if name, err = cleanFilename(strings.TrimPrefix(kf.Model.Path, "./")); err != nil {
					return fmt.Errorf("Kitfile model path: %w", err)
				}
				l.Filename = name
			}
			if name == "" && archive == ArchiveNone {
				name, l.Filename = titled.Filename, titled.Filename
			}
			gguf := isGGUFName(name) || strings.Contains(strings.ToLower(c.Format), "gguf") ||
				ggufFramework(modelField(kf.Model, func(m *kitModel) string { return m.Framework }))
			if !gguf {
				if p.fetch == nil && name == "" {
					// Without the Kitfile nothing says what the model is.
					p.model.Weights = append(p.model.Weights, l)
					continue
				}
				return fmt.Errorf("%w: the ModelKit's model %q is not GGUF (format %q); olm runs GGUF models", ErrUnsupportedFormat, clip(name), clip(c.Format))
			}
			c.Format = "gguf"
			p.model.Weights = append(p.model.Weights, l)
		case "modelpart":
			var part kitModelPart
			if partIndex < len(parts) {
				part = parts[partIndex]
			}
			partIndex++
			if l.Filename == "" && part.Path != "" {
				if l.Filename, err = cleanFilename(strings.TrimPrefix(part.Path, "./")); err != nil {
					return fmt.Errorf("Kitfile model part path: %w", err)
				}
			}
			if l.Filename == "" && archive == ArchiveNone {
				l.Filename = titled.Filename
			}
			t := strings.ToLower(part.Type)
			switch {
			case isGGUFName(l.Filename) && (isProjectorName(l.Filename) || strings.Contains(t, "proj")):
				p.model.Projectors = append(p.model.Projectors, l)
			case isGGUFName(l.Filename) && (strings.Contains(t, "lora") || strings.Contains(t, "adapter")):
				p.model.Adapters = append(p.model.Adapters, l)
			default:
				p.model.Other = append(p.model.Other, l)
			}
		default:
			if l.Filename == "" {
				l.Filename = titled.Filename
			}
			p.model.Other = append(p.model.Other, l)
		}
	}
	return nil
}

func modelField(m *kitModel, f func(*kitModel) string) string {
	if m == nil {
		return ""
	}
	return f(m)
}

// kitOpsKind splits a ModelKit layer media type
// (application/vnd.kitops.modelkit.<kind>.v1.<tar|raw>[+gzip|+zstd]).
func kitOpsKind(mt string) (kind string, archive Archive, ok bool) {
	rest, found := strings.CutPrefix(mt, MediaTypeKitOpsPrefix)
	if !found {
		return "", "", false
	}
	kind, format, found := strings.Cut(rest, ".v1.")
	if !found {
		return "", "", false
	}
	switch format {
	case "raw":
		return kind, ArchiveNone, true
	case "tar":
		return kind, ArchiveTar, true
	case "tar+gzip", "tar+gzip-fastest":
		return kind, ArchiveTarGzip, true
	case "tar+zstd":
		return kind, ArchiveTarZstd, true
	}
	return "", "", false
}

// requiresVersion is what Config.Requires may hold: a semantic version
// without "v" (MAJOR.MINOR.PATCH, optional pre-release and build), the
// Modelfile's REQUIRES grammar, bounded in length.
var requiresVersion = regexp.MustCompile(`^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(-[0-9A-Za-z.-]{1,64})?(\+[0-9A-Za-z.-]{1,64})?$`)

// ggufFramework reports whether a Kitfile model framework means GGUF files:
// "gguf" itself, or llama.cpp (which reads nothing else) and Ollama, whose
// Kitfiles often name a folder rather than the .gguf file.
func ggufFramework(f string) bool {
	f = strings.ToLower(f)
	for _, s := range []string{"gguf", "llama.cpp", "llamacpp", "llama-cpp", "llama_cpp", "ollama"} {
		if strings.Contains(f, s) {
			return true
		}
	}
	return false
}
