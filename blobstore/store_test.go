package blobstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/memory"
	orasoci "oras.land/oras-go/v2/content/oci"

	"github.com/olmhq/olm/oci"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func blob(mt string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// model pushes a config, a weights layer and a manifest, returning the manifest.
func model(t *testing.T, s *Store, weights []byte) (ocispec.Descriptor, []ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	cfg := []byte(`{"config":{"format":"gguf"}}`)
	cd := blob(oci.MediaTypeModelPackConfig, cfg)
	ld := blob(oci.MediaTypeModelPackWeightRaw, weights)
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: oci.ArtifactTypeModelPack, Config: cd, Layers: []ocispec.Descriptor{ld}}
	mb, _ := json.Marshal(m)
	md := blob(ocispec.MediaTypeImageManifest, mb)
	for _, x := range []struct {
		d ocispec.Descriptor
		b []byte
	}{{cd, cfg}, {ld, weights}, {md, mb}} {
		if err := s.Push(ctx, x.d, bytes.NewReader(x.b)); err != nil && !errors.Is(err, ErrAlreadyExists) {
			t.Fatal(err)
		}
	}
	return md, []ocispec.Descriptor{cd, ld}
}

func TestOpenCreatesLayout(t *testing.T) {
	s := newStore(t)
	b, err := os.ReadFile(filepath.Join(s.Root(), "oci-layout"))
	if err != nil || !strings.Contains(string(b), `"imageLayoutVersion":"1.0.0"`) {
		t.Fatalf("oci-layout = %q, %v", b, err)
	}
	idx, err := s.Index(context.Background())
	if err != nil || idx.SchemaVersion != 2 || len(idx.Manifests) != 0 {
		t.Fatalf("index = %+v, %v", idx, err)
	}
	// Reopening an existing store keeps it.
	if _, err := Open(s.Root(), Options{}); err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "oci-layout"), []byte(`{"imageLayoutVersion":"9"}`), 0o644)
	if _, err := Open(bad, Options{}); !errors.Is(err, ErrInvalidLayout) {
		t.Fatalf("Open(bad layout) = %v, want ErrInvalidLayout", err)
	}
}

