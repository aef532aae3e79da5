package blobstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/olmhq/olm/internal/ctxio"
)

// ImportMethod says how Import put a file into the store.
type ImportMethod string

// Import methods, cheapest first.
const (
	// ImportReflink shares the file's extents copy-on-write (FICLONE, on
	// btrfs, XFS, bcachefs…): no data copied, and later edits of the source
	// do not touch the blob.
	ImportReflink ImportMethod = "reflink"
	// ImportHardlink links the source's inode into the store: no data
	// copied, but the blob is the source file.
	ImportHardlink ImportMethod = "hardlink"
	// ImportCopy copies the bytes.
	ImportCopy ImportMethod = "copy"
	// ImportExisting means the content was stored already.
	ImportExisting ImportMethod = "existing"
)

// ImportOptions configures ImportFile. The zero value reflinks where the
// file system can, hardlinks only files that are already read-only, and
// copies otherwise.
type ImportOptions struct {
	// LinkWritable lets ImportFile hardlink a writable source too. The store
	// then makes that inode read-only (0444), so the source file changes mode,
	// and the caller promises never to modify it in place (an in-place edit
	// would corrupt the blob). Leave it false for users' files.
	LinkWritable bool
	// MediaType is set on the returned descriptor; empty means
	// "application/octet-stream".
	MediaType string
}

// Import stores the regular file at path as a blob with the default
// ImportOptions and returns its descriptor. The file is read exactly once
// (to hash it, or to copy and hash in one pass).
func (s *Store) Import(ctx context.Context, path string) (ocispec.Descriptor, error) {
	desc, _, err := s.ImportFile(ctx, path, ImportOptions{})
	return desc, err
}

// ImportFile stores the regular file at path as a blob: by reflink where the
// file system supports it, else by hardlink (see ImportOptions), else by
// copying; it reports which. The content is hashed in the same single read.
func (s *Store) ImportFile(ctx context.Context, path string, opts ImportOptions) (ocispec.Descriptor, ImportMethod, error) {
	mt := opts.MediaType
	if mt == "" {
		mt = "application/octet-stream"
	}
	src, err := os.Open(path)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import %s: not a regular file", path)
	}
	release, err := s.Hold(ctx)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer release()

	tmpDir := filepath.Join(s.root, ingestDir)
	tmp, err := os.CreateTemp(tmpDir, "import-*")
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import: %w", err)
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath) // no-op after the rename

	method := ImportCopy
	var d digest.Digest
	var size int64
	if err := cloneFile(tmp, src); err == nil {
		method = ImportReflink
		d, size, err = hashReader(ctx, tmp)
		if err != nil {
			tmp.Close()
			return ocispec.Descriptor{}, "", err
		}
	} else if fi.Mode().Perm()&0o222 == 0 || opts.LinkWritable {
		tmp.Close()
		os.Remove(tmpPath)
		if err := os.Link(path, tmpPath); err == nil {
			method = ImportHardlink
			l, err := os.Open(tmpPath)
			if err != nil {
				return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import: %w", err)
			}
			d, size, err = hashReader(ctx, l)
			l.Close()
			if err != nil {
				return ocispec.Descriptor{}, "", err
			}
		} else if tmp, err = os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import: %w", err)
		}
	}
	if method == ImportCopy {
		h := sha256.New()
		n, err := io.CopyBuffer(io.MultiWriter(tmp, h), ctxio.Reader(ctx, src), make([]byte, 4<<20))
		if err != nil {
			tmp.Close()
			return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import %s: %w", path, err)
		}
		d, size = digest.NewDigest(digest.SHA256, h), n
	}
	if method != ImportHardlink {
		err := tmp.Sync()
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import: %w", err)
		}
	}
	desc := ocispec.Descriptor{MediaType: mt, Digest: d, Size: size}
	dst, err := s.blobPath(d)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if _, err := os.Stat(dst); err == nil {
		return desc, ImportExisting, nil
	}
	if method != ImportHardlink { // a linked source keeps its own (read-only) mode
		if err := os.Chmod(tmpPath, 0o444); err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import: %w", err)
		}
	}
	if err := os.Rename(tmpPath, dst); err != nil && !errors.Is(err, os.ErrExist) {
		return ocispec.Descriptor{}, "", fmt.Errorf("blobstore: import: %w", err)
	}
	syncDir(filepath.Dir(dst))
	return desc, method, nil
}

// hashReader hashes r from its start.
func hashReader(ctx context.Context, f *os.File) (digest.Digest, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxio.Reader(ctx, io.NewSectionReader(f, 0, 1<<62)), make([]byte, 4<<20))
	if err != nil {
		return "", 0, fmt.Errorf("blobstore: hash: %w", err)
	}
	return digest.NewDigest(digest.SHA256, h), n, nil
}
