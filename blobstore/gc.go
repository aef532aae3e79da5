package blobstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/olmhq/olm/oci"
)

// IngestMaxAge is how long an abandoned partial download (an ingest file no
// writer holds) is kept for a later pull to resume before GC deletes it.
const IngestMaxAge = 7 * 24 * time.Hour

// GCStats reports what a garbage collection did.
type GCStats struct {
	// Removed is the number of blobs deleted.
	Removed int
	// Partials is the number of abandoned ingest files deleted (older than
	// IngestMaxAge and not being written).
	Partials int
	// Freed is the bytes those blobs took.
	Freed int64
	// Skipped is true when a writer held the store (see Hold), so nothing was
	// collected this time; a later GC will.
	Skipped bool
}

// GC deletes every blob that no manifest listed in index.json reaches
// (directly, or through an index) and that is not pinned (see Pin). It
// does not wait for writers: if any
// holds the store it returns at once with Skipped set. Partial ingest files
// are kept for resuming, unless no writer has touched them for IngestMaxAge.
func (s *Store) GC(ctx context.Context) (GCStats, error) {
	l, ok, err := tryLockFile(s.privatePath(gcLock), unix.LOCK_EX)
	if err != nil {
		return GCStats{}, err
	}
	if !ok {
		return GCStats{Skipped: true}, nil
	}
	defer l.unlock()

	idx, err := s.Index(ctx)
	if err != nil {
		return GCStats{}, err
	}
	live := map[digest.Digest]bool{}
	var mark func(d digest.Digest, mt string, depth int) error
	mark = func(d digest.Digest, mt string, depth int) error {
		if live[d] {
			return nil
		}
		live[d] = true
		if (!oci.IsManifest(mt) && !(depth == 0 && mt == "")) || depth > maxDepth {
			return nil
		}
		children, err := s.successors(ctx, descOf(d, mt))
		if err != nil {
			// A manifest that cannot be read keeps what it names unknown:
			// refuse to collect rather than delete too much.
			return fmt.Errorf("blobstore: gc: %w", err)
		}
		for _, c := range children {
			if err := mark(c.Digest, c.MediaType, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	for _, m := range idx.Manifests {
		if err := oci.ValidateDigest(m.Digest); err != nil {
			return GCStats{}, fmt.Errorf("blobstore: gc: index.json: %w", err)
		}
		if err := mark(m.Digest, m.MediaType, 0); err != nil {
			if ok, _ := s.Exists(ctx, descOf(m.Digest, m.MediaType)); !ok {
				continue // a dangling index entry keeps nothing alive
			}
			return GCStats{}, err
		}
	}

	dir := filepath.Join(s.root, blobsDir, "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return GCStats{}, fmt.Errorf("blobstore: gc: %w", err)
	}
	pins := s.pinned(live)
	var st GCStats
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if oci.ValidateDigest(d) != nil || live[d] || pins[d] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		var size int64
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		if err := removeIfExists(filepath.Join(dir, e.Name())); err != nil {
			return st, fmt.Errorf("blobstore: gc: %w", err)
		}
		st.Removed++
		st.Freed += size
	}
	s.collectIngest(&st)
	return st, nil
}

// collectIngest deletes abandoned partial downloads; the caller holds the
// GC lock, so no import or writer is between its steps.
func (s *Store) collectIngest(st *GCStats) {
	dir := filepath.Join(s.root, ingestDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || strings.HasSuffix(name, ingestLockX) || time.Since(fi.ModTime()) < IngestMaxAge {
			continue
		}
		p := filepath.Join(dir, name)
		l, ok, err := tryLockFile(p+ingestLockX, unix.LOCK_EX)
		if err != nil || !ok {
			continue
		}
		if removeIfExists(p) == nil {
			st.Partials++
			st.Freed += fi.Size()
		}
		os.Remove(p + ingestLockX)
		l.unlock()
	}
}