func TestPushFetchVerify(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("hello weights")
	d := blob("application/octet-stream", data)
	if err := s.Push(ctx, d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(ctx, d, bytes.NewReader(data)); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("second Push = %v, want ErrAlreadyExists", err)
	}
	p, err := s.BlobPath(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("blob mode %v, want 0444", fi.Mode().Perm())
	}
	rc, err := s.Fetch(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got := new(bytes.Buffer)
	got.ReadFrom(rc)
	rc.Close()
	if got.String() != string(data) {
		t.Fatalf("Fetch = %q", got)
	}

	tests := []struct {
		name string
		desc ocispec.Descriptor
		body string
		want error
	}{
		{"wrong bytes", ocispec.Descriptor{Digest: digest.FromString("abc"), Size: 3}, "abd", ErrDigestMismatch},
		{"longer than announced", ocispec.Descriptor{Digest: digest.FromString("abcd"), Size: 3}, "abcd", ErrSizeMismatch},
		{"shorter than announced", ocispec.Descriptor{Digest: digest.FromString("abc"), Size: 4}, "abc", ErrSizeMismatch},
		{"path traversal digest", ocispec.Descriptor{Digest: "sha256:../../x", Size: 1}, "x", oci.ErrInvalidDigest},
		{"other algorithm", ocispec.Descriptor{Digest: digest.SHA512.FromString("x"), Size: 1}, "x", oci.ErrInvalidDigest},
		{"negative size", ocispec.Descriptor{Digest: digest.FromString("x"), Size: -1}, "x", ErrSizeMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Push(ctx, tc.desc, strings.NewReader(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Push = %v, want %v", err, tc.want)
			}
			if ok, _ := s.Exists(ctx, tc.desc); ok {
				t.Fatal("bad content became a blob")
			}
		})
	}
	if _, err := s.BlobPath("sha256:../../x"); !errors.Is(err, oci.ErrInvalidDigest) {
		t.Fatalf("BlobPath(traversal) = %v", err)
	}
	if _, err := s.BlobPath(digest.FromString("absent")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("BlobPath(absent) = %v", err)
	}
}

func TestTagResolveListUntagGC(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	md, blobs := model(t, s, []byte("weights one"))
	const name = "registry.ollama.ai/library/tiny:latest"
	if err := s.Tag(ctx, md, name); err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve(ctx, name)
	if err != nil || got.Digest != md.Digest || got.MediaType != md.MediaType {
		t.Fatalf("Resolve = %+v, %v", got, err)
	}
	if got, err := s.Resolve(ctx, md.Digest.String()); err != nil || got.Digest != md.Digest {
		t.Fatalf("Resolve(digest) = %+v, %v", got, err)
	}
	if _, err := s.Resolve(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve(missing) = %v", err)
	}
	ls, err := s.List(ctx)
	if err != nil || len(ls) != 1 || ls[0].Name != name || ls[0].Modified.IsZero() {
		t.Fatalf("List = %+v, %v", ls, err)
	}
	// A second model sharing nothing; then delete the first.
	md2, blobs2 := model(t, s, []byte("weights two"))
	if err := s.Tag(ctx, md2, "localhost:5000/m/two:v1"); err != nil {
		t.Fatal(err)
	}
	st, err := s.Delete(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	// The config is shared by both models; the first manifest and weights go.
	if st.Removed != 2 || st.Skipped {
		t.Fatalf("GC = %+v, want 2 removed", st)
	}
	for _, d := range []ocispec.Descriptor{md, blobs[1]} {
		if ok, _ := s.Exists(ctx, d); ok {
			t.Errorf("%s survived GC", d.Digest)
		}
	}
	for _, d := range append([]ocispec.Descriptor{md2}, blobs2...) {
		if ok, _ := s.Exists(ctx, d); !ok {
			t.Errorf("%s of the live model was collected", d.Digest)
		}
	}
	if err := s.Untag(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Untag(gone) = %v", err)
	}
}

func TestTagRefusesIncomplete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	md, blobs := model(t, s, []byte("weights"))
	p, _ := s.BlobPath(blobs[1].Digest)
	os.Remove(p)
	if err := s.Tag(ctx, md, "x/y:z"); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Tag with a missing layer = %v, want ErrIncomplete", err)
	}
	if ls, _ := s.List(ctx); len(ls) != 0 {
		t.Fatalf("incomplete model was tagged: %+v", ls)
	}
	if err := s.Tag(ctx, blobs[0], "cfg"); err == nil {
		t.Fatal("tagging a config blob succeeded")
	}
}

func TestGCSkippedWhileHeld(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("untagged")
	d := blob("application/octet-stream", data)
	s.Push(ctx, d, bytes.NewReader(data))
	release, err := s.Hold(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.GC(ctx); err != nil || !st.Skipped {
		t.Fatalf("GC while held = %+v, %v", st, err)
	}
	release()
	if st, err := s.GC(ctx); err != nil || st.Removed != 1 {
		t.Fatalf("GC = %+v, %v", st, err)
	}
}

func TestWriterResume(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	d := blob("application/octet-stream", data)
	w, err := s.OpenWriter(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:4321])
	w.Close() // interrupted: the partial file stays

	// A fresh Store handle, as after a restart.
	s2, _ := Open(s.Root(), Options{})
	w, err = s2.OpenWriter(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	off, err := w.Resume(ctx)
	if err != nil || off != 4321 {
		t.Fatalf("Resume = %d, %v", off, err)
	}
	w.Write(data[off:])
	if err := w.Commit(ctx, ""); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "ingest")); len(ents) > 1 {
		t.Errorf("ingest not cleaned: %v", ents)
	}
}

