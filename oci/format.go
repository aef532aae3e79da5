package oci

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Format is a model artifact format.
type Format string

// The formats olm reads. FormatModelPack, FormatOllama and FormatDocker are
// also written by BuildManifest.
const (
	// FormatModelPack is CNCF ModelPack (OCI 1.1 image manifest, artifactType
	// application/vnd.cncf.model.manifest.v1+json), olm's default.
	FormatModelPack Format = "modelpack"
	// FormatModelPackCNAI is ModelPack with the older vnd.cnai prefixes (read only).
	FormatModelPackCNAI Format = "modelpack-cnai"
	// FormatOllama is Ollama's format (Docker v2 schema 2 manifest,
	// application/vnd.ollama.image.* layers).
	FormatOllama Format = "ollama"
	// FormatDocker is Docker Model Runner's config v0.2.
	FormatDocker Format = "docker"
	// FormatDockerV01 is Docker Model Runner's config v0.1 (read only).
	FormatDockerV01 Format = "docker-v0.1"
	// FormatKitOps is a KitOps ModelKit (read only; only GGUF models).
	FormatKitOps Format = "kitops"
)

// WritableFormats lists the formats BuildManifest writes, default first.
var WritableFormats = []Format{FormatModelPack, FormatOllama, FormatDocker}

// ParseFormat parses a --format value: "modelpack" (or empty, the default),
// "ollama" or "docker". The error wraps ErrUnsupportedFormat.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return FormatModelPack, nil
	case FormatModelPack, FormatOllama, FormatDocker:
		return f, nil
	}
	return "", fmt.Errorf("%w %q: olm writes %s", ErrUnsupportedFormat, clip(s), formatList(WritableFormats))
}

func formatList(fs []Format) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// ManifestMediaType returns the media type of the manifests BuildManifest
// writes in format f: Docker's v2 schema 2 for FormatOllama, the OCI image
// manifest otherwise.
func (f Format) ManifestMediaType() string {
	if f == FormatOllama {
		return MediaTypeDockerManifest
	}
	return MediaTypeOCIManifest
}

// String returns the format's name.
func (f Format) String() string { return string(f) }

// rawManifest is the part of any manifest that detection needs. Docker v2
// schema 2 and OCI image manifests share these fields.
type rawManifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType,omitempty"`
	ArtifactType  string               `json:"artifactType,omitempty"`
	Config        ocispec.Descriptor   `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests,omitempty"`
	Annotations   map[string]string    `json:"annotations,omitempty"`
}

// decodeManifest decodes and checks the common shape of a manifest.
// mediaType is the media type the registry or store reported ("" if none).
func decodeManifest(manifest []byte, mediaType string) (*rawManifest, error) {
	if len(manifest) > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest is %d bytes, the limit is %d", ErrTooLarge, len(manifest), MaxManifestSize)
	}
	if err := checkKeys(manifest); err != nil {
		return nil, err
	}
	var m rawManifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest is not JSON: %v", ErrInvalidManifest, err)
	}
	if m.MediaType != "" && mediaType != "" && m.MediaType != mediaType {
		return nil, fmt.Errorf("%w: manifest says mediaType %q but was served as %q", ErrInvalidManifest, clip(m.MediaType), clip(mediaType))
	}
	if m.MediaType == "" {
		m.MediaType = mediaType
	}
	switch m.MediaType {
	case MediaTypeOCIIndex, MediaTypeDockerManifestList:
		return nil, fmt.Errorf("%w: %s is an index of %d manifests, not a model manifest; pick one of them by digest", ErrUnsupportedFormat, m.MediaType, len(m.Manifests))
	case "", MediaTypeOCIManifest, MediaTypeDockerManifest:
	default:
		return nil, fmt.Errorf("%w: manifest media type %q is not an OCI image manifest or Docker v2 schema 2 manifest", ErrUnsupportedFormat, clip(m.MediaType))
	}
	if m.Manifests != nil {
		return nil, fmt.Errorf("%w: manifest has a \"manifests\" list; it is an index without a media type", ErrUnsupportedFormat)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion is %d, want 2", ErrInvalidManifest, m.SchemaVersion)
	}
	if len(m.Layers) > MaxLayers {
		return nil, fmt.Errorf("%w: manifest has %d layers, the limit is %d", ErrTooLarge, len(m.Layers), MaxLayers)
	}
	if err := validateDescriptor("config", m.Config); err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		if err := validateDescriptor(fmt.Sprintf("layer %d", i), l); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// DetectFormat returns the model format of a manifest. mediaType is the
// manifest media type the registry or store reported, or "" to use the one in
// the manifest. It checks the manifest's shape, digests and size bounds, but
// fetches nothing. A manifest of no model format olm reads gets an error
// wrapping ErrUnsupportedFormat that names the media types found.
func DetectFormat(manifest []byte, mediaType string) (Format, error) {
	m, err := decodeManifest(manifest, mediaType)
	if err != nil {
		return "", err
	}
	return detect(m)
}

func detect(m *rawManifest) (Format, error) {
	cfg := m.Config.MediaType
	switch {
	case m.ArtifactType == ArtifactTypeModelPack || cfg == MediaTypeModelPackConfig:
		return FormatModelPack, nil
	case m.ArtifactType == ArtifactTypeCNAIModel || cfg == MediaTypeCNAIConfig:
		return FormatModelPackCNAI, nil
	case cfg == MediaTypeDockerModelConfigV02:
		return FormatDocker, nil
	case cfg == MediaTypeDockerModelConfigV01:
		return FormatDockerV01, nil
	case m.ArtifactType == ArtifactTypeKitOps || cfg == MediaTypeKitOpsConfig:
		return FormatKitOps, nil
	case cfg == MediaTypeDockerConfig && slices.ContainsFunc(m.Layers, func(d ocispec.Descriptor) bool {
		return strings.HasPrefix(d.MediaType, MediaTypeOllamaPrefix)
	}):
		return FormatOllama, nil
	}
	return "", fmt.Errorf("%w: %s", ErrUnsupportedFormat, describe(m))
}

// describe names the media types of a manifest for an error message.
func describe(m *rawManifest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "manifest %q", m.MediaType)
	if m.ArtifactType != "" {
		fmt.Fprintf(&b, " with artifactType %q", clip(m.ArtifactType))
	}
	fmt.Fprintf(&b, ", config %q", clip(m.Config.MediaType))
	seen := map[string]bool{}
	var layers []string
	for _, l := range m.Layers {
		if !seen[l.MediaType] && len(layers) < 10 {
			seen[l.MediaType] = true
			layers = append(layers, fmt.Sprintf("%q", clip(l.MediaType)))
		}
	}
	fmt.Fprintf(&b, ", layers [%s]", strings.Join(layers, ", "))
	b.WriteString(" is not a model format olm reads (ModelPack, Ollama, Docker Model Runner, KitOps)")
	return b.String()
}
