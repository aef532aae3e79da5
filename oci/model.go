package oci

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Bounds on what this package reads into memory. Sizes in manifests are
// attacker-controlled, so nothing larger is fetched or allocated.
const (
	// MaxManifestSize is the largest manifest accepted, in bytes (4 MiB, the
	// limit registries apply).
	MaxManifestSize = 4 << 20
	// MaxConfigSize is the largest config blob accepted, in bytes (4 MiB).
	MaxConfigSize = 4 << 20
	// MaxSmallLayerSize is the largest template, system, params, messages or
	// license layer read into memory, in bytes (4 MiB).
	MaxSmallLayerSize = 4 << 20
	// MaxLayers is the largest number of layers in one manifest.
	MaxLayers = 4096
	// maxFilename bounds a layer's file path annotation.
	maxFilename = 1024
)

// Archive says how a layer wraps its file.
type Archive string

// Layer archive kinds. ArchiveNone is a raw file (the layer's bytes are the
// file); the others hold the file inside a tar archive, which must be unpacked
// (see OpenArchived) before llama.cpp can map it.
const (
	ArchiveNone    Archive = ""
	ArchiveTar     Archive = "tar"
	ArchiveTarGzip Archive = "tar+gzip"
	ArchiveTarZstd Archive = "tar+zstd"
)

// Layer is one content-addressed file of a model.
type Layer struct {
	// Digest and Size identify the blob (for an archived layer, the archive).
	Digest digest.Digest
	Size   int64

	// MediaType is the layer's media type in the manifest it was read from.
	// BuildManifest ignores it and writes the media type of the target format.
	MediaType string

	// Filename is the file's relative, slash-separated path inside the model
	// ("model.gguf", "mmproj-f16.gguf"), from the org.cncf.model.filepath or
	// org.opencontainers.image.title annotation; empty when the manifest names
	// none (Ollama manifests never do). It never is absolute or contains "..".
	Filename string

	// Archive is ArchiveNone for a raw file.
	Archive Archive

	// Data is the content of small layers (template, system, params,
	// messages, license) when ParseModel could fetch them; it always matches
	// Digest. Nil for weights, projectors and adapters.
	Data []byte
}

// Descriptor returns the OCI descriptor of the layer with the given media type.
func (l Layer) Descriptor(mediaType string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: l.Digest, Size: l.Size}
}

// Config is what a model's config blob says about it, in one vocabulary for
// every format. Empty fields are unknown.
type Config struct {
	// Name is the model's name (ModelPack descriptor.name, KitOps package.name).
	Name string
	// Description is a human-readable description.
	Description string
	// Family is the model family ("llama"): Ollama's model_family, ModelPack's
	// descriptor.family.
	Family string
	// Architecture is the GGUF general.architecture ("llama", "qwen2").
	Architecture string
	// Format is the weights' file format; olm runs "gguf".
	Format string
	// ParamSize is the parameter count as people write it ("8B", "494.03M"):
	// Ollama's model_type, ModelPack's paramSize, Docker's parameters.
	ParamSize string
	// Quantization is the GGUF file type ("Q4_K_M", "F16"): Ollama's file_type.
	Quantization string
	// ContextLength is the trained context length in tokens (Docker's
	// context_size, Ollama's context_length); 0 if unknown. ModelPack has no
	// field for it: the GGUF header has it.
	ContextLength int
	// Capabilities uses Ollama's names in this order: "completion",
	// "vision", "embedding", "tools", "thinking" ("insert" is kept only in
	// the Ollama format).
	Capabilities []string
	// Licenses are SPDX license expressions (ModelPack descriptor.licenses,
	// KitOps license fields). License texts are layers (Model.Licenses).
	Licenses []string
	// Created is when the model was built; zero if unknown.
	Created time.Time
	// Requires is the oldest Ollama release the model needs, as the
	// Modelfile's REQUIRES gives it ("0.5.0", MAJOR.MINOR.PATCH with an
	// optional pre-release): Ollama's config "requires"; in the ModelPack
	// and Docker formats, whose configs have no such field, the manifest
	// annotation AnnotationRequires. Empty: none.
	Requires string
}

