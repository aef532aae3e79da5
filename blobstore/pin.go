package blobstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/olmhq/olm/oci"
)

// PinMaxAge is how long a pin keeps an unreferenced blob (see Pin).
const PinMaxAge = 24 * time.Hour

// pinsDir holds one empty file per pinned blob, named by its hex digest;
// the file's modification time is when it was pinned.
const pinsDir = "pins"

// Pin keeps blob d from garbage collection while no model uses it: for
// blobs uploaded ahead of the model that will reference them (Ollama's
// POST /api/blobs, then /api/create). The pin ends when a GC finds a
// tagged model using the blob (from then on the model keeps it, and
// deleting the model frees it), or after PinMaxAge. Pinning again renews
// it. d need not be stored yet: pin before writing, so that no GC falls
// between the write and the pin. Pin waits while a GC runs.
func (s *Store) Pin(ctx context.Context, d digest.Digest) error {
	if err := oci.ValidateDigest(d); err != nil {
		return err
	}
	release, err := s.Hold(ctx) // no GC between here and the pin being visible
	if err != nil {
		return err
	}
	defer release()
	dir := s.privatePath(pinsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("blobstore: pin: %w", err)
	}
	p := filepath.Join(dir, d.Encoded())
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("blobstore: pin: %w", err)
	}
	f.Close()
	now := time.Now()
	if err := os.Chtimes(p, now, now); err != nil {
		return fmt.Errorf("blobstore: pin: %w", err)
	}
	return nil
}

// pinned returns the blobs pinned for less than PinMaxAge that no model
// uses (live), and deletes every other pin: expired, or taken over by a
// model. The caller holds the GC lock.
func (s *Store) pinned(live map[digest.Digest]bool) map[digest.Digest]bool {
	dir := s.privatePath(pinsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	keep := map[digest.Digest]bool{}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		fi, err := e.Info()
		if err != nil || oci.ValidateDigest(d) != nil {
			continue
		}
		if live[d] || time.Since(fi.ModTime()) > PinMaxAge {
			os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		keep[d] = true
	}
	return keep
}
