package interop

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/registry-test/regtest"
)

// TestOrasPushedModelKit: a KitOps ModelKit whose model is GGUF, as `kit
// pack` lays it out (the Kitfile as config, the model in a tar layer), pushed
// with the oras CLI, is read by oci.ParseModel, and OpenArchived streams the
// GGUF out of the layer byte for byte.
func TestOrasPushedModelKit(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	dir := t.TempDir()
	gguf, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	tw.WriteHeader(&tar.Header{Name: "models/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "models/tiny.gguf", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(gguf))})
	tw.Write(gguf)
	tw.Close()
	os.WriteFile(filepath.Join(dir, "model.tar"), archive.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "Kitfile.json"), []byte(`{"manifestVersion":"1.0.0","package":{"name":"tiny-kit","license":"MIT"},"model":{"name":"tiny","path":"models/tiny.gguf","framework":"llama.cpp"}}`), 0o644)
	reg.Tool(t, dir, "oras", "push", "--disable-path-validation",
		"--artifact-type", oci.ArtifactTypeKitOps,
		"--config", "Kitfile.json:"+oci.MediaTypeKitOpsConfig,
		reg.Ref("kit/tiny", "v1"), "model.tar:"+oci.MediaTypeKitOpsModelTar)

	ctx := context.Background()
	manifest, _, err := reg.GetManifest(ctx, "kit/tiny", "v1")
	if err != nil {
		t.Fatal(err)
	}
	fetch := fetcher(reg, "kit/tiny")
	m, err := oci.ParseModel(ctx, manifest, fetch)
	if err != nil {
		t.Fatal(err)
	}
	w := m.Weights[0]
	if m.Format != oci.FormatKitOps || m.Config.Name != "tiny-kit" || w.Archive != oci.ArchiveTar {
		t.Fatalf("model %+v", m)
	}
	// oras names the layer after the file it pushed; the Kitfile names the
	// model inside. Either finds the GGUF in the archive.
	blob, err := fetch(ctx, w.Descriptor(w.MediaType))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{w.Filename, "models/tiny.gguf", ""} {
		r, n, err := oci.OpenArchived(bytes.NewReader(blob), w.Archive, name)
		if err != nil {
			t.Fatalf("OpenArchived(%q): %v", name, err)
		}
		got, _ := io.ReadAll(r)
		if n != int64(len(gguf)) || !bytes.Equal(got, gguf) {
			t.Fatalf("OpenArchived(%q): %d bytes, want the %d of the GGUF", name, len(got), len(gguf))
		}
	}
}
