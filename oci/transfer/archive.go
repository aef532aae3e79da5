package transfer

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/oci"
)

// Save writes the tags refs of store, and every blob they reference, to w as
// an OCI image layout tarball (oci-layout, index.json, blobs/sha256/…), the
// format of `oras push --oci-layout`, `skopeo copy oci-archive:` and
// `olm load`. Tags keep their full reference names. Progress events come
// per blob as in Copy.
func Save(ctx context.Context, store *blobstore.Store, refs []string, w io.Writer, opts Options) error {
	rep := newReporter(opts.Progress)
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	var blobs []ocispec.Descriptor
	seen := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor, depth int) error
	walk = func(d ocispec.Descriptor, depth int) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		if oci.IsManifest(d.MediaType) {
			if depth > maxDepth {
				return fmt.Errorf("%w: indexes nested deeper than %d", oci.ErrInvalidManifest, maxDepth)
			}
			b, err := store.ReadBlob(ctx, d.Digest, oci.MaxManifestSize)
			if err != nil {
				return err
			}
			cs, err := oci.Successors(d, b)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
		}
		blobs = append(blobs, d)
		return nil
	}
	for _, ref := range refs {
		d, err := store.Resolve(ctx, ref)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		if err := walk(d, 0); err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		d.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
		idx.Manifests = append(idx.Manifests, d)
	}
	tw := tar.NewWriter(w)
	now := time.Unix(0, 0)
	writeFile := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := writeFile(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"`+ocispec.ImageLayoutVersion+`"}`)); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	ib, _ := json.Marshal(idx)
	if err := writeFile(ocispec.ImageIndexFile, ib); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	for _, d := range blobs {
		rc, err := store.Fetch(ctx, d)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		rep.emit(d, StatusStart, 0, nil)
		err = tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + d.Digest.Encoded(), Mode: 0o444, Size: d.Size, ModTime: now, Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.CopyBuffer(tw, countingReader{rc, &counter{desc: d, rep: rep}}, make([]byte, 1<<20))
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("save %s: %w", d.Digest, err)
		}
		rep.emit(d, StatusDone, d.Size, nil)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// LoadOptions configures Load. The zero value keeps the archive's tag names.
type LoadOptions struct {
	// Name maps a tag name found in the archive's index.json to the name it
	// gets in the store, or returns an error to refuse it; nil keeps names.
	Name func(ref string) (string, error)
	// Progress receives progress events as in Options.
	Progress func(Event)
}

// Load reads an OCI image layout tarball (as Save writes it) into store,
// verifying every blob against its digest, and then tags the archive's
// tagged manifests. It returns the names tagged. A tagged manifest whose
// blobs the archive lacks is refused (blobstore.ErrIncomplete).
func Load(ctx context.Context, r io.Reader, store *blobstore.Store, opts LoadOptions) ([]string, error) {
	rep := newReporter(opts.Progress)
	release, err := store.Hold(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	tr := tar.NewReader(r)
	var idx *ocispec.Index
	layoutSeen := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrArchive, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if h.Typeflag != tar.TypeReg {
			continue
		}
		switch {
		case name == ocispec.ImageLayoutFile:
			var l ocispec.ImageLayout
			if err := json.NewDecoder(io.LimitReader(tr, 4096)).Decode(&l); err != nil || l.Version != ocispec.ImageLayoutVersion {
				return nil, fmt.Errorf("%w: oci-layout is not version %s", ErrArchive, ocispec.ImageLayoutVersion)
			}
			layoutSeen = true
		case name == ocispec.ImageIndexFile:
			if h.Size > oci.MaxManifestSize {
				return nil, fmt.Errorf("%w: index.json is %d bytes", ErrArchive, h.Size)
			}
			idx = &ocispec.Index{}
			if err := json.NewDecoder(io.LimitReader(tr, oci.MaxManifestSize)).Decode(idx); err != nil {
				return nil, fmt.Errorf("%w: index.json: %v", ErrArchive, err)
			}
		case strings.HasPrefix(name, "blobs/"):
			alg, hex, ok := strings.Cut(strings.TrimPrefix(name, "blobs/"), "/")
			d := digest.Digest(alg + ":" + hex)
			if !ok || oci.ValidateDigest(d) != nil {
				return nil, fmt.Errorf("%w: entry %q is not blobs/sha256/<64 hex digits>", ErrArchive, clipName(h.Name))
			}
			desc := ocispec.Descriptor{Digest: d, Size: h.Size}
			rep.emit(desc, StatusStart, 0, nil)
			err := store.Push(ctx, desc, countingReader{tr, &counter{desc: desc, rep: rep}})
			if errors.Is(err, blobstore.ErrAlreadyExists) {
				rep.emit(desc, StatusExists, desc.Size, nil)
				continue
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: blob %s is cut short (a truncated archive?)", ErrArchive, d)
			}
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", d, err)
			}
			rep.emit(desc, StatusDone, desc.Size, nil)
		}
	}
	if !layoutSeen || idx == nil {
		return nil, fmt.Errorf("%w: no oci-layout or index.json (is this an OCI layout tarball? `olm save` and `oras push --oci-layout` make them)", ErrArchive)
	}
	var tagged []string
	for _, m := range idx.Manifests {
		ref := m.Annotations[ocispec.AnnotationRefName]
		if ref == "" {
			continue
		}
		if opts.Name != nil {
			n, err := opts.Name(ref)
			if err != nil {
				return tagged, err
			}
			ref = n
		}
		if err := oci.ValidateDigest(m.Digest); err != nil {
			return tagged, fmt.Errorf("%w: index.json: %w", ErrArchive, err)
		}
		m.Annotations = nil
		if err := store.Tag(ctx, m, ref); err != nil {
			return tagged, fmt.Errorf("load %s: %w", ref, err)
		}
		tagged = append(tagged, ref)
	}
	if len(tagged) == 0 {
		return nil, fmt.Errorf("%w: index.json tags nothing (no org.opencontainers.image.ref.name annotations)", ErrArchive)
	}
	return tagged, nil
}

func clipName(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
