//go:build !linux

package blobstore

import (
	"errors"
	"os"
)

// cloneFile is not implemented outside Linux; ImportFile falls back to a
// hardlink or a copy.
func cloneFile(dst, src *os.File) error { return errors.ErrUnsupported }

// startWriteback does nothing outside Linux; Commit's fsync writes everything.
func startWriteback(f *os.File, off, n int64) {}
