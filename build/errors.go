package build

import "errors"

// Sentinel errors, wrapped with detail; test with errors.Is. Parse and
// validation errors of the Modelfile itself are modelfile's (such as
// modelfile.ErrUnknownParameter) and pass through wrapped.
var (
	// ErrInvalidRequest: the request is incomplete or contradictory (no
	// Modelfile, no tag, FROM together with Files, a bad format or label).
	ErrInvalidRequest = errors.New("invalid build request")
	// ErrNotFound: a FROM or ADAPTER path does not exist, or a FROM model is
	// neither in the store nor pullable.
	ErrNotFound = errors.New("not found")
	// ErrInvalidWeights: a weights, projector or adapter file is not a valid
	// GGUF (bad magic, truncated, a tensor past the end of the file).
	ErrInvalidWeights = errors.New("invalid model file")
	// ErrUnsupported: the build asks for something olm cannot do yet (a
	// safetensors adapter, quantizing a split GGUF, converting without a
	// converter).
	ErrUnsupported = errors.New("unsupported")
)
