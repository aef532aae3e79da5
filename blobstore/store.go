package blobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/olmhq/olm/oci"
)

// Store is a local OCI image layout. Make one with Open. It is safe for
// concurrent use by goroutines and by other processes opening the same root.
type Store struct {
	root string
}

// Options configures Open. The zero value is ready to use.
type Options struct {
	// ReadOnly opens an existing store without creating missing folders or
	// files. Writes still fail cleanly through the file system's permissions.
	ReadOnly bool
}

// Entry is one tag in the store.
type Entry struct {
	// Name is the tag: the full reference string, such as
	// "registry.ollama.ai/library/llama3.2:latest".
	Name string
	// Descriptor is the tagged manifest's descriptor (media type, digest, size).
	Descriptor ocispec.Descriptor
	// Modified is when the manifest blob was written to the store.
	Modified time.Time
}

const (
	layoutFile  = "oci-layout"
	indexFile   = "index.json"
	blobsDir    = "blobs"
	ingestDir   = "ingest"
	privateDir  = ".olm"
	indexLock   = "index.lock"
	gcLock      = "gc.lock"
	ingestLockX = ".lock"
)

// Open opens the store at root, creating an empty OCI image layout there if
// the folder is missing or empty. A folder with an oci-layout file of another
// version is refused (ErrInvalidLayout).
func Open(root string, opts Options) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	s := &Store{root: root}
	if !opts.ReadOnly {
		for _, d := range []string{filepath.Join(blobsDir, "sha256"), ingestDir, privateDir} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				return nil, fmt.Errorf("blobstore: create store: %w", err)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(root, layoutFile))
	switch {
	case errors.Is(err, fs.ErrNotExist) && !opts.ReadOnly:
		if err := writeFileAtomic(filepath.Join(root, layoutFile), []byte(`{"imageLayoutVersion":"`+ocispec.ImageLayoutVersion+`"}`)); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("blobstore: %w: %v", ErrInvalidLayout, err)
	default:
		var l ocispec.ImageLayout
		if err := json.Unmarshal(b, &l); err != nil || l.Version != ocispec.ImageLayoutVersion {
			return nil, fmt.Errorf("blobstore: %w: %s has %q, want imageLayoutVersion %s", ErrInvalidLayout, filepath.Join(root, layoutFile), b, ocispec.ImageLayoutVersion)
		}
	}
	if _, err := os.Stat(filepath.Join(root, indexFile)); errors.Is(err, fs.ErrNotExist) && !opts.ReadOnly {
		l, err := lockFile(context.Background(), s.privatePath(indexLock), unix.LOCK_EX)
		if err != nil {
			return nil, err
		}
		defer l.unlock()
		if _, err := os.Stat(filepath.Join(root, indexFile)); errors.Is(err, fs.ErrNotExist) {
			if err := s.writeIndex(&ocispec.Index{}); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Root returns the store's folder (an absolute path).
func (s *Store) Root() string { return s.root }

func (s *Store) privatePath(name string) string { return filepath.Join(s.root, privateDir, name) }

// BlobPath returns the path of a stored blob, for reading or mapping it
// (the runner mmaps GGUF weights from here). The file is read-only and never
// changes; it exists until garbage collection removes an unreferenced blob.
// The digest is validated first; a missing blob is ErrNotFound.
func (s *Store) BlobPath(d digest.Digest) (string, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return "", fmt.Errorf("blobstore: %w", err)
	}
	return p, nil
}

// blobPath returns where blob d lives, after validating d.
func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := oci.ValidateDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(s.root, blobsDir, "sha256", d.Encoded()), nil
}

// Stat returns the size of a stored blob, or ErrNotFound.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return 0, fmt.Errorf("blobstore: %w", err)
	}
	return fi.Size(), nil
}

// Exists reports whether the blob of desc is stored (content.Storage).
func (s *Store) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	_, err := s.Stat(ctx, desc.Digest)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Fetch opens the blob of desc for reading (content.Storage). The caller
// closes it. A stored size that differs from desc.Size is ErrSizeMismatch.
func (s *Store) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	p, err := s.blobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", desc.Digest, ErrNotFound)
		}
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	if fi.Size() != desc.Size {
		f.Close()
		return nil, fmt.Errorf("blob %s: stored %d bytes, descriptor says %d: %w", desc.Digest, fi.Size(), desc.Size, ErrSizeMismatch)
	}
	return f, nil
}

