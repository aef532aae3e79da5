package interop

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/oci/transfer"
	"github.com/olmhq/olm/registry-test/regtest"

	"github.com/klauspost/compress/zstd"
)

// TestPulledModelKitRuns: a KitOps ModelKit whose GGUF is in a tar or
// tar+gzip layer, pushed with the oras CLI to the real registry, is pulled
// by olm into its store, and the path olm gives the runner is the GGUF
// itself, byte for byte (not the archive, which llama.cpp cannot map).
func TestPulledModelKitRuns(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{TLS: true, Auth: true})
	ctx := context.Background()
	want, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := transfer.DockerCredentials(filepath.Join(reg.DockerConfig, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, mediaType string
		zip             bool
		kitPath         string // the Kitfile's model path: the file, or its folder
	}{
		{"tar", oci.MediaTypeKitOpsModelTar, false, "./models/tiny.gguf"},
		{"tar+gzip", oci.MediaTypeKitOpsModelTarGzip, true, "./models"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var archive bytes.Buffer
			var tw *tar.Writer
			var zw *gzip.Writer
			if tc.zip {
				zw = gzip.NewWriter(&archive)
				tw = tar.NewWriter(zw)
			} else {
				tw = tar.NewWriter(&archive)
			}
			tw.WriteHeader(&tar.Header{Name: "models/", Typeflag: tar.TypeDir, Mode: 0o755})
			tw.WriteHeader(&tar.Header{Name: "models/tiny.gguf", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(want))})
			tw.Write(want)
			tw.Close()
			if zw != nil {
				zw.Close()
			}
			os.WriteFile(filepath.Join(dir, "model.tar"), archive.Bytes(), 0o644)
			os.WriteFile(filepath.Join(dir, "Kitfile.json"), []byte(`{"manifestVersion":"1.0.0","package":{"name":"tiny-kit","license":"MIT"},"model":{"name":"tiny","path":"`+tc.kitPath+`","framework":"llama.cpp"}}`), 0o644)
			repo := "kit/tiny-" + map[bool]string{false: "tar", true: "tgz"}[tc.zip]
			reg.Tool(t, dir, "oras", "push", "--disable-path-validation",
				"--artifact-type", oci.ArtifactTypeKitOps,
				"--config", "Kitfile.json:"+oci.MediaTypeKitOpsConfig,
				reg.Ref(repo, "v1"), "model.tar:"+tc.mediaType)

			// olm pulls it into its store.
			s, ref := pullToNewStore(t, reg.Ref(repo, "v1"), transfer.RemoteOptions{RootCAs: reg.CertPool(), Credentials: creds})

			info, err := build.Show(ctx, s, ref.String(), build.ShowOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Model.Format != oci.FormatKitOps || info.Model.Weights[0].Archive == oci.ArchiveNone || info.Details.Architecture != "llama" {
				t.Fatalf("show: format %s, weights %+v, details %+v", info.Model.Format, info.Model.Weights, info.Details)
			}
			m, _, err := build.LoadModel(ctx, s, ref.String())
			if err != nil {
				t.Fatal(err)
			}
			paths, err := build.ModelPaths(ctx, s, m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gguf.ReadFile(paths.Weights[0]); err != nil {
				t.Fatalf("%s is not a GGUF: %v", paths.Weights[0], err)
			}
			got, err := os.ReadFile(paths.Weights[0])
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %d bytes (%v), want the %d of the GGUF", paths.Weights[0], len(got), err, len(want))
			}
			if blob, _ := s.BlobPath(m.Weights[0].Digest); blob == paths.Weights[0] {
				t.Fatal("the runner would get the archive blob")
			}
		})
	}
}

// TestPulledModelPackZstd: a ModelPack artifact whose weights are a
// tar+zstd layer (the cncf media type, and the older cnai one), pushed with
// the oras CLI to the real registry and pulled by olm, gives the runner the
// GGUF itself, unpacked from the zstd stream byte for byte.
func TestPulledModelPackZstd(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	ctx := context.Background()
	want, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "tiny.gguf", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(want))})
	tw.Write(want)
	tw.Close()
	var archive bytes.Buffer
	zw, err := zstd.NewWriter(&archive, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(tarball.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, artifactType, configType, layerType string }{
		{"cncf", oci.ArtifactTypeModelPack, oci.MediaTypeModelPackConfig, oci.MediaTypeModelPackWeightTarZstd},
		{"cnai", oci.ArtifactTypeCNAIModel, oci.MediaTypeCNAIConfig, oci.MediaTypeCNAIPrefix + "weight.v1.tar+zstd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "model.tar.zst"), archive.Bytes(), 0o644)
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"descriptor":{"name":"tiny"},"modelfs":{"type":"layers","diffIds":[]},"config":{"format":"gguf"}}`), 0o644)
			repo := "mp/tiny-zstd-" + tc.name
			reg.Tool(t, dir, "oras", "push",
				"--artifact-type", tc.artifactType,
				"--config", "config.json:"+tc.configType,
				reg.Ref(repo, "v1"), "model.tar.zst:"+tc.layerType)

			s, ref := pullToNewStore(t, reg.Ref(repo, "v1"), transfer.RemoteOptions{})
			info, err := build.Show(ctx, s, ref.String(), build.ShowOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w := info.Model.Weights[0]
			if w.Archive != oci.ArchiveTarZstd || w.MediaType != tc.layerType || info.Details.Architecture != "llama" {
				t.Fatalf("show: weights %+v, details %+v", info.Model.Weights, info.Details)
			}
			path := info.Paths.Weights[0]
			if blob, _ := s.BlobPath(w.Digest); blob == path {
				t.Fatal("the runner would get the archive blob")
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %d bytes (%v), want the %d of the GGUF", path, len(got), err, len(want))
			}
		})
	}
}

// pullToNewStore pulls name with olm's transfer code into a new store and
// returns the store and the parsed reference.
func pullToNewStore(t *testing.T, name string, opts transfer.RemoteOptions) (*blobstore.Store, oci.Reference) {
	t.Helper()
	ctx := context.Background()
	s, err := blobstore.Open(filepath.Join(t.TempDir(), "store"), blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := oci.Naming{}.Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	src, err := transfer.NewRepository(ctx, ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transfer.Copy(ctx, src, ref.TagOrDigest(), s, ref.String(), transfer.Options{}); err != nil {
		t.Fatal(err)
	}
	return s, ref
}