func TestWriterWriteAtAndCorruptResume(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("abcdefgh"), 512)
	d := blob("application/octet-stream", data)
	w, _ := s.OpenWriter(ctx, d)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n := len(data) / 4
			w.WriteAt(data[i*n:(i+1)*n], int64(i*n))
		}(i)
	}
	wg.Wait()
	if err := w.Commit(ctx, ""); err != nil {
		t.Fatal(err)
	}
	// A corrupted partial file fails verification and is removed.
	data2 := []byte("second blob content")
	d2 := blob("application/octet-stream", data2)
	w, _ = s.OpenWriter(ctx, d2)
	w.Write([]byte("SECOND"))
	w.Close()
	w, _ = s.OpenWriter(ctx, d2)
	off, _ := w.Resume(ctx)
	w.Write(data2[off:])
	if err := w.Commit(ctx, ""); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Commit of corrupt resume = %v, want ErrDigestMismatch", err)
	}
	w, _ = s.OpenWriter(ctx, d2)
	if off, _ := w.Resume(ctx); off != 0 {
		t.Fatalf("corrupt partial kept: offset %d", off)
	}
	w.Close()
	// A writer's own digest must match too.
	w, _ = s.OpenWriter(ctx, d2)
	w.Write(data2)
	if err := w.Commit(ctx, digest.FromString("other")); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Commit(wrong sum) = %v", err)
	}
}

