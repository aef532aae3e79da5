package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/server"
)

// Models is server.Models over a blobstore.Store. It caches what it reads
// of each manifest (by digest; manifests are immutable). Safe for
// concurrent use.
type Models struct {
	// Store is the local store; required.
	Store *blobstore.Store
	// Naming completes short model names.
	Naming oci.Naming
	// TempDir holds uploads of unknown length before they are stored; ""
	// means os.TempDir().
	TempDir string

	mu    sync.Mutex
	cache map[digest.Digest]*server.Model
}

var _ server.Models = (*Models)(nil)

func (s *Models) parse(name string) (oci.Reference, error) {
	ref, err := s.Naming.Parse(name)
	if err != nil {
		return ref, fmt.Errorf("%w: %w", server.ErrBadRequest, err)
	}
	return ref, nil
}

func notFound(err error) bool {
	return errors.Is(err, blobstore.ErrNotFound) || errors.Is(err, build.ErrNotFound)
}

// Resolve implements server.Models.
func (s *Models) Resolve(ctx context.Context, name string) (*server.Model, error) {
	ref, err := s.parse(name)
	if err != nil {
		return nil, err
	}
	entries, err := s.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Name == ref.String() {
			return s.model(ctx, e)
		}
	}
	return nil, fmt.Errorf("%w: model %s", server.ErrNotFound, ref.Short())
}

// model builds (or takes from the cache) the server's view of a tagged manifest.
func (s *Models) model(ctx context.Context, e blobstore.Entry) (*server.Model, error) {
	ref, err := s.Naming.Parse(e.Name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	cached := s.cache[e.Descriptor.Digest]
	s.mu.Unlock()
	if cached == nil {
		info, err := build.Show(ctx, s.Store, string(e.Descriptor.Digest), build.ShowOptions{})
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", e.Name, err)
		}
		if cached, err = s.fromInfo(info); err != nil {
			return nil, fmt.Errorf("model %s: %w", e.Name, err)
		}
		s.mu.Lock()
		if s.cache == nil {
			s.cache = map[digest.Digest]*server.Model{}
		}
		s.cache[e.Descriptor.Digest] = cached
		s.mu.Unlock()
	}
	m := *cached
	m.Name = s.Naming.Short(ref)
	m.ModifiedAt = e.Modified
	return &m, nil
}

func (s *Models) fromInfo(info *build.Info) (*server.Model, error) {
	om := info.Model
	if len(om.Weights) == 0 {
		return nil, fmt.Errorf("%w: no weights", server.ErrUnsupported)
	}
	m := &server.Model{
		Digest: string(info.Manifest.Digest),
		Size:   om.Size(),
		Details: api.ModelDetails{
			Format:            "gguf",
			Family:            info.Details.Architecture,
			ParameterSize:     info.Details.ParameterSize,
			QuantizationLevel: info.Details.Quantization,
		},
		Capabilities: info.Details.Capabilities,
		Template:     info.Template,
		System:       info.System,
		Licenses:     info.Licenses,
	}
	if m.Details.Family != "" {
		m.Details.Families = []string{m.Details.Family}
	}
	// build.Show resolved the files llama.cpp maps: blobs, or for archived
	// layers (KitOps, tar weights) the GGUF unpacked from them.
	paths := info.Paths
	if paths == nil || len(paths.Weights) != len(om.Weights) {
		return nil, fmt.Errorf("%w: weights of the model could not be resolved to files", server.ErrUnsupported)
	}
	m.WeightsPath = paths.Weights[0]
	m.WeightsParts = append(m.WeightsParts, paths.Weights[1:]...) // the other parts of a split GGUF
	if len(paths.Projectors) > 0 {
		m.ProjectorPath = paths.Projectors[0]
	}
	m.AdapterPaths = append(m.AdapterPaths, paths.Adapters...)
	var err error
	// Only a chat-template layer replaces the GGUF's own template; the
	// GGUF's is what the runner uses anyway.
	if om.ChatTemplate != nil {
		m.ChatTemplate = info.ChatTemplate
	}
	if len(info.Parameters) > 0 {
		if m.Options, err = api.OptionsFromMap(info.Parameters); err != nil {
			return nil, fmt.Errorf("params layer: %w", err)
		}
	}
	for _, msg := range info.Messages {
		m.Messages = append(m.Messages, api.Message{Role: msg.Role, Content: msg.Content})
	}
	return m, nil
}

