package oci

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// Manifest media types of the registries' wire formats.
const (
	// MediaTypeOCIManifest is the OCI 1.1 image manifest, used by ModelPack,
	// Docker Model Runner and KitOps.
	MediaTypeOCIManifest = ocispec.MediaTypeImageManifest
	// MediaTypeOCIIndex is the OCI image index.
	MediaTypeOCIIndex = ocispec.MediaTypeImageIndex
	// MediaTypeDockerManifest is Docker's image manifest v2 schema 2, used by
	// Ollama.
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	// MediaTypeDockerManifestList is Docker's manifest list (a multi-platform index).
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	// MediaTypeDockerConfig is Docker's image config, used by Ollama for its
	// model config (model_format, model_family, file_type, …).
	MediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
	// MediaTypeEmptyJSON is the OCI empty descriptor "{}".
	MediaTypeEmptyJSON = ocispec.MediaTypeEmptyJSON
)

// ManifestAcceptTypes lists the manifest media types to send in an Accept
// header when fetching a model manifest: the OCI and Docker manifests every
// format uses, and the two index types (so that an index is recognised and
// reported rather than converted by the registry).
var ManifestAcceptTypes = []string{
	MediaTypeOCIManifest,
	MediaTypeDockerManifest,
	MediaTypeOCIIndex,
	MediaTypeDockerManifestList,
}

// CNCF ModelPack (github.com/modelpack/model-spec, specs-go/v1), the format
// olm writes by default.
const (
	// ArtifactTypeModelPack is the artifactType of a ModelPack manifest.
	ArtifactTypeModelPack = "application/vnd.cncf.model.manifest.v1+json"
	// MediaTypeModelPackConfig is the ModelPack config (descriptor, config, modelfs).
	MediaTypeModelPackConfig = "application/vnd.cncf.model.config.v1+json"
	// MediaTypeModelPackWeightRaw is an unarchived, uncompressed weight file
	// (for olm: one GGUF file, or one part of a split GGUF).
	MediaTypeModelPackWeightRaw = "application/vnd.cncf.model.weight.v1.raw"
	// MediaTypeModelPackWeightTar is weights in a tar archive.
	MediaTypeModelPackWeightTar = "application/vnd.cncf.model.weight.v1.tar"
	// MediaTypeModelPackWeightTarGzip is weights in a gzipped tar archive.
	MediaTypeModelPackWeightTarGzip = "application/vnd.cncf.model.weight.v1.tar+gzip"
	// MediaTypeModelPackWeightTarZstd is weights in a zstd-compressed tar archive.
	MediaTypeModelPackWeightTarZstd = "application/vnd.cncf.model.weight.v1.tar+zstd"
	// MediaTypeModelPackWeightConfigRaw is a raw weight configuration file
	// (tokenizer.json, config.json, …).
	MediaTypeModelPackWeightConfigRaw = "application/vnd.cncf.model.weight.config.v1.raw"
	// MediaTypeModelPackWeightConfigTar is weight configuration files in a tar archive.
	MediaTypeModelPackWeightConfigTar = "application/vnd.cncf.model.weight.config.v1.tar"
	// MediaTypeModelPackDocRaw is a raw documentation file (README.md, LICENSE, …).
	MediaTypeModelPackDocRaw = "application/vnd.cncf.model.doc.v1.raw"
	// MediaTypeModelPackDocTar is documentation in a tar archive.
	MediaTypeModelPackDocTar = "application/vnd.cncf.model.doc.v1.tar"
	// MediaTypeModelPackCodeRaw is a raw code file.
	MediaTypeModelPackCodeRaw = "application/vnd.cncf.model.code.v1.raw"
	// MediaTypeModelPackCodeTar is code in a tar archive.
	MediaTypeModelPackCodeTar = "application/vnd.cncf.model.code.v1.tar"
	// MediaTypeModelPackDatasetRaw is a raw dataset file.
	MediaTypeModelPackDatasetRaw = "application/vnd.cncf.model.dataset.v1.raw"
	// MediaTypeModelPackDatasetTar is a dataset in a tar archive.
	MediaTypeModelPackDatasetTar = "application/vnd.cncf.model.dataset.v1.tar"

	// AnnotationModelPackFilepath is the layer annotation with the file's
	// path inside the model (a relative, slash-separated path).
	AnnotationModelPackFilepath = "org.cncf.model.filepath"
	// AnnotationModelPackFileMetadata is the layer annotation with the file's
	// metadata as JSON (name, mode, uid, gid, size, mtime, typeflag).
	AnnotationModelPackFileMetadata = "org.cncf.model.file.metadata+json"
	// AnnotationModelPackMediaTypeUntested marks a layer whose media type was
	// guessed ("true" or "false").
	AnnotationModelPackMediaTypeUntested = "org.cncf.model.file.mediatype.untested"
)

