package blobstore

import (
	"errors"

	"oras.land/oras-go/v2/errdef"
)

// Sentinel errors. They wrap or alias oras-go's errdef values where one
// exists, so oras.Copy understands them. Test with errors.Is.
var (
	// ErrNotFound means a blob, manifest or tag is not in the store.
	ErrNotFound = errdef.ErrNotFound
	// ErrAlreadyExists means a blob is already stored (Push of present content).
	ErrAlreadyExists = errdef.ErrAlreadyExists
	// ErrDigestMismatch means content did not hash to its digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch means content was shorter or longer than its descriptor says.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrIncomplete means a manifest references blobs the store does not hold,
	// so it cannot be tagged.
	ErrIncomplete = errors.New("incomplete model")
	// ErrInvalidLayout means the store folder is not an OCI image layout olm can use.
	ErrInvalidLayout = errors.New("invalid store layout")
	// ErrTooLarge means a manifest is larger than the store reads into memory.
	ErrTooLarge = errors.New("too large")
)