// ReadBlob reads a whole blob of at most max bytes into memory (manifests,
// configs, small layers). A larger blob is ErrTooLarge.
func (s *Store) ReadBlob(ctx context.Context, d digest.Digest, max int64) ([]byte, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("blobstore: read %s: %w", d, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s is larger than %d bytes: %w", d, max, ErrTooLarge)
	}
	return b, nil
}

// Index returns a copy of index.json as it is now.
func (s *Store) Index(ctx context.Context) (*ocispec.Index, error) {
	b, err := os.ReadFile(filepath.Join(s.root, indexFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}, nil
		}
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("blobstore: %w: index.json: %v", ErrInvalidLayout, err)
	}
	return &idx, nil
}

// writeIndex replaces index.json atomically; the caller holds the index lock.
func (s *Store) writeIndex(idx *ocispec.Index) error {
	idx.SchemaVersion = 2
	idx.MediaType = ocispec.MediaTypeImageIndex
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("blobstore: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.root, indexFile), b)
}

// updateIndex runs fn on index.json under the index lock and writes the
// result atomically if fn reports a change.
func (s *Store) updateIndex(ctx context.Context, fn func(*ocispec.Index) (changed bool, err error)) error {
	l, err := lockFile(ctx, s.privatePath(indexLock), unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer l.unlock()
	idx, err := s.Index(ctx)
	if err != nil {
		return err
	}
	changed, err := fn(idx)
	if err != nil || !changed {
		return err
	}
	return s.writeIndex(idx)
}

// Resolve returns the descriptor of a tag, or of a manifest given by digest
// (content.Resolver). A digest that is not in index.json is resolved from the
// blob itself when it is a manifest.
func (s *Store) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	idx, err := s.Index(ctx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if d, err := digest.Parse(ref); err == nil {
		if err := oci.ValidateDigest(d); err != nil {
			return ocispec.Descriptor{}, err
		}
		for _, m := range idx.Manifests {
			if m.Digest == d {
				return plain(m), nil
			}
		}
		b, err := s.ReadBlob(ctx, d, oci.MaxManifestSize)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		var probe struct {
			MediaType    string `json:"mediaType"`
			ArtifactType string `json:"artifactType"`
		}
		if json.Unmarshal(b, &probe) != nil || probe.MediaType == "" {
			return ocispec.Descriptor{}, fmt.Errorf("%s is not a manifest with a mediaType: %w", d, ErrNotFound)
		}
		return ocispec.Descriptor{MediaType: probe.MediaType, ArtifactType: probe.ArtifactType, Digest: d, Size: int64(len(b))}, nil
	}
	for i := len(idx.Manifests) - 1; i >= 0; i-- {
		if m := idx.Manifests[i]; m.Annotations[ocispec.AnnotationRefName] == ref {
			return plain(m), nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%q: %w", ref, ErrNotFound)
}

// plain returns desc without the ref-name annotation (which is the index's, not the manifest's).
func plain(desc ocispec.Descriptor) ocispec.Descriptor {
	out := desc
	out.Annotations = nil
	for k, v := range desc.Annotations {
		if k == ocispec.AnnotationRefName {
			continue
		}
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[k] = v
	}
	return out
}

// Manifest resolves ref (a tag or a digest) and reads the manifest, at most
// oci.MaxManifestSize bytes.
func (s *Store) Manifest(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	desc, err := s.Resolve(ctx, ref)
	if err != nil {
		return desc, nil, err
	}
	b, err := s.ReadBlob(ctx, desc.Digest, oci.MaxManifestSize)
	if err != nil {
		return desc, nil, err
	}
	return desc, b, nil
}

// Tag points ref (the full reference string) at the manifest desc
// (content.Tagger). It first checks that the manifest and every blob it
// references are stored, refusing with ErrIncomplete otherwise, so a tagged
// model is never missing content. An existing tag of the same name is
// replaced.
func (s *Store) Tag(ctx context.Context, desc ocispec.Descriptor, ref string) error {
	if ref == "" {
		return fmt.Errorf("blobstore: empty tag")
	}
	if err := oci.ValidateDigest(desc.Digest); err != nil {
		return err
	}
	if desc.MediaType == "" {
		d, err := s.Resolve(ctx, desc.Digest.String())
		if err != nil {
			return fmt.Errorf("blobstore: %w: manifest %s: %w", ErrIncomplete, desc.Digest, err)
		}
		desc.MediaType = d.MediaType
	}
	if !oci.IsManifest(desc.MediaType) {
		return fmt.Errorf("blobstore: cannot tag %s: media type %q is not a manifest", desc.Digest, desc.MediaType)
	}
	release, err := s.Hold(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := s.checkComplete(ctx, desc, 0); err != nil {
		return err
	}
	entry := plain(desc)
	entry.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
	entry.URLs, entry.Platform, entry.Data = nil, nil, nil
	return s.updateIndex(ctx, func(idx *ocispec.Index) (bool, error) {
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(m ocispec.Descriptor) bool {
			return m.Annotations[ocispec.AnnotationRefName] == ref
		})
		idx.Manifests = append(idx.Manifests, entry)
		return true, nil
	})
}

// Untag removes the tag ref. It reports ErrNotFound if there is no such tag.
// Blobs stay until GC.
func (s *Store) Untag(ctx context.Context, ref string) error {
	return s.updateIndex(ctx, func(idx *ocispec.Index) (bool, error) {
		n := len(idx.Manifests)
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(m ocispec.Descriptor) bool {
			return m.Annotations[ocispec.AnnotationRefName] == ref
		})
		if len(idx.Manifests) == n {
			return false, fmt.Errorf("tag %q: %w", ref, ErrNotFound)
		}
		return true, nil
	})
}

// Delete removes the tag ref and then collects garbage, returning what GC did.
func (s *Store) Delete(ctx context.Context, ref string) (GCStats, error) {
	if err := s.Untag(ctx, ref); err != nil {
		return GCStats{}, err
	}
	return s.GC(ctx)
}

// List returns every tag, sorted by name.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	idx, err := s.Index(ctx)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, m := range idx.Manifests {
		name := m.Annotations[ocispec.AnnotationRefName]
		if name == "" {
			continue
		}
		e := Entry{Name: name, Descriptor: plain(m)}
		if p, err := s.blobPath(m.Digest); err == nil {
			if fi, err := os.Stat(p); err == nil {
				e.Modified = fi.ModTime()
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// maxDepth bounds index nesting when walking manifests.
const maxDepth = 8

// checkComplete verifies that the manifest desc and everything it
// references is stored.
func (s *Store) checkComplete(ctx context.Context, desc ocispec.Descriptor, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("blobstore: %w: indexes nested deeper than %d", ErrIncomplete, maxDepth)
	}
	size, err := s.Stat(ctx, desc.Digest)
	if err != nil {
		return fmt.Errorf("blobstore: %w: manifest %s: %w", ErrIncomplete, desc.Digest, err)
	}
	if size != desc.Size {
		return fmt.Errorf("blobstore: manifest %s is %d bytes, descriptor says %d: %w", desc.Digest, size, desc.Size, ErrSizeMismatch)
	}
	children, err := s.successors(ctx, desc)
	if err != nil {
		return err
	}
	for _, c := range children {
		if oci.IsManifest(c.MediaType) {
			if err := s.checkComplete(ctx, c, depth+1); err != nil {
				return err
			}
			continue
		}
		size, err := s.Stat(ctx, c.Digest)
		if err != nil {
			return fmt.Errorf("blobstore: %w: manifest %s references %s (%s), which is not stored: %w", ErrIncomplete, desc.Digest, c.Digest, c.MediaType, err)
		}
		if size != c.Size {
			return fmt.Errorf("blobstore: %w: blob %s is %d bytes, manifest %s says %d: %w", ErrIncomplete, c.Digest, size, desc.Digest, c.Size, ErrSizeMismatch)
		}
	}
	return nil
}

// successors returns the config, layers and child manifests that a stored
// manifest references (not its subject: a referrer does not keep its subject
// alive). Every digest is validated.
func (s *Store) successors(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if !oci.IsManifest(desc.MediaType) && desc.MediaType != "" {
		return nil, nil
	}
	b, err := s.ReadBlob(ctx, desc.Digest, oci.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	out, err := oci.Successors(desc, b)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	return out, nil
}

// writeFileAtomic writes b to a temporary file beside path, syncs it and
// renames it over path.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("blobstore: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("blobstore: write %s: %w", filepath.Base(path), err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a rename in dir durable; errors are ignored (some file
// systems refuse fsync on folders).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// descOf makes a descriptor for walking; the size is filled in by Stat when needed.
func descOf(d digest.Digest, mt string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: d}
}
