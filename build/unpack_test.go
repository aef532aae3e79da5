package build_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/modelfile"
	"github.com/olmhq/olm/oci"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tarOf makes a tar archive (gzipped when zip is set) of files, in order.
func tarOf(t *testing.T, zip bool, files ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	var tw *tar.Writer
	var zw *gzip.Writer
	if zip {
		zw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(zw)
	} else {
		tw = tar.NewWriter(&buf)
	}
	for i := 0; i < len(files); i += 2 {
		name, data := files[i].(string), files[i+1].([]byte)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

// storeModelKit stores a KitOps ModelKit, laid out as `kit pack` does (the
// Kitfile as config, the model in an archived layer), or for a ModelPack
// layer type a ModelPack artifact with archived weights, and tags it ref.
func storeModelKit(t testing.TB, s *blobstore.Store, ref, layerType string, archive []byte, modelPath string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	push := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := s.Push(ctx, d, bytes.NewReader(b)); err != nil && !errors.Is(err, blobstore.ErrAlreadyExists) {
			t.Fatal(err)
		}
		return d
	}
	artifactType := oci.ArtifactTypeKitOps
	config := push(oci.MediaTypeKitOpsConfig, []byte(`{"manifestVersion":"1.0.0","package":{"name":"tiny-kit","license":"MIT"},"model":{"name":"tiny","path":"`+modelPath+`","framework":"llama.cpp"}}`))
	layer := push(layerType, archive)
	switch {
	case strings.HasPrefix(layerType, "application/vnd.cncf.model."):
		artifactType = oci.ArtifactTypeModelPack
		config = push(oci.MediaTypeModelPackConfig, []byte(`{"descriptor":{"name":"tiny"},"modelfs":{"type":"layers","diffIds":["`+layer.Digest.String()+`"]},"config":{"format":"gguf"}}`))
		layer.Annotations = map[string]string{oci.AnnotationModelPackFilepath: modelPath, oci.AnnotationTitle: "weights.tar"}
	case strings.HasPrefix(layerType, oci.MediaTypeCNAIPrefix):
		artifactType = oci.ArtifactTypeCNAIModel
		config = push(oci.MediaTypeCNAIConfig, []byte(`{"descriptor":{"name":"tiny"},"modelfs":{"type":"layers","diffIds":["`+layer.Digest.String()+`"]},"config":{"format":"gguf"}}`))
		layer.Annotations = map[string]string{oci.AnnotationCNAIFilepath: modelPath}
	}
	man, _ := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
	})
	desc := push(ocispec.MediaTypeImageManifest, man)
	desc.ArtifactType = artifactType
	if err := s.Tag(ctx, desc, ref); err != nil {
		t.Fatal(err)
	}
	return desc
}

