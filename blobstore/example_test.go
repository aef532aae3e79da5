package blobstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/olmhq/olm/blobstore"
)

// Example stores a blob, looks up where the runner would map it from, and
// shows that a manifest referencing a missing blob cannot be tagged.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "store")
	defer os.RemoveAll(dir)
	s, _ := blobstore.Open(dir, blobstore.Options{})

	weights := []byte("GGUF…")
	desc := ocispec.Descriptor{MediaType: "application/vnd.cncf.model.weight.v1.raw", Digest: digest.FromBytes(weights), Size: int64(len(weights))}
	if err := s.Push(ctx, desc, bytes.NewReader(weights)); err != nil {
		fmt.Println(err)
	}
	p, _ := s.BlobPath(desc.Digest)
	fmt.Println(p == dir+"/blobs/sha256/"+desc.Digest.Encoded())

	man := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(man), Size: int64(len(man))}
	s.Push(ctx, md, bytes.NewReader(man))
	fmt.Println(s.Tag(ctx, md, "localhost/m:v1") != nil) // the config blob is missing
	// Output:
	// true
	// true
}
