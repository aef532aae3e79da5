package convert

import "errors"

// Sentinel errors, wrapped with detail; test with errors.Is.
var (
	// ErrUnsupported means the checkpoint uses an architecture, dtype or
	// tokenizer that convert does not handle; the message names what was
	// found and what is supported.
	ErrUnsupported = errors.New("convert: unsupported")
	// ErrInvalid means a file of the checkpoint is malformed or
	// inconsistent (bad safetensors header, missing tensor, wrong shape).
	ErrInvalid = errors.New("convert: invalid checkpoint")
	// ErrNotFound means a required file (config.json, weights, tokenizer)
	// is missing from the directory.
	ErrNotFound = errors.New("convert: missing file")
)
