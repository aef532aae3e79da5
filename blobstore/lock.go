package blobstore

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/olmhq/olm/internal/flock"
)

// fileLock is an flock(2) lock on a file. Locks on separate opens of one file
// exclude each other even within a process.
type fileLock struct{ f *os.File }

// lockFile takes an flock of the given kind (unix.LOCK_SH or unix.LOCK_EX) on
// path, creating the file, and waits until it is free or ctx ends.
func lockFile(ctx context.Context, path string, how int) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blobstore: open lock: %w", err)
	}
	if err := flock.Wait(ctx, f, how, nil); err != nil {
		f.Close()
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("blobstore: lock %s: %w", path, err)
	}
	return &fileLock{f: f}, nil
}

// tryLockFile is lockFile without waiting; ok is false when the lock is held.
func tryLockFile(path string, how int) (l *fileLock, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("blobstore: open lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("blobstore: lock %s: %w", path, err)
	}
	return &fileLock{f: f}, true, nil
}

// unlock releases the lock; it is safe on nil and to call twice.
func (l *fileLock) unlock() {
	if l == nil || l.f == nil {
		return
	}
	unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
	l.f = nil
}
