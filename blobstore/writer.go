package blobstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/olmhq/olm/internal/ctxio"
	"github.com/olmhq/olm/oci"
)

// Writer writes one blob into the store through its ingest file
// (ingest/<hex>), which survives a crash or an interrupted download so the
// next Writer of the same digest can resume. Only one Writer per digest
// exists at a time across all processes: OpenWriter waits for the previous
// one. Write/Resume/Reset are for one goroutine; WriteAt and ReadAt may be
// called from many goroutines at once.
//
// End every Writer with Commit, Cancel or Close; Close after Commit or Cancel
// is a no-op, so `defer w.Close()` is always right.
type Writer struct {
	s    *Store
	desc ocispec.Descriptor
	path string
	f    *os.File
	lock *fileLock
	hold func()
	h    hash.Hash
	off  int64
	// flushed is the offset up to which writeback was started.
	flushed int64
	random  atomic.Bool // set by WriteAt: the inline hash no longer covers the file
}

// OpenWriter opens the ingest file of desc for writing, waiting while another
// goroutine or process writes the same blob. If the blob is stored already
// (possibly because the writer it waited for committed it) it returns
// ErrAlreadyExists. desc.Digest is validated; desc.Size must be ≥ 0.
func (s *Store) OpenWriter(ctx context.Context, desc ocispec.Descriptor) (*Writer, error) {
	if err := oci.ValidateDigest(desc.Digest); err != nil {
		return nil, err
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("blob %s: negative size %d: %w", desc.Digest, desc.Size, ErrSizeMismatch)
	}
	if ok, err := s.Exists(ctx, desc); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("blob %s: %w", desc.Digest, ErrAlreadyExists)
		}
		return nil, err
	}
	release, err := s.Hold(ctx)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(s.root, ingestDir, desc.Digest.Encoded())
	lock, err := lockFile(ctx, path+ingestLockX, unix.LOCK_EX)
	if err != nil {
		release()
		return nil, err
	}
	if ok, err := s.Exists(ctx, desc); err != nil || ok {
		lock.unlock()
		release()
		if err == nil {
			err = fmt.Errorf("blob %s: %w", desc.Digest, ErrAlreadyExists)
		}
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		lock.unlock()
		release()
		return nil, fmt.Errorf("blobstore: ingest: %w", err)
	}
	w := &Writer{s: s, desc: desc, path: path, f: f, lock: lock, hold: release, h: sha256.New()}
	if fi, err := f.Stat(); err == nil && fi.Size() > desc.Size {
		if err := f.Truncate(0); err != nil {
			w.Close()
			return nil, fmt.Errorf("blobstore: ingest: %w", err)
		}
	}
	return w, nil
}

// Descriptor returns the descriptor the writer was opened with.
func (w *Writer) Descriptor() ocispec.Descriptor { return w.desc }

// Size returns how many bytes the ingest file holds now (for a sequential
// download: the offset to resume from, after Resume has hashed them).
func (w *Writer) Size() (int64, error) {
	fi, err := w.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("blobstore: ingest: %w", err)
	}
	return fi.Size(), nil
}

// Resume hashes the bytes already in the ingest file (left by an interrupted
// writer) and positions Write after them. It returns the offset to continue
// from; 0 for a fresh blob.
func (w *Writer) Resume(ctx context.Context) (int64, error) {
	n, err := w.Size()
	if err != nil {
		return 0, err
	}
	w.h.Reset()
	w.random.Store(false)
	r := io.NewSectionReader(w.f, 0, n)
	if _, err := io.CopyBuffer(w.h, ctxio.Reader(ctx, r), make([]byte, 1<<20)); err != nil {
		return 0, fmt.Errorf("blobstore: resume %s: %w", w.desc.Digest, err)
	}
	w.off, w.flushed = n, n
	return n, nil
}

// Reset empties the ingest file to start the blob over.
func (w *Writer) Reset() error {
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("blobstore: ingest: %w", err)
	}
	w.h.Reset()
	w.off, w.flushed = 0, 0
	w.random.Store(false)
	return nil
}

// Write appends p at the current offset and hashes it. Writing past
// desc.Size is ErrSizeMismatch.
func (w *Writer) Write(p []byte) (int, error) {
	if w.off+int64(len(p)) > w.desc.Size {
		return 0, fmt.Errorf("blob %s: more than the %d bytes announced: %w", w.desc.Digest, w.desc.Size, ErrSizeMismatch)
	}
	n, err := w.f.WriteAt(p, w.off)
	w.h.Write(p[:n])
	w.off += int64(n)
	w.startWriteback()
	return n, err
}

