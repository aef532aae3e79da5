package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/olmhq/olm/internal/ctxio"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// UnpackDir is the folder under the store root that holds GGUF files
// unpacked from archived layers (KitOps ModelKits, ModelPack .tar weights):
//
//	<root>/unpacked/sha256/<archive hex>/<key>.gguf    read-only, complete, a valid GGUF
//	<root>/unpacked/sha256/<archive hex>/.tmp-<key>-*  an unpacking in progress
//	<root>/unpacked/sha256/<archive hex>/.lock-<key>   flock(2)ed while <key>.gguf is unpacked, then removed
//
// <key> is the first 16 hex digits of the sha256 of the archive kind and the
// file path the layer names, so one archive can give several files. The
// store's garbage collection does not look here: PruneUnpacked removes the
// folder of every archive that is no longer stored.
const UnpackDir = "unpacked"

// Paths are the files of a model that llama.cpp maps, in the model's order.
type Paths struct {
	Weights    []string
	Projectors []string
	Adapters   []string
}

// rooted is the optional capability of a store to keep files beside its
// blobs; *blobstore.Store has it.
type rooted interface{ Root() string }

// ModelPaths returns the files the runner maps for m, a model stored in s:
// the blob itself for a raw layer, and for an archived layer the GGUF file
// unpacked from it (see LayerPath). It is safe for concurrent use, also by
// several processes.
func ModelPaths(ctx context.Context, s Store, m *oci.Model) (*Paths, error) {
	p := &Paths{}
	for _, set := range []struct {
		in  []oci.Layer
		out *[]string
	}{{m.Weights, &p.Weights}, {m.Projectors, &p.Projectors}, {m.Adapters, &p.Adapters}} {
		for _, l := range set.in {
			path, err := LayerPath(ctx, s, l)
			if err != nil {
				return nil, err
			}
			*set.out = append(*set.out, path)
		}
	}
	return p, nil
}

// LayerPath returns a path of the GGUF file that layer l of a stored model
// holds. For a raw layer that is the blob (s.BlobPath). For an archived
// layer (tar, tar+gzip or tar+zstd) the file is unpacked through oci.OpenArchived into
// the store's UnpackDir the first time, checked (its size against the tar
// header, then as a GGUF whose tensors all lie inside the file), made
// read-only and renamed into place; later calls, in any process, find it
// there. Concurrent calls for one file, in one process or several, unpack
// it once: the others wait on its lock file (or until ctx ends) and then use
// the file. The unpacked file lives as long as the archive blob (PruneUnpacked).
// A file that is not a valid GGUF is ErrInvalidWeights; a store that cannot
// keep files (no Root method) is ErrUnsupported.
func LayerPath(ctx context.Context, s Store, l oci.Layer) (string, error) {
	blob, err := s.BlobPath(l.Digest)
	if err != nil {
		return "", err
	}
	if l.Archive == oci.ArchiveNone {
		return blob, nil
	}
	r, ok := s.(rooted)
	if !ok {
		return "", fmt.Errorf("%w: layer %s is a %s archive, and this store cannot keep the GGUF unpacked from it", ErrUnsupported, l.Digest, l.Archive)
	}
	dir := unpackedDir(r.Root(), l.Digest)
	key := unpackedKey(l)
	path := filepath.Join(dir, key+".gguf")
	if unpacked(path) {
		return path, nil
	}
	// A new file: first drop what removed models left behind.
	if _, _, err := PruneUnpacked(ctx, s); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// One unpacking per file at a time, across processes: whoever gets
	// the lock second finds the first one's file and uses it.
	unlock, exclusive, err := lockFile(ctx, filepath.Join(dir, lockPrefix+key))
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", l.Digest, err)
	}
	defer unlock()
	if unpacked(path) {
		return path, nil
	}
	if exclusive {
		// Under the lock, a temporary file of this key is what a process
		// that died mid-way left: nobody else writes one now.
		stale, _ := filepath.Glob(filepath.Join(dir, tmpPrefix+key+"-*"))
		for _, f := range stale {
			os.Remove(f)
		}
	}
	if testHookUnpack != nil {
		testHookUnpack()
	}
	if err := unpack(ctx, blob, l, dir, key, path); err != nil {
		return "", fmt.Errorf("unpack layer %s (%s): %w", l.Digest, l.Archive, err)
	}
	return path, nil
}

// Names in an archive's unpacked folder besides the <key>.gguf files.
const (
	tmpPrefix  = ".tmp-"  // .tmp-<key>-*: an unpacking in progress
	lockPrefix = ".lock-" // .lock-<key>: held while <key>.gguf is unpacked
)

// testHookUnpack, when set (by tests), is called right before an unpacking
// starts, with its lock held.
var testHookUnpack func()

// unpacked reports whether the unpacked file at path is in place.
func unpacked(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

func unpackedDir(root string, d digest.Digest) string {
	return filepath.Join(root, UnpackDir, "sha256", d.Encoded())
}

// unpackedKey names the file of l inside its archive's folder
// (<key>.gguf).
func unpackedKey(l oci.Layer) string {
	sum := sha256.Sum256([]byte(string(l.Archive) + "\x00" + l.Filename))
	return hex.EncodeToString(sum[:8])
}

// unpack streams the GGUF of l out of the archive blob into path, atomically,
// through a temporary file named after key.
func unpack(ctx context.Context, blob string, l oci.Layer, dir, key, path string) error {
	src, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer src.Close()
	fr, size, err := oci.OpenArchived(src, l.Archive, l.Filename)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, tmpPrefix+key+"-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.CopyBuffer(tmp, ctxio.Reader(ctx, fr), make([]byte, 1<<20))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: the archive's file has %d bytes, its header says %d", ErrInvalidWeights, n, size)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if _, err := gguf.ReadFile(tmp.Name()); err != nil {
		return fmt.Errorf("%w: the file in the archive: %w", ErrInvalidWeights, err)
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// staleTemp is the age after which an unpacking in progress is taken for
// one a crashed process left.
const staleTemp = 24 * time.Hour

// PruneUnpacked deletes the files unpacked from archives that are no longer
// in the store (garbage collection removed them with the last model that
// used them), and unpackings that crashed over a day ago. It returns how
// many files it removed and their bytes. Call it after the store's GC; it
// also runs before every new unpacking. Safe for concurrent use.
func PruneUnpacked(ctx context.Context, s Store) (removed int, freed int64, err error) {
	r, ok := s.(rooted)
	if !ok {
		return 0, 0, nil
	}
	base := filepath.Join(r.Root(), UnpackDir, "sha256")
	dirs, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	for _, e := range dirs {
		if err := ctx.Err(); err != nil {
			return removed, freed, err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if !e.IsDir() || oci.ValidateDigest(d) != nil {
			continue // not ours: leave it
		}
		dir := filepath.Join(base, e.Name())
		stored, err := s.Exists(ctx, ocispec.Descriptor{Digest: d})
		if err != nil {
			return removed, freed, err
		}
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			fi, err := f.Info()
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			if stored && !(strings.HasPrefix(f.Name(), tmpPrefix) && time.Since(fi.ModTime()) > staleTemp) {
				continue
			}
			if os.Remove(filepath.Join(dir, f.Name())) == nil && !strings.HasPrefix(f.Name(), lockPrefix) {
				removed++
				freed += fi.Size()
			}
		}
		if !stored {
			os.Remove(dir) // fails, harmlessly, if an unpacking just started
		}
	}
	return removed, freed, nil
}
