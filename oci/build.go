package oci

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ReproducibleTime is the creation time to pass in BuildOptions.Created for
// reproducible builds when no better time (such as SOURCE_DATE_EPOCH) is
// known: the Unix epoch.
var ReproducibleTime = time.Unix(0, 0).UTC()

// BuildOptions tunes BuildManifest. The zero value is ready to use.
type BuildOptions struct {
	// Created is the build time written as the manifest's
	// org.opencontainers.image.created annotation and in the config
	// (ModelPack, Docker; Ollama's format has no such field). Zero means the
	// current time, which makes every build differ; pass a fixed time, such
	// as ReproducibleTime, for reproducible builds. It is written in UTC,
	// truncated to seconds.
	Created time.Time

	// Annotations are added to the manifest (ModelPack and Docker formats;
	// Ollama's manifests carry none). nil adds nothing.
	Annotations map[string]string
}

// BuildManifest writes m as a manifest of the given format and returns the
// manifest and its config blob. The layers' blobs are not touched: the caller
// stores the config blob and pushes the manifest once every layer is stored.
// It returns the same bytes for the same input (maps are written sorted).
//
// FormatModelPack writes an OCI 1.1 image manifest with artifactType
// application/vnd.cncf.model.manifest.v1+json, weights as
// application/vnd.cncf.model.weight.v1.raw with org.cncf.model.filepath and
// org.opencontainers.image.title annotations, and the Modelfile layers with
// Ollama's media types. FormatOllama writes Ollama's Docker v2 schema 2
// manifest without annotations or local paths. FormatDocker writes Docker
// Model Runner's config v0.2. Layers without a Filename get a default name
// ("model.gguf", "model-00001-of-00002.gguf", "params.json", …).
//
// Errors wrap ErrInvalidManifest for an invalid model (no weights, bad
// digest, a file path that escapes, duplicate file names) and
// ErrUnsupportedFormat for a format olm cannot write or archived weights
// that only ModelPack can carry.
func BuildManifest(m Model, format Format, opts BuildOptions) (manifest, config []byte, err error) {
	switch format {
	case FormatModelPack, FormatOllama, FormatDocker:
	default:
		return nil, nil, fmt.Errorf("%w: cannot write %q; olm writes %s", ErrUnsupportedFormat, format, formatList(WritableFormats))
	}
	m, err = normalize(m)
	if err != nil {
		return nil, nil, err
	}
	if r := m.Config.Requires; r != "" && !requiresVersion.MatchString(r) {
		return nil, nil, fmt.Errorf("%w: requires %q is not a version such as 0.5.0", ErrInvalidManifest, clip(r))
	}
	if format != FormatModelPack {
		for _, l := range m.Layers() {
			if l.Archive != ArchiveNone {
				return nil, nil, fmt.Errorf("%w: layer %s is a %s archive; the %s format holds raw files only (unpack it first, or write ModelPack)", ErrUnsupportedFormat, l.Digest, l.Archive, format)
			}
		}
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Now()
	}
	created = created.UTC().Truncate(time.Second)

	var layers []ocispec.Descriptor
	var cfgMediaType string
	var cfg any
	switch format {
	case FormatModelPack:
		layers = modelPackLayers(&m)
		cfgMediaType, cfg = MediaTypeModelPackConfig, modelPackConfigOf(&m, created, layers)
	case FormatOllama:
		layers = ollamaLayers(&m)
		cfgMediaType, cfg = MediaTypeDockerConfig, ollamaConfigOf(&m, layers)
	case FormatDocker:
		layers = dockerLayers(&m)
		cfgMediaType, cfg = MediaTypeDockerModelConfigV02, dockerConfigOf(&m, created, layers)
	}
	config, err = json.Marshal(cfg)
	if err != nil {
		return nil, nil, err
	}
	man := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: format.ManifestMediaType(),
		Config: ocispec.Descriptor{
			MediaType: cfgMediaType,
			Digest:    digest.SHA256.FromBytes(config),
			Size:      int64(len(config)),
		},
		Layers: layers,
	}
	if format == FormatModelPack {
		man.ArtifactType = ArtifactTypeModelPack
	}
	if format != FormatOllama {
		man.Annotations = maps.Clone(opts.Annotations)
		if format == FormatModelPack {
			if man.Annotations == nil {
				man.Annotations = map[string]string{}
			}
			man.Annotations[AnnotationCreated] = created.Format(time.RFC3339)
		}
		if m.Config.Requires != "" {
			if man.Annotations == nil {
				man.Annotations = map[string]string{}
			}
			man.Annotations[AnnotationRequires] = m.Config.Requires
		}
	}
	manifest, err = json.Marshal(man)
	if err != nil {
		return nil, nil, err
	}
	if len(manifest) > MaxManifestSize {
		return nil, nil, fmt.Errorf("%w: the manifest would be %d bytes, the limit is %d", ErrTooLarge, len(manifest), MaxManifestSize)
	}
	return manifest, config, nil
}

