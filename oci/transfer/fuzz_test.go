package transfer

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/oci"
)

// tarOf builds a tarball from name/content pairs.
func tarOf(files ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzLoad feeds arbitrary archives to Load: it must never panic, never
// write outside the store, and never tag a manifest whose blobs are missing.
func FuzzLoad(f *testing.F) {
	w := "weights"
	wd := digest.FromString(w)
	man := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"` + wd.String() + `","size":7}]}`
	md := digest.FromString(man)
	idx := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + md.String() + `","size":` + itoa(len(man)) + `,"annotations":{"org.opencontainers.image.ref.name":"localhost/m:v1"}}]}`
	layout := `{"imageLayoutVersion":"1.0.0"}`
	f.Add(tarOf("oci-layout", layout, "index.json", idx, "blobs/sha256/"+md.Encoded(), man, "blobs/sha256/"+wd.Encoded(), w,
		"blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "{}"))
	f.Add(tarOf("oci-layout", layout, "index.json", idx, "blobs/sha256/"+md.Encoded(), man))
	f.Add(tarOf("oci-layout", layout, "index.json", idx, "blobs/sha256/../../x", "x"))
	f.Add(tarOf("index.json", `{"manifests":[{"digest":"sha256:../../x"}]}`, "oci-layout", layout))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		s, err := blobstore.Open(t.TempDir(), blobstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		Load(ctx, bytes.NewReader(data), s, LoadOptions{})
		ls, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ls {
			_, b, err := s.Manifest(ctx, e.Name)
			if err != nil {
				t.Fatalf("tagged %s without its manifest: %v", e.Name, err)
			}
			cs, err := oci.Successors(e.Descriptor, b)
			if err != nil {
				continue
			}
			for _, c := range cs {
				if ok, _ := s.Exists(ctx, ocispec.Descriptor{Digest: c.Digest}); !ok {
					t.Fatalf("tagged %s without blob %s", e.Name, c.Digest)
				}
			}
		}
	})
}
