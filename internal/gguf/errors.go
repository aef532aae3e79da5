package gguf

import "errors"

// Sentinel errors, wrapped with detail; test with errors.Is.
var (
	// ErrNotGGUF means the data does not start with the GGUF magic.
	ErrNotGGUF = errors.New("gguf: not a GGUF file")
	// ErrVersion means the GGUF version is not supported (only 2 and 3
	// little-endian are).
	ErrVersion = errors.New("gguf: unsupported GGUF version")
	// ErrInvalid means the header is malformed: an unknown value or tensor
	// type, a bad alignment, a duplicate key or tensor, a bad shape.
	ErrInvalid = errors.New("gguf: invalid file")
	// ErrTruncated means the file ends before the header or a tensor's data
	// does.
	ErrTruncated = errors.New("gguf: file truncated")
	// ErrTooLarge means a header field exceeds a safety limit of this reader.
	ErrTooLarge = errors.New("gguf: header exceeds limit")
	// ErrNotFound means a metadata key or tensor is absent.
	ErrNotFound = errors.New("gguf: not found")
	// ErrWrite means a Writer was used wrongly: tensor data of the wrong
	// size, or Close before all tensor data was written.
	ErrWrite = errors.New("gguf: write")
)