// Model is the single view of a model that the rest of olm works with,
// whatever format its manifest is in. ParseModel makes one from a manifest,
// BuildManifest writes one as a manifest of any writable format.
type Model struct {
	// Format is the format the manifest was read from (set by ParseModel).
	Format Format

	// Config holds the model's metadata.
	Config Config

	// Weights are the GGUF weights, in order: one layer, or the parts of a
	// split GGUF (model-00001-of-00003.gguf, …). Never empty in a parsed model.
	Weights []Layer
	// Projectors are multimodal projectors (GGUF).
	Projectors []Layer
	// Adapters are LoRA adapters (GGUF), applied in order.
	Adapters []Layer
	// Template is Ollama's prompt template (Go text/template), if any.
	Template *Layer
	// ChatTemplate is a Jinja chat template (Docker's format), if any.
	ChatTemplate *Layer
	// System is the default system message, if any.
	System *Layer
	// Params is the default options as a JSON object, if any.
	Params *Layer
	// Messages is a JSON array of {"role","content"} messages, if any.
	Messages *Layer
	// Licenses are license texts.
	Licenses []Layer
	// Other holds layers olm carries along but does not use (documentation,
	// tokenizer files, datasets), with their original media types.
	Other []Layer
}

// Layers returns every layer of m in the order the writers emit them:
// weights, projectors, adapters, template, chat template, system, params,
// messages, licenses, others.
func (m *Model) Layers() []Layer {
	var out []Layer
	out = append(out, m.Weights...)
	out = append(out, m.Projectors...)
	out = append(out, m.Adapters...)
	for _, l := range []*Layer{m.Template, m.ChatTemplate, m.System, m.Params, m.Messages} {
		if l != nil {
			out = append(out, *l)
		}
	}
	out = append(out, m.Licenses...)
	out = append(out, m.Other...)
	return out
}

// Size returns the total size of the layers in bytes.
func (m *Model) Size() int64 {
	var n int64
	for _, l := range m.Layers() {
		n += l.Size
	}
	return n
}

// Fetcher reads a blob by descriptor. ParseModel calls it only for blobs of
// at most MaxConfigSize or MaxSmallLayerSize bytes, and verifies size and
// digest of what it returns. An implementation should still read at most
// desc.Size+1 bytes. It must be safe to call from one goroutine at a time.
type Fetcher func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)

// cleanFilename checks a file path from a manifest annotation and returns it
// cleaned: relative, slash-separated, without "." or ".." components. A path
// that would escape the model's folder is an error (ErrInvalidManifest).
func cleanFilename(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: file path %q %s", ErrInvalidManifest, clip(name), why)
	}
	if len(name) > maxFilename {
		return bad("is too long")
	}
	if !utf8.ValidString(name) {
		return bad("is not UTF-8")
	}
	if strings.ContainsAny(name, "\\\x00") {
		return bad("contains a backslash or NUL")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return bad("contains a control character")
		}
	}
	if strings.HasPrefix(name, "/") {
		return bad("is absolute")
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return bad("escapes the model folder")
		}
	}
	clean := path.Clean(name)
	if clean == "." || clean == "" {
		return bad("names no file")
	}
	return clean, nil
}

// validateDescriptor checks the digest and size of a manifest entry.
func validateDescriptor(what string, d ocispec.Descriptor) error {
	if err := ValidateDigest(d.Digest); err != nil {
		return fmt.Errorf("%w: %s (%s): %w", ErrInvalidManifest, what, clip(d.MediaType), err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: %s %s has negative size %d", ErrInvalidManifest, what, d.Digest, d.Size)
	}
	return nil
}
