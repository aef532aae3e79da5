package server

import (
	"context"
	"io"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/runner"
)

// Model is what the server knows about a local model: what to load and how
// to prompt it. Models.Resolve makes one from the store.
type Model struct {
	// Name is the model's name as listed ("llama3.2:latest", or a full
	// reference for models from other registries).
	Name string
	// Digest is the manifest digest ("sha256:<hex>").
	Digest string
	// Size is the total size of its layers in bytes.
	Size int64
	// ModifiedAt is when it was created or pulled.
	ModifiedAt time.Time
	// Details summarizes the weights (format, family, size, quantization).
	Details api.ModelDetails
	// Capabilities are Ollama's capability names ("completion",
	// "embedding", "tools", "vision", "thinking", "insert").
	Capabilities []string

	// WeightsPath is the path of the GGUF file (the first part of a split GGUF).
	WeightsPath string
	// WeightsParts are the paths of a split GGUF's other parts, in order
	// (none for a whole GGUF).
	WeightsParts []string
	// ProjectorPath is the multimodal projector GGUF ("" for none).
	ProjectorPath string
	// AdapterPaths are LoRA adapters, applied in order.
	AdapterPaths []string

	// Template is a Modelfile TEMPLATE (Go text/template); "" means the
	// runner applies the model's own chat template.
	Template string
	// ChatTemplate is a Jinja chat template layer that replaces the GGUF's
	// own ("" for none).
	ChatTemplate string
	// System is the default system message ("" for none).
	System string
	// Options are the model's PARAMETER values.
	Options api.Options
	// Messages are the model's MESSAGE lines, put before every chat.
	Messages []api.Message
	// Licenses are the license texts.
	Licenses []string
}

// Runner generates with one loaded model. *runner.Client implements it.
type Runner interface {
	Info(ctx context.Context) (*runner.Info, error)
	Tokenize(ctx context.Context, req runner.TokenizeRequest) ([]int32, error)
	Embed(ctx context.Context, req runner.EmbedRequest) (*runner.EmbedResponse, error)
	Render(ctx context.Context, req runner.ChatRequest) (*runner.RenderResponse, error)
	Completion(ctx context.Context, req runner.CompletionRequest, fn func(runner.CompletionEvent) error) (*runner.CompletionEvent, error)
	Chat(ctx context.Context, req runner.ChatRequest, fn func(runner.ChatEvent) error) (*runner.ChatEvent, error)
}

// Target is what Engine.Acquire loads.
type Target struct {
	// Model is the model.
	Model *Model
	// Load are the load options: paths from Model, sizes from the model's
	// parameters and the request's options. Parallel is left to the engine.
	Load runner.LoadOptions
	// KeepAlive is how long the model stays loaded after the request; nil
	// means the engine's default (OLM_KEEP_ALIVE, 5m). api.Forever keeps
	// it loaded, 0 unloads it when the request ends.
	KeepAlive *time.Duration
}

// Running describes a loaded model for GET /api/ps.
type Running struct {
	// Model is the model as it was given to Acquire.
	Model *Model
	// Size is the memory the model uses in bytes; SizeVRAM the part on a GPU.
	Size, SizeVRAM int64
	// ExpiresAt is when it will be unloaded if unused (zero: never).
	ExpiresAt time.Time
	// ContextLength is each slot's context in tokens.
	ContextLength int
}

// Engine loads models and hands out runners. Implementations must be safe
// for concurrent use.
type Engine interface {
	// Acquire loads t's model if it is not loaded (or loaded with other
	// load options), waits for a free slot, and returns a runner to use
	// until release is called (exactly once). A full queue is ErrBusy.
	Acquire(ctx context.Context, t Target) (r Runner, release func(), err error)
	// Unload unloads the named model now (ErrNotFound if not loaded is
	// acceptable to ignore; the server treats it as done).
	Unload(ctx context.Context, name string) error
	// Running lists the loaded models.
	Running(ctx context.Context) ([]Running, error)
}

// Models is the local model store.
type Models interface {
	// Resolve finds a model by name; ErrNotFound if there is none, an
	// error wrapping oci.ErrInvalidReference for a malformed name.
	Resolve(ctx context.Context, name string) (*Model, error)
	// List returns every local model.
	List(ctx context.Context) ([]*Model, error)
	// ModelInfo returns the GGUF metadata of m's weights as /api/show's
	// model_info; without verbose, large arrays are returned empty.
	ModelInfo(ctx context.Context, m *Model, verbose bool) (map[string]any, error)
	// Copy tags the model src also as dst.
	Copy(ctx context.Context, src, dst string) error
	// Delete removes the model's name (and its blobs if unused).
	Delete(ctx context.Context, name string) error
	// HasBlob reports whether the blob is in the store.
	HasBlob(ctx context.Context, digest string) (bool, error)
	// PutBlob stores r as the blob digest, verifying it; size is the
	// content length in bytes, or -1 when unknown. A mismatch is an error
	// wrapping ErrBadRequest.
	PutBlob(ctx context.Context, digest string, size int64, r io.Reader) error
}

// Builder creates models (POST /api/create).
type Builder interface {
	// Create builds req.Model, calling fn with progress as it goes
	// ("parsing GGUF", "using existing layer sha256:...", "writing
	// manifest"); the server sends "success" itself.
	Create(ctx context.Context, req *api.CreateRequest, fn func(api.ProgressResponse) error) error
}

// TransferPhase is the phase of a pull or push.
type TransferPhase int

// Transfer phases, in the order they happen.
const (
	// PhaseManifest: fetching (pull) or reading (push) the manifest.
	PhaseManifest TransferPhase = iota
	// PhaseLayer: a blob is being transferred; Digest, Total and Completed are set.
	PhaseLayer
	// PhaseVerify: blobs are being verified.
	PhaseVerify
	// PhaseWriteManifest: the manifest is being written (pull) or pushed (push).
	PhaseWriteManifest
	// PhasePrune (pull only): the pull moved the tag off an older manifest,
	// and blobs no model uses any more are being removed.
	PhasePrune
)

// TransferEvent reports pull/push progress.
type TransferEvent struct {
	Phase TransferPhase
	// Digest, Total and Completed describe the blob of a PhaseLayer event
	// (sizes in bytes).
	Digest           string
	Total, Completed int64
}

// Transfers pulls and pushes models between the store and registries.
type Transfers interface {
	// Pull downloads the model name, calling fn with progress.
	Pull(ctx context.Context, name string, insecure bool, fn func(TransferEvent) error) error
	// Push uploads the local model name, calling fn with progress.
	Push(ctx context.Context, name string, insecure bool, fn func(TransferEvent) error) error
}