// The ModelPack draft before it joined the CNCF (github.com/CloudNativeAI/model-spec)
// used "cnai" prefixes. olm reads these; it never writes them.
const (
	// ArtifactTypeCNAIModel is the artifactType of an older ModelPack manifest.
	ArtifactTypeCNAIModel = "application/vnd.cnai.model.manifest.v1+json"
	// MediaTypeCNAIConfig is the older ModelPack config.
	MediaTypeCNAIConfig = "application/vnd.cnai.model.config.v1+json"
	// MediaTypeCNAIWeightRaw is an older raw weight layer.
	MediaTypeCNAIWeightRaw = "application/vnd.cnai.model.weight.v1.raw"
	// MediaTypeCNAIWeightTar is an older tar weight layer.
	MediaTypeCNAIWeightTar = "application/vnd.cnai.model.weight.v1.tar"
	// MediaTypeCNAIWeightConfigRaw is an older raw weight configuration layer.
	MediaTypeCNAIWeightConfigRaw = "application/vnd.cnai.model.weight.config.v1.raw"
	// MediaTypeCNAIDocRaw is an older raw documentation layer.
	MediaTypeCNAIDocRaw = "application/vnd.cnai.model.doc.v1.raw"
	// MediaTypeCNAIPrefix prefixes every older ModelPack media type.
	MediaTypeCNAIPrefix = "application/vnd.cnai.model."
	// AnnotationCNAIFilepath is the older file path annotation.
	AnnotationCNAIFilepath = "org.cnai.model.filepath"
)

// Ollama's layer media types (server/images.go in github.com/ollama/ollama).
// olm also uses them in ModelPack manifests for Modelfile behaviour, so that
// Ollama-aware readers understand those layers.
const (
	// MediaTypeOllamaModel is the GGUF weights.
	MediaTypeOllamaModel = "application/vnd.ollama.image.model"
	// MediaTypeOllamaProjector is a multimodal projector (GGUF).
	MediaTypeOllamaProjector = "application/vnd.ollama.image.projector"
	// MediaTypeOllamaAdapter is a LoRA adapter (GGUF).
	MediaTypeOllamaAdapter = "application/vnd.ollama.image.adapter"
	// MediaTypeOllamaTemplate is the prompt template (Go text/template text).
	MediaTypeOllamaTemplate = "application/vnd.ollama.image.template"
	// MediaTypeOllamaSystem is the system message (text).
	MediaTypeOllamaSystem = "application/vnd.ollama.image.system"
	// MediaTypeOllamaParams is the default options (a JSON object).
	MediaTypeOllamaParams = "application/vnd.ollama.image.params"
	// MediaTypeOllamaMessages is the conversation history (a JSON array of
	// {"role","content"} objects).
	MediaTypeOllamaMessages = "application/vnd.ollama.image.messages"
	// MediaTypeOllamaLicense is a license text; a model may have several.
	MediaTypeOllamaLicense = "application/vnd.ollama.image.license"
	// MediaTypeOllamaEmbed is a deprecated embedding-weights layer; read as weights.
	MediaTypeOllamaEmbed = "application/vnd.ollama.image.embed"
	// MediaTypeOllamaPrompt is the deprecated predecessor of the template layer.
	MediaTypeOllamaPrompt = "application/vnd.ollama.image.prompt"
	// MediaTypeOllamaPrefix prefixes every Ollama layer media type.
	MediaTypeOllamaPrefix = "application/vnd.ollama.image."
)