// writebackChunk is how many written bytes Write lets accumulate before it
// asks the kernel to start writing them to disk.
const writebackChunk = 32 << 20

// startWriteback starts (without waiting) the disk writes of what Write has
// appended, in writebackChunk steps, so that Commit's fsync finds little
// left to flush: the disk works while the network does, and a multi-gigabyte
// pull does not end with seconds of fsync. Errors are ignored (it is an
// optimization; Commit's fsync reports real ones).
func (w *Writer) startWriteback() {
	for w.off-w.flushed >= writebackChunk {
		startWriteback(w.f, w.flushed, writebackChunk)
		w.flushed += writebackChunk
	}
}

// WriteAt writes p at off, for parallel ranged downloads. It is safe for
// concurrent use; after it the writer no longer hashes inline, so Commit
// needs the caller's digest of the whole content (or re-reads the file).
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > w.desc.Size {
		return 0, fmt.Errorf("blob %s: write at %d+%d is beyond the %d bytes announced: %w", w.desc.Digest, off, len(p), w.desc.Size, ErrSizeMismatch)
	}
	w.random.Store(true)
	return w.f.WriteAt(p, off)
}

// ReadAt reads back what the ingest file holds; safe for concurrent use.
func (w *Writer) ReadAt(p []byte, off int64) (int, error) { return w.f.ReadAt(p, off) }

// Truncate sets the ingest file's length (to drop an untrusted tail before
// resuming).
func (w *Writer) Truncate(n int64) error {
	if err := w.f.Truncate(n); err != nil {
		return fmt.Errorf("blobstore: ingest: %w", err)
	}
	return nil
}

// Commit verifies the ingest file's size and digest, syncs it, makes it
// read-only and moves it into blobs/. sum is the digest the caller computed
// over exactly the bytes in the file (for WriteAt downloads hashed as they
// landed); with sum empty, the inline hash of Write is used, or the file is
// hashed now. Content that does not verify is deleted (it cannot be resumed)
// and the error wraps ErrDigestMismatch or ErrSizeMismatch.
func (w *Writer) Commit(ctx context.Context, sum digest.Digest) error {
	if w.f == nil {
		return fmt.Errorf("blobstore: commit of a closed writer")
	}
	size, err := w.Size()
	if err != nil {
		return err
	}
	if size != w.desc.Size {
		if size > w.desc.Size {
			w.Cancel()
		}
		return fmt.Errorf("blob %s: got %d bytes, want %d: %w", w.desc.Digest, size, w.desc.Size, ErrSizeMismatch)
	}
	if sum == "" {
		if w.random.Load() || w.off != size {
			if _, err := w.Resume(ctx); err != nil {
				return err
			}
		}
		sum = digest.NewDigest(digest.SHA256, w.h)
	}
	if sum != w.desc.Digest {
		w.Cancel()
		return fmt.Errorf("blob %s: content hashes to %s: %w", w.desc.Digest, sum, ErrDigestMismatch)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("blobstore: sync %s: %w", w.desc.Digest, err)
	}
	if err := w.f.Chmod(0o444); err != nil {
		return fmt.Errorf("blobstore: %w", err)
	}
	dst, _ := w.s.blobPath(w.desc.Digest)
	if err := os.Rename(w.path, dst); err != nil {
		return fmt.Errorf("blobstore: commit %s: %w", w.desc.Digest, err)
	}
	syncDir(filepath.Dir(dst))
	w.Close()
	return nil
}

// Cancel deletes the ingest file, then closes the writer.
func (w *Writer) Cancel() {
	if w.f == nil {
		return
	}
	os.Remove(w.path)
	w.Close()
}

// Close releases the writer and its locks, keeping the ingest file so a later
// writer can resume. It is safe to call more than once.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	w.lock.unlock()
	w.hold()
	return err
}

// Push stores the content r of desc (content.Storage), verifying size and
// digest. It reads r from its start; present content is ErrAlreadyExists.
func (s *Store) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	w, err := s.OpenWriter(ctx, desc)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Reset(); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(w, ctxio.Reader(ctx, io.LimitReader(r, desc.Size+1)), make([]byte, 1<<20)); err != nil {
		if errors.Is(err, ErrSizeMismatch) {
			w.Cancel()
		}
		return err
	}
	return w.Commit(ctx, "")
}

// Hold keeps garbage collection from running until release is called: a
// transfer holds the store from its first blob until its tag is written, so
// GC never deletes blobs that are about to be referenced. Holds are shared;
// many can exist at once, across processes.
func (s *Store) Hold(ctx context.Context) (release func(), err error) {
	l, err := lockFile(ctx, s.privatePath(gcLock), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	return l.unlock, nil
}

// removeIfExists removes path, ignoring a missing file.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