// zstdOf compresses b with zstd at the given level, as `zstd -N` would.
func zstdOf(t *testing.T, b []byte, level zstd.EncoderLevel) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestArchivedWeights: a ModelKit or ModelPack artifact whose GGUF is in a
// tar, tar+gzip or tar+zstd layer
// resolves to a mappable GGUF file, unpacked once, kept while the model is
// stored and removed with it; Show and builds FROM it read that file.
func TestArchivedWeights(t *testing.T) {
	ctx := context.Background()
	want := readAll(t, testmodel.Tiny(t))
	for _, tc := range []struct {
		name, mediaType string
		zip, zstd       bool
	}{
		{"tar", oci.MediaTypeKitOpsModelTar, false, false},
		{"tar+gzip", oci.MediaTypeKitOpsModelTarGzip, true, false},
		{"tar+zstd", oci.MediaTypeKitOpsModelTarZstd, false, true},
		{"modelpack-tar", oci.MediaTypeModelPackWeightTar, false, false},
		{"modelpack-tar+gzip", oci.MediaTypeModelPackWeightTarGzip, true, false},
		{"modelpack-tar+zstd", oci.MediaTypeModelPackWeightTarZstd, false, true},
		{"cnai-tar+zstd", oci.MediaTypeCNAIPrefix + "weight.v1.tar+zstd", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, s := newBuilder(t)
			archive := tarOf(t, tc.zip, "models/README.md", []byte("# tiny"), "models/tiny.gguf", want)
			if tc.zstd {
				archive = zstdOf(t, archive, zstd.SpeedBestCompression)
			}
			ref := "example.com/kit/tiny:v1"
			storeModelKit(t, s, ref, tc.mediaType, archive, "models/tiny.gguf")

			m, _, err := build.LoadModel(ctx, s, ref)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Weights) != 1 || m.Weights[0].Archive == oci.ArchiveNone {
				t.Fatalf("weights %+v", m.Weights)
			}
			paths, err := build.ModelPaths(ctx, s, m)
			if err != nil {
				t.Fatal(err)
			}
			path := paths.Weights[0]
			if !strings.HasPrefix(path, filepath.Join(s.Root(), build.UnpackDir)+string(filepath.Separator)) {
				t.Fatalf("path %s is not in the store's unpacked folder", path)
			}
			if _, err := gguf.ReadFile(path); err != nil {
				t.Fatalf("unpacked file is not a GGUF: %v", err)
			}
			if got := readAll(t, path); !bytes.Equal(got, want) {
				t.Fatalf("unpacked %d bytes differ from the %d of the GGUF", len(got), len(want))
			}
			fi, _ := os.Stat(path)
			if fi.Mode().Perm()&0o222 != 0 {
				t.Fatalf("unpacked file is writable: %v", fi.Mode())
			}
			// Done once: a second resolution finds the same file untouched.
			again, err := build.LayerPath(ctx, s, m.Weights[0])
			if err != nil || again != path {
				t.Fatalf("second LayerPath = %s, %v", again, err)
			}
			if fi2, _ := os.Stat(again); !os.SameFile(fi, fi2) || !fi2.ModTime().Equal(fi.ModTime()) {
				t.Fatal("the file was unpacked again")
			}

			// Show reads the header through the unpacked file.
			info, err := build.Show(ctx, s, ref, build.ShowOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Details.Architecture != "llama" || info.Paths.Weights[0] != path {
				t.Fatalf("show: %+v, paths %+v", info.Details, info.Paths)
			}
			// A model built FROM it reads its header too.
			mf, _ := modelfile.ParseString("FROM " + ref + "\nSYSTEM hi\n")
			if _, err := b.Build(ctx, build.Request{Modelfile: mf, Tags: []string{"example.com/kit/derived:v1"}}, nil); err != nil {
				t.Fatal(err)
			}

			// GC keeps it while a model uses the archive, and it goes with the last one.
			if _, err := s.GC(ctx); err != nil {
				t.Fatal(err)
			}
			if n, _, err := build.PruneUnpacked(ctx, s); err != nil || n != 0 {
				t.Fatalf("prune with the model stored: %d, %v", n, err)
			}
			for _, tag := range []string{ref, "example.com/kit/derived:v1"} {
				if _, err := s.Delete(ctx, tag); err != nil {
					t.Fatal(err)
				}
			}
			n, freed, err := build.PruneUnpacked(ctx, s)
			if err != nil || n != 1 || freed != int64(len(want)) {
				t.Fatalf("prune after removal: %d files, %d bytes, %v", n, freed, err)
			}
			if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
				t.Fatalf("unpacked folder still there: %v", err)
			}
		})
	}
}