// Docker Model Runner (github.com/docker/model-runner, pkg/distribution/types):
// an OCI image manifest whose config names the model format.
const (
	// MediaTypeDockerModelConfigV01 is the Docker model config v0.1 (flat files).
	MediaTypeDockerModelConfigV01 = "application/vnd.docker.ai.model.config.v0.1+json"
	// MediaTypeDockerModelConfigV02 is the Docker model config v0.2 (files
	// carry org.cncf.model.filepath annotations).
	MediaTypeDockerModelConfigV02 = "application/vnd.docker.ai.model.config.v0.2+json"
	// MediaTypeDockerGGUF is a GGUF v3 file.
	MediaTypeDockerGGUF = "application/vnd.docker.ai.gguf.v3"
	// MediaTypeDockerSafetensors is a safetensors file (read as unsupported
	// weights: olm runs GGUF).
	MediaTypeDockerSafetensors = "application/vnd.docker.ai.safetensors"
	// MediaTypeDockerMMProj is a multimodal projector.
	MediaTypeDockerMMProj = "application/vnd.docker.ai.mmproj"
	// MediaTypeDockerChatTemplate is a Jinja chat template.
	MediaTypeDockerChatTemplate = "application/vnd.docker.ai.chat.template.jinja"
	// MediaTypeDockerLicense is a license text.
	MediaTypeDockerLicense = "application/vnd.docker.ai.license"
	// MediaTypeDockerVLLMConfigTar is a tar of vLLM configuration files.
	MediaTypeDockerVLLMConfigTar = "application/vnd.docker.ai.vllm.config.tar"
	// MediaTypeDockerDirTar is a tar of a directory.
	MediaTypeDockerDirTar = "application/vnd.docker.ai.dir.tar"
	// MediaTypeDockerDDUF is a Diffusers Unified Format file.
	MediaTypeDockerDDUF = "application/vnd.docker.ai.dduf"
)

// KitOps ModelKits (github.com/kitops-ml/kitops, pkg/lib/constants/mediatype).
// Layer types are application/vnd.kitops.modelkit.<kind>.v1.<tar|raw>[+gzip|+zstd].
const (
	// ArtifactTypeKitOps is the artifactType of a ModelKit manifest.
	ArtifactTypeKitOps = "application/vnd.kitops.modelkit.manifest.v1+json"
	// MediaTypeKitOpsConfig is the ModelKit config (the Kitfile as JSON).
	MediaTypeKitOpsConfig = "application/vnd.kitops.modelkit.config.v1+json"
	// MediaTypeKitOpsModelTar is the model in a tar archive.
	MediaTypeKitOpsModelTar = "application/vnd.kitops.modelkit.model.v1.tar"
	// MediaTypeKitOpsModelTarGzip is the model in a gzipped tar archive.
	MediaTypeKitOpsModelTarGzip = "application/vnd.kitops.modelkit.model.v1.tar+gzip"
	// MediaTypeKitOpsModelTarZstd is the model in a zstd-compressed tar archive.
	MediaTypeKitOpsModelTarZstd = "application/vnd.kitops.modelkit.model.v1.tar+zstd"
	// MediaTypeKitOpsModelRaw is the model as a raw file.
	MediaTypeKitOpsModelRaw = "application/vnd.kitops.modelkit.model.v1.raw"
	// MediaTypeKitOpsModelPartTar is a model part (tokenizer, projector, …) in a tar archive.
	MediaTypeKitOpsModelPartTar = "application/vnd.kitops.modelkit.modelpart.v1.tar"
	// MediaTypeKitOpsModelPartTarGzip is a model part in a gzipped tar archive.
	MediaTypeKitOpsModelPartTarGzip = "application/vnd.kitops.modelkit.modelpart.v1.tar+gzip"
	// MediaTypeKitOpsModelPartRaw is a model part as a raw file.
	MediaTypeKitOpsModelPartRaw = "application/vnd.kitops.modelkit.modelpart.v1.raw"
	// MediaTypeKitOpsDocsTar is documentation in a tar archive.
	MediaTypeKitOpsDocsTar = "application/vnd.kitops.modelkit.docs.v1.tar"
	// MediaTypeKitOpsDatasetTar is a dataset in a tar archive.
	MediaTypeKitOpsDatasetTar = "application/vnd.kitops.modelkit.dataset.v1.tar"
	// MediaTypeKitOpsCodeTar is code in a tar archive.
	MediaTypeKitOpsCodeTar = "application/vnd.kitops.modelkit.code.v1.tar"
	// MediaTypeKitOpsPrefix prefixes every ModelKit media type.
	MediaTypeKitOpsPrefix = "application/vnd.kitops.modelkit."
)

// OCI annotations olm reads and writes.
const (
	// AnnotationTitle is the file name of a layer; `oras pull` writes the
	// layer out under it.
	AnnotationTitle = ocispec.AnnotationTitle
	// AnnotationCreated is the creation time (RFC 3339). olm writes a fixed
	// value for reproducible builds when asked.
	AnnotationCreated = ocispec.AnnotationCreated
	// AnnotationRefName is the tag of a manifest in an OCI image layout's index.json.
	AnnotationRefName = ocispec.AnnotationRefName
	// AnnotationRequires is the manifest annotation with Config.Requires in
	// the ModelPack and Docker formats (Ollama's format keeps it in its
	// config's "requires" field; ModelPack's config schema allows no
	// extra field).
	AnnotationRequires = "io.github.olmhq.olm.requires"
)
