package backend

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/oci"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestArchivedWeightsReachTheRunner: a KitOps ModelKit keeps its GGUF in a
// tar layer, which llama.cpp cannot map; the server's model view must point
// the runner at the GGUF unpacked from it, byte for byte the original, and
// deleting the model removes the unpacked copy too.
func TestArchivedWeightsReachTheRunner(t *testing.T) {
	ctx := context.Background()
	p := newParts(t)
	original, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	if err := tw.WriteHeader(&tar.Header{Name: "tiny.gguf", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(original))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(original)
	tw.Close()

	push := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := p.store.Push(ctx, d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	config := push(oci.MediaTypeKitOpsConfig, []byte(`{"manifestVersion":"1.0.0","package":{"name":"kit"},"model":{"name":"tiny","path":"tiny.gguf","framework":"llama.cpp"}}`))
	layer := push(oci.MediaTypeKitOpsModelTar, archive.Bytes())
	man, _ := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: oci.ArtifactTypeKitOps,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
	})
	desc := push(ocispec.MediaTypeImageManifest, man)
	if err := p.store.Tag(ctx, desc, "localhost:5000/kits/tiny:1"); err != nil {
		t.Fatal(err)
	}

	m, err := p.models.Resolve(ctx, "localhost:5000/kits/tiny:1")
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := p.store.BlobPath(layer.Digest)
	if m.WeightsPath == blob {
		t.Fatalf("weights path is the tar blob %s, which llama.cpp cannot map", blob)
	}
	got, err := os.ReadFile(m.WeightsPath)
	if err != nil || !bytes.Equal(got, original) {
		t.Fatalf("weights path %s does not hold the original GGUF (err %v)", m.WeightsPath, err)
	}

	if err := p.models.Delete(ctx, "localhost:5000/kits/tiny:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.WeightsPath); !os.IsNotExist(err) {
		t.Errorf("unpacked GGUF %s survived the model's deletion (stat: %v)", m.WeightsPath, err)
	}
	if _, err := os.Stat(filepath.Join(p.store.Root(), build.UnpackDir)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}