// TestArchivedWeightsBad: an archive without the GGUF, or with a file that
// is not one, is refused and leaves nothing behind.
func TestArchivedWeightsBad(t *testing.T) {
	ctx := context.Background()
	gg := readAll(t, testmodel.Tiny(t))
	zstdTrunc := zstdOf(t, tarOf(t, false, "models/tiny.gguf", gg), zstd.SpeedDefault)
	zstdTrunc = zstdTrunc[:len(zstdTrunc)*2/3]
	for _, tc := range []struct {
		name    string
		archive []byte
		want    error
	}{
		{"not-gguf", tarOf(t, false, "models/tiny.gguf", []byte("GGUF but not really")), build.ErrInvalidWeights},
		{"truncated-gguf", tarOf(t, false, "models/tiny.gguf", gg[:len(gg)/2]), build.ErrInvalidWeights},
		{"missing", tarOf(t, false, "models/other.bin", []byte("x")), oci.ErrInvalidManifest},
		{"zstd-truncated", zstdTrunc, nil},
		{"zstd-not-gguf", zstdOf(t, tarOf(t, false, "models/tiny.gguf", []byte("GGUF but not really")), zstd.SpeedDefault), build.ErrInvalidWeights},
		{"zstd-not-zstd", tarOf(t, true, "models/tiny.gguf", gg), oci.ErrInvalidManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, s := newBuilder(t)
			ref := "example.com/kit/bad:v1"
			mt := oci.MediaTypeKitOpsModelTar
			if strings.HasPrefix(tc.name, "zstd-") {
				mt = oci.MediaTypeModelPackWeightTarZstd
			}
			storeModelKit(t, s, ref, mt, tc.archive, "models/tiny.gguf")
			m, _, err := build.LoadModel(ctx, s, ref)
			if err != nil {
				t.Fatal(err)
			}
			_, err = build.ModelPaths(ctx, s, m)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("ModelPaths: %v, want %v", err, tc.want)
			}
			dir := filepath.Join(s.Root(), build.UnpackDir, "sha256", m.Weights[0].Digest.Encoded())
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("left behind: %v", ents)
			}
		})
	}
}

// TestArchivedWeightsConcurrent: several goroutines resolving the same
// archived layer at once all get the one complete file, and no temporary
// file is left.
func TestArchivedWeightsConcurrent(t *testing.T) {
	ctx := context.Background()
	want := readAll(t, testmodel.Tiny(t))
	_, s := newBuilder(t)
	storeModelKit(t, s, "example.com/kit/tiny:v1", oci.MediaTypeKitOpsModelTarGzip, tarOf(t, true, "models/tiny.gguf", want), "models/tiny.gguf")
	m, _, err := build.LoadModel(ctx, s, "example.com/kit/tiny:v1")
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, 6)
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = build.LayerPath(ctx, s, m.Weights[0]) })
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Fatalf("goroutine %d: %s, %v (first: %s)", i, paths[i], errs[i], paths[0])
		}
	}
	if !bytes.Equal(readAll(t, paths[0]), want) {
		t.Fatal("unpacked file differs from the GGUF")
	}
	checkUnpackedDir(t, filepath.Dir(paths[0]))
}

// checkUnpackedDir fails unless dir holds the one unpacked file: no
// temporary or lock file is left.
func checkUnpackedDir(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || !strings.HasSuffix(names[0], ".gguf") {
		t.Fatalf("folder holds %v, want the one file", names)
	}
}

