package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"
)

func TestFetcherFor(t *testing.T) {
	ctx := context.Background()
	m, b := fixture()
	manifest, config, err := BuildManifest(m, FormatModelPack, BuildOptions{Created: ReproducibleTime})
	if err != nil {
		t.Fatal(err)
	}
	// The memory store keys blobs by their whole descriptor, media type
	// included, as a registry-backed store would see them in the manifest.
	store := memory.New()
	b.add(config)
	var man ocispec.Manifest
	if err := json.Unmarshal(manifest, &man); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(man.Layers, man.Config) {
		if err := store.Push(ctx, d, bytes.NewReader(b[d.Digest])); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ParseModel(ctx, manifest, FetcherFor(store))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.System.Data) != "You are a tiny model." || got.Config.Name != "tiny" {
		t.Fatalf("parsed %+v", got)
	}
	// A missing blob is an error naming it.
	missing := digest.SHA256.FromString("missing")
	if _, err := FetcherFor(store)(ctx, ocispec.Descriptor{Digest: missing, Size: 7}); err == nil {
		t.Fatal("fetch of a missing blob succeeded")
	}
}
