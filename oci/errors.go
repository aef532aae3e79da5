package oci

import "errors"

// Sentinel errors of this package. Functions wrap them with the offending
// value, so test with errors.Is.
var (
	// ErrInvalidReference means a model name or OCI reference does not follow
	// the grammar (see ParseReference).
	ErrInvalidReference = errors.New("invalid reference")

	// ErrInvalidDigest means a digest is not "sha256:" followed by 64
	// lowercase hex digits.
	ErrInvalidDigest = errors.New("invalid digest")

	// ErrUnsupportedFormat means a manifest is of no model format olm reads.
	ErrUnsupportedFormat = errors.New("unsupported model format")

	// ErrInvalidManifest means a manifest or config is malformed or unsafe
	// (bad JSON, a layer with a path that escapes, conflicting layers).
	ErrInvalidManifest = errors.New("invalid manifest")

	// ErrTooLarge means a manifest, config or small layer is larger than the
	// bound this package accepts for it.
	ErrTooLarge = errors.New("too large")
)
