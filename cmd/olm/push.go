package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/oci/transfer"
)

// PushCmd uploads a local model to its registry.
type PushCmd struct {
	TransferFlags
	Name   string `arg:"" help:"Local model to push; its name says where (registry/repository:tag)."`
	Format string `name:"format" enum:"modelpack,ollama,docker," default:"" help:"Manifest format to push: modelpack (CNCF ModelPack), ollama or docker (Docker Model Runner); default: as stored."`
	JSON   bool   `name:"json" help:"Print the result (name, digest) as JSON on stdout."`
}

// Run pushes the model, converting its manifest first when --format asks.
func (c *PushCmd) Run(ctx context.Context, g *Globals) error {
	s, _, err := openLocalStore(g)
	if err != nil {
		return err
	}
	ref, key, err := localModel(ctx, s, c.Name)
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) && errors.Is(err, errNoLocalModel) {
			// Like docker push: the name to push under must be a local tag.
			return exitError{ee.code, fmt.Errorf("%w; to push a local model under this name, tag it first: olm tag MODEL %s", err, c.Name)}
		}
		return err
	}
	_, repo, err := remoteRepo(ctx, c.Name, c.Insecure)
	if err != nil {
		return err
	}
	release, err := s.Hold(ctx) // keep a converted manifest from GC until pushed
	if err != nil {
		return err
	}
	defer release()
	src := key
	if c.Format != "" {
		d, err := convertStored(ctx, s, key, oci.Format(c.Format))
		if err != nil {
			return classify(ctx, err)
		}
		src = d.Digest.String()
	}
	p := newProgress("pushing", c.Quiet || c.JSON)
	tag := ref.Tag
	if tag == "" {
		tag = ref.Digest.String()
	}
	desc, err := transfer.Copy(ctx, s, src, repo, tag, transfer.Options{Progress: p.event})
	if err != nil {
		return explainTransfer(classify(ctx, err), ref)
	}
	if c.JSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"name": ref.String(), "digest": desc.Digest, "mediaType": desc.MediaType, "size": desc.Size})
	}
	p.line("pushed %s (%s)", ref, desc.Digest)
	return nil
}

// convertStored writes the stored model key as a manifest of format f into
// the store (untagged; GC collects it later) and returns its descriptor. A
// model already in format f is returned unchanged.
func convertStored(ctx context.Context, s *blobstore.Store, key string, f oci.Format) (ocispec.Descriptor, error) {
	desc, b, err := s.Manifest(ctx, key)
	if err != nil {
		return desc, err
	}
	m, err := oci.ParseModel(ctx, b, oci.FetcherFor(s))
	if err != nil {
		return desc, err
	}
	if m.Format == f {
		return desc, nil
	}
	created := m.Config.Created
	if created.IsZero() {
		created = oci.ReproducibleTime
	}
	man, cfg, err := oci.BuildManifest(*m, f, oci.BuildOptions{Created: created})
	if err != nil {
		return desc, fmt.Errorf("convert to %s: %w", f, err)
	}
	var probe struct {
		MediaType string             `json:"mediaType"`
		Config    ocispec.Descriptor `json:"config"`
	}
	if err := json.Unmarshal(man, &probe); err != nil {
		return desc, err
	}
	if err := s.Push(ctx, probe.Config, bytes.NewReader(cfg)); err != nil && !errors.Is(err, blobstore.ErrAlreadyExists) {
		return desc, err
	}
	md := ocispec.Descriptor{MediaType: f.ManifestMediaType(), Digest: digestBytes(man), Size: int64(len(man))}
	if err := s.Push(ctx, md, bytes.NewReader(man)); err != nil && !errors.Is(err, blobstore.ErrAlreadyExists) {
		return desc, err
	}
	return md, nil
}
