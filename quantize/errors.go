package quantize

import "errors"

// Sentinel errors, wrapped with detail; test with errors.Is.
var (
	// ErrUnknownType: the target type is not one the worker supports.
	ErrUnknownType = errors.New("unknown quantization type")
	// ErrAlreadyQuantized: the input's weights are already quantized;
	// quantize from an F32, F16 or BF16 model instead.
	ErrAlreadyQuantized = errors.New("model is already quantized")
	// ErrInput: the input is missing or not a valid GGUF file.
	ErrInput = errors.New("invalid quantize input")
	// ErrWorker: the worker process failed or crashed.
	ErrWorker = errors.New("quantize worker failed")
	// ErrNoWorker: the Quantizer has no worker command configured.
	ErrNoWorker = errors.New("no quantize worker configured")
)
