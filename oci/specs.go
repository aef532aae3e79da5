package oci

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// The JSON documents of each format, restated from their specifications with
// only the fields olm reads or writes. Field names and omitempty follow the
// originals so that what olm writes validates against them.

// modelPackConfig is application/vnd.cncf.model.config.v1+json (and the
// older application/vnd.cnai.model.config.v1+json, which has the same shape).
// Its JSON schema forbids additional properties, so nothing olm-specific is
// added here.
type modelPackConfig struct {
	Descriptor modelPackDescriptor `json:"descriptor"`
	ModelFS    modelPackFS         `json:"modelfs"`
	Config     modelPackSettings   `json:"config"`
}

type modelPackDescriptor struct {
	CreatedAt   *time.Time `json:"createdAt,omitempty"`
	Authors     []string   `json:"authors,omitempty"`
	Family      string     `json:"family,omitempty"`
	Name        string     `json:"name,omitempty"`
	DocURL      string     `json:"docURL,omitempty"`
	SourceURL   string     `json:"sourceURL,omitempty"`
	Version     string     `json:"version,omitempty"`
	Revision    string     `json:"revision,omitempty"`
	Vendor      string     `json:"vendor,omitempty"`
	Licenses    []string   `json:"licenses,omitempty"`
	Title       string     `json:"title,omitempty"`
	Description string     `json:"description,omitempty"`
}

type modelPackFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diffIds"`
}

type modelPackSettings struct {
	Architecture string                 `json:"architecture,omitempty"`
	Format       string                 `json:"format,omitempty"`
	ParamSize    string                 `json:"paramSize,omitempty"`
	Precision    string                 `json:"precision,omitempty"`
	Quantization string                 `json:"quantization,omitempty"`
	Capabilities *modelPackCapabilities `json:"capabilities,omitempty"`
}

type modelPackCapabilities struct {
	InputTypes  []string `json:"inputTypes,omitempty"`
	OutputTypes []string `json:"outputTypes,omitempty"`
	Reasoning   *bool    `json:"reasoning,omitempty"`
	ToolUsage   *bool    `json:"toolUsage,omitempty"`
	Reward      *bool    `json:"reward,omitempty"`
	Languages   []string `json:"languages,omitempty"`
}

// ollamaConfig is Ollama's config blob (ConfigV2 in Ollama's server), a
// Docker image config (application/vnd.docker.container.image.v1+json) with
// model fields. olm never writes Ollama's "from" layer field, which leaks
// local paths.
type ollamaConfig struct {
	ModelFormat   string   `json:"model_format"`
	ModelFamily   string   `json:"model_family"`
	ModelFamilies []string `json:"model_families"`
	ModelType     string   `json:"model_type"`
	FileType      string   `json:"file_type"`
	Renderer      string   `json:"renderer,omitempty"`
	Parser        string   `json:"parser,omitempty"`
	Requires      string   `json:"requires,omitempty"`
	Capabilities  []string `json:"capabilities,omitempty"`
	ContextLen    int      `json:"context_length,omitempty"`

	// Required by the Docker image config.
	Architecture string       `json:"architecture"`
	OS           string       `json:"os"`
	RootFS       ollamaRootFS `json:"rootfs"`
}

type ollamaRootFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diff_ids"`
}

// dockerConfig is Docker Model Runner's config, versions v0.1 and v0.2
// (types.ConfigFile in docker/model-runner).
type dockerConfig struct {
	Config     dockerSettings   `json:"config"`
	Descriptor dockerDescriptor `json:"descriptor"`
	RootFS     dockerRootFS     `json:"rootfs"`
}

type dockerSettings struct {
	Format       string            `json:"format,omitempty"`
	Quantization string            `json:"quantization,omitempty"`
	Parameters   string            `json:"parameters,omitempty"`
	Architecture string            `json:"architecture,omitempty"`
	Size         string            `json:"size,omitempty"`
	GGUF         map[string]string `json:"gguf,omitempty"`
	ContextSize  *int32            `json:"context_size,omitempty"`
}

type dockerDescriptor struct {
	Created *time.Time `json:"created,omitempty"`
}

type dockerRootFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diff_ids"`
}

// kitFile is a KitOps ModelKit config: the Kitfile as JSON.
type kitFile struct {
	ManifestVersion string     `json:"manifestVersion"`
	Package         kitPackage `json:"package"`
	Model           *kitModel  `json:"model,omitempty"`
	Docs            []kitEntry `json:"docs,omitempty"`
	Code            []kitEntry `json:"code,omitempty"`
	DataSets        []kitEntry `json:"datasets,omitempty"`
}

type kitPackage struct {
	Name        string   `json:"name,omitempty"`
	Version     string   `json:"version,omitempty"`
	Description string   `json:"description,omitempty"`
	License     string   `json:"license,omitempty"`
	Authors     []string `json:"authors,omitempty"`
}

type kitModel struct {
	Name        string         `json:"name,omitempty"`
	Path        string         `json:"path,omitempty"`
	License     string         `json:"license,omitempty"`
	Framework   string         `json:"framework,omitempty"`
	Format      string         `json:"format,omitempty"`
	Version     string         `json:"version,omitempty"`
	Description string         `json:"description,omitempty"`
	Parts       []kitModelPart `json:"parts,omitempty"`
	Digest      string         `json:"digest,omitempty"`
}

type kitModelPart struct {
	Name    string `json:"name,omitempty"`
	Path    string `json:"path,omitempty"`
	License string `json:"license,omitempty"`
	Type    string `json:"type,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

type kitEntry struct {
	Path        string `json:"path,omitempty"`
	Description string `json:"description,omitempty"`
	License     string `json:"license,omitempty"`
	Digest      string `json:"digest,omitempty"`
}