// List implements server.Models. Tags that are not models olm can run
// (other artifacts in the layout) are left out.
func (s *Models) List(ctx context.Context) ([]*server.Model, error) {
	entries, err := s.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []*server.Model
	for _, e := range entries {
		m, err := s.model(ctx, e)
		if err != nil {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// ModelInfo implements server.Models with the GGUF metadata build.Show reads.
func (s *Models) ModelInfo(ctx context.Context, m *server.Model, verbose bool) (map[string]any, error) {
	info, err := build.Show(ctx, s.Store, m.Digest, build.ShowOptions{Verbose: verbose})
	if err != nil {
		return nil, err
	}
	return info.ModelInfo, nil
}

// Copy implements server.Models: dst becomes another tag of src's manifest.
func (s *Models) Copy(ctx context.Context, src, dst string) error {
	sref, err := s.parse(src)
	if err != nil {
		return err
	}
	dref, err := s.parse(dst)
	if err != nil {
		return err
	}
	desc, err := s.Store.Resolve(ctx, sref.String())
	if err != nil {
		if notFound(err) {
			return fmt.Errorf("%w: %s", server.ErrNotFound, src)
		}
		return err
	}
	return s.Store.Tag(ctx, desc, dref.String())
}

// Delete implements server.Models: it untags the model and collects blobs
// nothing references any more.
func (s *Models) Delete(ctx context.Context, name string) error {
	ref, err := s.parse(name)
	if err != nil {
		return err
	}
	if _, err := s.Store.Delete(ctx, ref.String()); err != nil {
		if notFound(err) {
			return fmt.Errorf("%w: %s", server.ErrNotFound, name)
		}
		return err
	}
	// GGUF files unpacked from archived layers live beside the blobs and go
	// with them.
	_, _, err = build.PruneUnpacked(ctx, s.Store)
	return err
}

// HasBlob implements server.Models.
func (s *Models) HasBlob(ctx context.Context, d string) (bool, error) {
	dg, err := oci.ParseDigest(d)
	if err != nil {
		return false, fmt.Errorf("%w: %w", server.ErrBadRequest, err)
	}
	_, err = s.Store.Stat(ctx, dg)
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// A client that finds the blob skips its upload and creates a model
	// from it next: keep it until then, as an upload is kept.
	return true, s.Store.Pin(ctx, dg)
}

// PutBlob implements server.Models. Content of unknown length is spooled
// to a temporary file first, because the store verifies size and digest.
// The blob is pinned (blobstore.Pin): garbage collection keeps it until a
// model uses it, or for blobstore.PinMaxAge.
func (s *Models) PutBlob(ctx context.Context, d string, size int64, r io.Reader) error {
	dg, err := oci.ParseDigest(d)
	if err != nil {
		return fmt.Errorf("%w: %w", server.ErrBadRequest, err)
	}
	if err := s.Store.Pin(ctx, dg); err != nil {
		return err
	}
	if size < 0 {
		f, err := os.CreateTemp(s.TempDir, "olm-upload-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if size, err = io.Copy(f, r); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		r = f
	}
	err = s.Store.Push(ctx, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: dg, Size: size}, r)
	switch {
	case err == nil, errors.Is(err, blobstore.ErrAlreadyExists):
		return nil
	case errors.Is(err, blobstore.ErrDigestMismatch), errors.Is(err, blobstore.ErrSizeMismatch):
		return fmt.Errorf("%w: %w", server.ErrBadRequest, err)
	}
	return err
}
