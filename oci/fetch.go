package oci

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// FetcherFor adapts an oras-go content fetcher (a local OCI layout store, a
// remote repository, an in-memory store) to a Fetcher for ParseModel. The
// blob is read with content.FetchAll, which stops at desc.Size bytes and
// verifies size and digest.
func FetcherFor(f content.Fetcher) Fetcher {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
		return content.FetchAll(ctx, f, desc)
	}
}