// normalize validates m and returns a copy with default file names filled in.
func normalize(m Model) (Model, error) {
	if len(m.Weights) == 0 {
		return m, fmt.Errorf("%w: the model has no weights", ErrInvalidManifest)
	}
	copyLayers := func(ls []Layer) []Layer { return append([]Layer(nil), ls...) }
	copyLayer := func(l *Layer) *Layer {
		if l == nil {
			return nil
		}
		c := *l
		return &c
	}
	m.Weights = copyLayers(m.Weights)
	m.Projectors = copyLayers(m.Projectors)
	m.Adapters = copyLayers(m.Adapters)
	m.Licenses = copyLayers(m.Licenses)
	m.Other = copyLayers(m.Other)
	m.Template, m.ChatTemplate = copyLayer(m.Template), copyLayer(m.ChatTemplate)
	m.System, m.Params, m.Messages = copyLayer(m.System), copyLayer(m.Params), copyLayer(m.Messages)

	numbered := func(ls []Layer, one, many string) {
		for i := range ls {
			// An archive's file name is inside it: a default would be a guess.
			if ls[i].Filename != "" || ls[i].Archive != ArchiveNone {
				continue
			}
			if len(ls) == 1 {
				ls[i].Filename = one
			} else {
				ls[i].Filename = fmt.Sprintf(many, i+1, len(ls))
			}
		}
	}
	numbered(m.Weights, "model.gguf", "model-%05d-of-%05d.gguf")
	numbered(m.Projectors, "mmproj.gguf", "mmproj-%d-of-%d.gguf")
	numbered(m.Adapters, "adapter.gguf", "adapter-%d-of-%d.gguf")
	numbered(m.Licenses, "LICENSE", "LICENSE-%d-of-%d")
	for _, s := range []struct {
		l    *Layer
		name string
	}{{m.Template, "template"}, {m.ChatTemplate, "chat_template.jinja"}, {m.System, "system"}, {m.Params, "params.json"}, {m.Messages, "messages.json"}} {
		if s.l != nil && s.l.Filename == "" {
			s.l.Filename = s.name
		}
	}
	for i, w := range m.Weights {
		if w.Archive == ArchiveNone && !isGGUFName(w.Filename) {
			return m, fmt.Errorf("%w: weights file %d is named %q; GGUF weights end in .gguf", ErrInvalidManifest, i+1, clip(w.Filename))
		}
	}

	seen := map[string]bool{}
	for _, l := range m.Layers() {
		if err := ValidateDigest(l.Digest); err != nil {
			return m, fmt.Errorf("%w: layer %q: %w", ErrInvalidManifest, clip(l.Filename), err)
		}
		if l.Size < 0 {
			return m, fmt.Errorf("%w: layer %s has negative size", ErrInvalidManifest, l.Digest)
		}
		if l.Data != nil && (int64(len(l.Data)) != l.Size || digest.SHA256.FromBytes(l.Data) != l.Digest) {
			return m, fmt.Errorf("%w: layer %s: its data does not match its digest and size", ErrInvalidManifest, l.Digest)
		}
		if l.Filename == "" {
			continue
		}
		clean, err := cleanFilename(l.Filename)
		if err != nil {
			return m, err
		}
		if clean != l.Filename {
			return m, fmt.Errorf("%w: file path %q is not clean (want %q)", ErrInvalidManifest, clip(l.Filename), clean)
		}
		if seen[clean] {
			return m, fmt.Errorf("%w: two layers are named %q", ErrInvalidManifest, clip(clean))
		}
		seen[clean] = true
	}
	return m, nil
}

// fileAnnotations returns the annotations that name a layer's file.
func fileAnnotations(name string) map[string]string {
	if name == "" {
		return nil
	}
	return map[string]string{AnnotationModelPackFilepath: name, AnnotationTitle: name}
}

// behaviourLayers appends the Modelfile-behaviour layers with Ollama's media
// types (and Docker's for the Jinja chat template and, when docker is set,
// licenses and projectors).
func behaviourLayers(m *Model, out []ocispec.Descriptor, annotate, docker bool) []ocispec.Descriptor {
	add := func(l Layer, mt string) {
		d := l.Descriptor(mt)
		if annotate {
			d.Annotations = fileAnnotations(l.Filename)
		}
		out = append(out, d)
	}
	projector, license := MediaTypeOllamaProjector, MediaTypeOllamaLicense
	if docker {
		projector, license = MediaTypeDockerMMProj, MediaTypeDockerLicense
	}
	for _, l := range m.Projectors {
		add(l, projector)
	}
	for _, l := range m.Adapters {
		add(l, MediaTypeOllamaAdapter)
	}
	for _, s := range []struct {
		l  *Layer
		mt string
	}{{m.Template, MediaTypeOllamaTemplate}, {m.ChatTemplate, MediaTypeDockerChatTemplate}, {m.System, MediaTypeOllamaSystem}, {m.Params, MediaTypeOllamaParams}, {m.Messages, MediaTypeOllamaMessages}} {
		if s.l != nil {
			add(*s.l, s.mt)
		}
	}
	for _, l := range m.Licenses {
		add(l, license)
	}
	for _, l := range m.Other {
		d := l.Descriptor(l.MediaType)
		if d.MediaType == "" {
			d.MediaType = "application/octet-stream"
		}
		if annotate {
			d.Annotations = fileAnnotations(l.Filename)
		}
		out = append(out, d)
	}
	return out
}

