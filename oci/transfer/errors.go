package transfer

import "errors"

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound means the source has no such tag, manifest or blob.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized means the registry refused the credentials (or asked for some).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrVerify means content from the source did not match its digest or size.
	ErrVerify = errors.New("content verification failed")
	// ErrNoSpace means the store's file system has too little free space.
	ErrNoSpace = errors.New("not enough free disk space")
	// ErrArchive means a tarball is not an OCI image layout olm can load.
	ErrArchive = errors.New("invalid OCI layout archive")
)

// classed marks err as also being kind (for errors.Is) without repeating
// kind's text when err already says it, as oras-go's "…: not found" does.
type classed struct{ kind, err error }

func (e classed) Error() string   { return e.err.Error() }
func (e classed) Unwrap() []error { return []error{e.kind, e.err} }