// TestArchivedWeightsWait: while one goroutine unpacks a layer, a second
// one asking for it waits for the first and uses its file instead of
// unpacking the layer again.
func TestArchivedWeightsWait(t *testing.T) {
	ctx := context.Background()
	want := readAll(t, testmodel.Tiny(t))
	_, s := newBuilder(t)
	storeModelKit(t, s, "example.com/mp/tiny:v1", oci.MediaTypeModelPackWeightTarZstd, zstdOf(t, tarOf(t, false, "tiny.gguf", want), zstd.SpeedDefault), "tiny.gguf")
	m, _, err := build.LoadModel(ctx, s, "example.com/mp/tiny:v1")
	if err != nil {
		t.Fatal(err)
	}
	var unpacks atomic.Int32
	started, waiting := make(chan struct{}), make(chan struct{})
	// The first unpacking holds its lock until the second caller waits.
	build.SetUnpackHooks(func() {
		if unpacks.Add(1) == 1 {
			close(started)
			<-waiting
		}
	}, func() { close(waiting) })
	t.Cleanup(func() { build.SetUnpackHooks(nil, nil) })

	var first, second string
	var err1, err2 error
	var wg sync.WaitGroup
	wg.Go(func() { first, err1 = build.LayerPath(ctx, s, m.Weights[0]) })
	<-started
	wg.Go(func() { second, err2 = build.LayerPath(ctx, s, m.Weights[0]) })
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatalf("LayerPath: %v, %v", err1, err2)
	}
	if n := unpacks.Load(); n != 1 || first != second {
		t.Fatalf("%d unpackings, paths %s and %s; want one, one path", n, first, second)
	}
	if !bytes.Equal(readAll(t, first), want) {
		t.Fatal("unpacked file differs from the GGUF")
	}
	checkUnpackedDir(t, filepath.Dir(first))

	// A waiter whose context ends gives up with the context's error.
	storeModelKit(t, s, "example.com/mp/other:v1", oci.MediaTypeModelPackWeightTar, tarOf(t, false, "other.gguf", want), "other.gguf")
	m2, _, err := build.LoadModel(ctx, s, "example.com/mp/other:v1")
	if err != nil {
		t.Fatal(err)
	}
	unpacks.Store(0)
	started, release := make(chan struct{}), make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	build.SetUnpackHooks(func() {
		if unpacks.Add(1) == 1 {
			close(started)
			<-release
		}
	}, cancel)
	wg.Go(func() { first, err1 = build.LayerPath(ctx, s, m2.Weights[0]) })
	<-started
	if _, err := build.LayerPath(cctx, s, m2.Weights[0]); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled waiter: %v", err)
	}
	close(release)
	wg.Wait()
	if err1 != nil || unpacks.Load() != 1 {
		t.Fatalf("first: %v, %d unpackings", err1, unpacks.Load())
	}
}

// TestArchivedWeightsQuantize: a model built FROM a ModelKit with
// --quantize quantizes the unpacked GGUF and stores raw weights.
func TestArchivedWeightsQuantize(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	b.Quantizer = realQuantizer(t)
	storeModelKit(t, s, "example.com/kit/tiny:v1", oci.MediaTypeKitOpsModelTar, tarOf(t, false, "models/tiny.gguf", readAll(t, testmodel.Tiny(t))), "models/tiny.gguf")
	mf, _ := modelfile.ParseString("FROM example.com/kit/tiny:v1\n")
	res, err := b.Build(ctx, build.Request{Modelfile: mf, Tags: []string{"example.com/kit/tiny:q8"}, Quantize: "q8_0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := res.Model.Weights[0]
	if res.Details.Quantization != "Q8_0" || w.Archive != oci.ArchiveNone {
		t.Fatalf("quantization %s, weights %+v", res.Details.Quantization, w)
	}
	path, err := s.BlobPath(w.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := gguf.ReadFile(path); err != nil || f.Quantization() != "Q8_0" {
		t.Fatalf("quantized blob: %v", err)
	}
}

// TestArchivedWeightsCrashLeftovers: a temporary file that a process
// killed mid-unpacking left is removed by the next unpacking of that file
// (under its lock), which then completes.
func TestArchivedWeightsCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	want := readAll(t, testmodel.Tiny(t))
	_, s := newBuilder(t)
	storeModelKit(t, s, "example.com/mp/tiny:v1", oci.MediaTypeModelPackWeightTar, tarOf(t, false, "tiny.gguf", want), "tiny.gguf")
	m, _, err := build.LoadModel(ctx, s, "example.com/mp/tiny:v1")
	if err != nil {
		t.Fatal(err)
	}
	path, err := build.LayerPath(ctx, s, m.Weights[0])
	if err != nil {
		t.Fatal(err)
	}
	// As if the process had died: no file yet, half a temporary one.
	os.Remove(path)
	key := strings.TrimSuffix(filepath.Base(path), ".gguf")
	stale := filepath.Join(filepath.Dir(path), ".tmp-"+key+"-12345")
	if err := os.WriteFile(stale, want[:len(want)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := build.LayerPath(ctx, s, m.Weights[0])
	if err != nil || again != path {
		t.Fatalf("LayerPath after a crash: %s, %v", again, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the crashed unpacking's file is still there (%v)", err)
	}
	if !bytes.Equal(readAll(t, path), want) {
		t.Fatal("unpacked file differs from the GGUF")
	}
	checkUnpackedDir(t, filepath.Dir(path))
}