var modelPackWeightTypes = map[Archive]string{
	ArchiveNone:    MediaTypeModelPackWeightRaw,
	ArchiveTar:     MediaTypeModelPackWeightTar,
	ArchiveTarGzip: MediaTypeModelPackWeightTarGzip,
	ArchiveTarZstd: MediaTypeModelPackWeightTarZstd,
}

func modelPackLayers(m *Model) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, w := range m.Weights {
		d := w.Descriptor(modelPackWeightTypes[w.Archive])
		d.Annotations = fileAnnotations(w.Filename)
		if w.Archive != ArchiveNone && d.Annotations != nil {
			// The file is inside the archive: a title would make `oras
			// pull` write the archive under the GGUF's name.
			delete(d.Annotations, AnnotationTitle)
		}
		out = append(out, d)
	}
	return behaviourLayers(m, out, true, false)
}

func diffIDs(layers []ocispec.Descriptor) []digest.Digest {
	ids := make([]digest.Digest, len(layers))
	for i, l := range layers {
		ids[i] = l.Digest
	}
	return ids
}

func weightsFormat(m *Model) string {
	if m.Config.Format != "" {
		return m.Config.Format
	}
	return "gguf"
}

func modelPackConfigOf(m *Model, created time.Time, layers []ocispec.Descriptor) modelPackConfig {
	c := m.Config
	cfg := modelPackConfig{
		Descriptor: modelPackDescriptor{
			CreatedAt:   &created,
			Family:      c.Family,
			Name:        c.Name,
			Licenses:    c.Licenses,
			Description: c.Description,
		},
		ModelFS: modelPackFS{Type: "layers", DiffIDs: diffIDs(layers)},
		Config: modelPackSettings{
			Architecture: c.Architecture,
			Format:       weightsFormat(m),
			ParamSize:    c.ParamSize,
			Quantization: c.Quantization,
		},
	}
	if len(c.Capabilities) > 0 {
		caps := &modelPackCapabilities{}
		yes := true
		for _, name := range c.Capabilities {
			switch name {
			case "completion":
				caps.InputTypes = appendNew(caps.InputTypes, "text")
				caps.OutputTypes = appendNew(caps.OutputTypes, "text")
			case "vision":
				caps.InputTypes = appendNew(caps.InputTypes, "image")
			case "embedding":
				caps.InputTypes = appendNew(caps.InputTypes, "text")
				caps.OutputTypes = appendNew(caps.OutputTypes, "embedding")
			case "tools":
				caps.ToolUsage = &yes
			case "thinking":
				caps.Reasoning = &yes
			}
		}
		cfg.Config.Capabilities = caps
	}
	return cfg
}

func appendNew(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func ollamaLayers(m *Model) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, w := range m.Weights {
		out = append(out, w.Descriptor(MediaTypeOllamaModel))
	}
	return behaviourLayers(m, out, false, false)
}

func ollamaConfigOf(m *Model, layers []ocispec.Descriptor) ollamaConfig {
	c := m.Config
	family := c.Family
	if family == "" {
		family = c.Architecture
	}
	cfg := ollamaConfig{
		ModelFormat:  weightsFormat(m),
		ModelFamily:  family,
		ModelType:    c.ParamSize,
		FileType:     c.Quantization,
		Capabilities: c.Capabilities,
		ContextLen:   c.ContextLength,
		Requires:     c.Requires,
		Architecture: "amd64",
		OS:           "linux",
		RootFS:       ollamaRootFS{Type: "layers", DiffIDs: diffIDs(layers)},
	}
	if family != "" {
		cfg.ModelFamilies = []string{family}
	}
	return cfg
}

func dockerLayers(m *Model) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, w := range m.Weights {
		d := w.Descriptor(MediaTypeDockerGGUF)
		d.Annotations = fileAnnotations(w.Filename)
		out = append(out, d)
	}
	return behaviourLayers(m, out, true, true)
}

func dockerConfigOf(m *Model, created time.Time, layers []ocispec.Descriptor) dockerConfig {
	c := m.Config
	var size int64
	for _, w := range m.Weights {
		size += w.Size
	}
	cfg := dockerConfig{
		Config: dockerSettings{
			Format:       weightsFormat(m),
			Quantization: c.Quantization,
			Parameters:   c.ParamSize,
			Architecture: c.Architecture,
			Size:         binarySize(size),
		},
		Descriptor: dockerDescriptor{Created: &created},
		RootFS:     dockerRootFS{Type: "rootfs", DiffIDs: diffIDs(layers)},
	}
	if c.ContextLength > 0 && c.ContextLength <= 1<<31-1 {
		n := int32(c.ContextLength)
		cfg.Config.ContextSize = &n
	}
	return cfg
}

// binarySize formats a byte count the way Docker's tools do ("244.5MiB").
func binarySize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}