func TestConcurrentWritersWriteOnce(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	data := bytes.Repeat([]byte("x"), 1<<20)
	d := blob("application/octet-stream", data)
	var mu sync.Mutex
	wrote, existed := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(root, Options{}) // separate handles, as separate processes
			if err != nil {
				t.Error(err)
				return
			}
			w, err := s.OpenWriter(ctx, d)
			if errors.Is(err, ErrAlreadyExists) {
				mu.Lock()
				existed++
				mu.Unlock()
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			defer w.Close()
			w.Write(data)
			if err := w.Commit(ctx, ""); err != nil {
				t.Error(err)
			}
			mu.Lock()
			wrote++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if wrote != 1 || existed != 7 {
		t.Fatalf("wrote %d, existed %d; want 1 and 7", wrote, existed)
	}
}

func TestConcurrentTagsAllKept(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, _ := Open(root, Options{})
	md, _ := model(t, s, []byte("w"))
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, _ := Open(root, Options{})
			if err := s.Tag(ctx, md, fmt.Sprintf("localhost/m:%d", i)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if ls, _ := s.List(ctx); len(ls) != 20 {
		t.Fatalf("%d tags survived concurrent tagging, want 20", len(ls))
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	src := filepath.Join(t.TempDir(), "model.gguf")
	data := bytes.Repeat([]byte("GGUF"), 100000)
	os.WriteFile(src, data, 0o644)
	desc, method, err := s.ImportFile(ctx, src, ImportOptions{MediaType: oci.MediaTypeModelPackWeightRaw})
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(data); desc.Digest.Encoded() != fmt.Sprintf("%x", want) || desc.Size != int64(len(data)) {
		t.Fatalf("Import = %+v", desc)
	}
	if method != ImportReflink && method != ImportCopy {
		t.Fatalf("writable file imported by %s", method)
	}
	// Editing the source afterwards must not change the blob.
	os.WriteFile(src, []byte("changed"), 0o644)
	p, _ := s.BlobPath(desc.Digest)
	if b, _ := os.ReadFile(p); !bytes.Equal(b, data) {
		t.Fatal("blob changed with its source")
	}
	// A read-only file on the same file system is hardlinked (or reflinked).
	ro := filepath.Join(s.Root(), "..", "ro.gguf")
	os.WriteFile(ro, []byte("read-only weights"), 0o444)
	_, method, err = s.ImportFile(ctx, ro, ImportOptions{})
	if err != nil || (method != ImportHardlink && method != ImportReflink) {
		t.Fatalf("read-only import: %s, %v", method, err)
	}
	if _, method, _ := s.ImportFile(ctx, ro, ImportOptions{}); method != ImportExisting {
		t.Fatalf("re-import = %s, want existing", method)
	}
	if _, err := s.Import(ctx, t.TempDir()); err == nil {
		t.Fatal("importing a folder succeeded")
	}
}

// TestOrasInterop copies a model into the store with oras.Copy and reads the
// store back with oras-go's own OCI layout reader.
func TestOrasInterop(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	w := []byte("gguf bytes")
	ld := blob(oci.MediaTypeModelPackWeightRaw, w)
	mem.Push(ctx, ld, bytes.NewReader(w))
	md, err := oras.PackManifest(ctx, mem, oras.PackManifestVersion1_1, oci.ArtifactTypeModelPack, oras.PackManifestOptions{Layers: []ocispec.Descriptor{ld}})
	if err != nil {
		t.Fatal(err)
	}
	mem.Tag(ctx, md, "v1")
	s := newStore(t)
	const name = "localhost:5000/org/team/model:v1"
	if _, err := oras.Copy(ctx, mem, "v1", s, name, oras.DefaultCopyOptions); err != nil {
		t.Fatal(err)
	}
	ro, err := orasoci.NewFromFS(ctx, os.DirFS(s.Root()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ro.Resolve(ctx, name)
	if err != nil || got.Digest != md.Digest {
		t.Fatalf("oras-go reads tag: %+v, %v", got, err)
	}
	if _, err := oras.Copy(ctx, ro, name, memory.New(), "x", oras.DefaultCopyOptions); err != nil {
		t.Fatalf("oras-go copies out of the store: %v", err)
	}
}

func TestGCCollectsAbandonedIngest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("partial download")
	d := blob("application/octet-stream", data)
	w, _ := s.OpenWriter(ctx, d)
	w.Write(data[:5])
	w.Close()
	p := filepath.Join(s.Root(), "ingest", d.Digest.Encoded())
	if st, _ := s.GC(ctx); st.Partials != 0 {
		t.Fatal("a fresh partial download was collected")
	}
	old := time.Now().Add(-IngestMaxAge - time.Hour)
	os.Chtimes(p, old, old)
	// Being written: kept.
	w, _ = s.OpenWriter(ctx, d)
	if st, _ := s.GC(ctx); st.Partials != 0 || !st.Skipped {
		t.Fatalf("GC during a write: %+v", st)
	}
	w.Close()
	os.Chtimes(p, old, old)
	if st, _ := s.GC(ctx); st.Partials != 1 {
		t.Fatalf("abandoned partial not collected: %+v", st)
	}
	if _, err := os.Stat(p); err == nil {
		t.Fatal("partial still there")
	}
}

// TestPinKeepsUploadsUntilUsed: a pinned blob no model uses survives GC;
// once a model uses it the pin is dropped, so deleting the model frees
// it; an expired pin keeps nothing.
func TestPinKeepsUploadsUntilUsed(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	weights := []byte("uploaded weights")
	ld := blob(oci.MediaTypeModelPackWeightRaw, weights)
	if err := s.Pin(ctx, ld.Digest); err != nil { // before the write, as the server does
		t.Fatal(err)
	}
	if err := s.Push(ctx, ld, bytes.NewReader(weights)); err != nil {
		t.Fatal(err)
	}
	other := blob("application/octet-stream", []byte("not pinned"))
	if err := s.Push(ctx, other, bytes.NewReader([]byte("not pinned"))); err != nil {
		t.Fatal(err)
	}
	if st, err := s.GC(ctx); err != nil || st.Removed != 1 {
		t.Fatalf("GC = %+v, %v; want the unpinned blob removed", st, err)
	}
	if ok, _ := s.Exists(ctx, ld); !ok {
		t.Fatal("GC removed a pinned upload")
	}

	// A model uses the upload: the pin goes, and deleting the model frees it.
	md, _ := model(t, s, weights)
	if err := s.Tag(ctx, md, "tiny"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.privatePath(pinsDir), ld.Digest.Encoded())); !os.IsNotExist(err) {
		t.Fatalf("the pin of a blob a model uses is still there (%v)", err)
	}
	if _, err := s.Delete(ctx, "tiny"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Exists(ctx, ld); ok {
		t.Fatal("the weights of a deleted model survived GC")
	}

	// An expired pin keeps nothing.
	if err := s.Pin(ctx, other.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(ctx, other, bytes.NewReader([]byte("not pinned"))); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-PinMaxAge - time.Minute)
	if err := os.Chtimes(filepath.Join(s.privatePath(pinsDir), other.Digest.Encoded()), old, old); err != nil {
		t.Fatal(err)
	}
	if st, err := s.GC(ctx); err != nil || st.Removed != 1 {
		t.Fatalf("GC = %+v, %v; want the blob of an expired pin removed", st, err)
	}
	if err := s.Pin(ctx, "sha256:../../x"); err == nil {
		t.Fatal("Pin accepted an invalid digest")
	}
}
