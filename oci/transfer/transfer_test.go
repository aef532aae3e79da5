package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/memory"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/oci"
)

// faults wraps a registry handler to count and break blob GETs.
type faults struct {
	h         http.Handler
	blobGETs  atomic.Int64
	ranged    atomic.Int64
	dropAfter atomic.Int64 // >0: cut the next big blob response after this many bytes
}

func (f *faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
		f.blobGETs.Add(1)
		if r.Header.Get("Range") != "" {
			f.ranged.Add(1)
		}
		if n := f.dropAfter.Swap(0); n > 0 {
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, r)
			if rec.Body.Len() > int(n) {
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes()[:n])
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
					}
				}
				return
			}
			f.dropAfter.Store(n)
		}
	}
	f.h.ServeHTTP(w, r)
}

func newRegistry(t testing.TB) (*faults, string) {
	t.Helper()
	f := &faults{h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func repoFor(t testing.TB, host, name string) (*remoteRepo, oci.Reference) {
	t.Helper()
	ref, err := oci.ParseReference(host + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := NewRepository(context.Background(), ref, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return repo, ref
}

// pushModel uploads a ModelPack-like model with weights of n random bytes.
func pushModel(t testing.TB, host, name string, n int) (ocispec.Descriptor, []byte) {
	t.Helper()
	ctx := context.Background()
	mem := memory.New()
	w := make([]byte, n)
	rand.Read(w)
	ld := ocispec.Descriptor{MediaType: oci.MediaTypeModelPackWeightRaw, Digest: digest.FromBytes(w), Size: int64(n),
		Annotations: map[string]string{ocispec.AnnotationTitle: "model.gguf"}}
	mem.Push(ctx, ld, bytes.NewReader(w))
	md, err := oras.PackManifest(ctx, mem, oras.PackManifestVersion1_1, oci.ArtifactTypeModelPack, oras.PackManifestOptions{Layers: []ocispec.Descriptor{ld}})
	if err != nil {
		t.Fatal(err)
	}
	mem.Tag(ctx, md, "v1")
	repo, ref := repoFor(t, host, name)
	if _, err := Copy(ctx, mem, "v1", repo, ref.Tag, Options{}); err != nil {
		t.Fatalf("push: %v", err)
	}
	return md, w
}

func newStore(t *testing.T) *blobstore.Store {
	s, err := blobstore.Open(filepath.Join(t.TempDir(), "store"), blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkPulled(t *testing.T, s *blobstore.Store, name string, md ocispec.Descriptor, w []byte) {
	t.Helper()
	d, err := s.Resolve(context.Background(), name)
	if err != nil || d.Digest != md.Digest {
		t.Fatalf("store has %s = %v, %v; want %s", name, d.Digest, err, md.Digest)
	}
	p, err := s.BlobPath(digest.FromBytes(w))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, w) {
		t.Fatal("weights differ")
	}
}

func TestPullSequentialAndRePull(t *testing.T) {
	f, host := newRegistry(t)
	md, w := pushModel(t, host, "m/tiny:v1", 300_000)
	s := newStore(t)
	repo, ref := repoFor(t, host, "m/tiny:v1")
	var events []Event
	if _, err := Copy(context.Background(), repo, "v1", s, ref.String(), Options{Progress: func(e Event) { events = append(events, e) }}); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, s, ref.String(), md, w)
	var done bool
	for _, e := range events {
		if e.Digest == digest.FromBytes(w) && e.Status == StatusDone && e.Completed == int64(len(w)) && e.Title == "model.gguf" {
			done = true
		}
	}
	if !done {
		t.Errorf("no done event for the weights: %+v", events)
	}
	before := f.blobGETs.Load()
	if _, err := Copy(context.Background(), repo, "v1", s, ref.String(), Options{}); err != nil {
		t.Fatal(err)
	}
	if n := f.blobGETs.Load() - before; n != 0 {
		t.Fatalf("re-pull fetched %d blobs, want 0", n)
	}
}

func TestPullParallelRangesAndResume(t *testing.T) {
	f, host := newRegistry(t)
	md, w := pushModel(t, host, "m/big:v1", 4<<20)
	s := newStore(t)
	repo, ref := repoFor(t, host, "m/big:v1")
	opts := Options{Parts: 4, MinParallelSize: 1 << 20, PartSize: 256 << 10, Backoff: time.Millisecond}
	f.dropAfter.Store(100_000) // one range breaks mid-way and is resumed
	var retries atomic.Int64
	opts.Progress = func(e Event) {
		if e.Status == StatusRetry {
			retries.Add(1)
		}
	}
	if _, err := Copy(context.Background(), repo, "v1", s, ref.String(), opts); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, s, ref.String(), md, w)
	if f.ranged.Load() < 16 || retries.Load() < 1 {
		t.Fatalf("ranged GETs %d, retries %d; want ≥16 and ≥1", f.ranged.Load(), retries.Load())
	}
}

func TestPullResumesPartialIngest(t *testing.T) {
	f, host := newRegistry(t)
	md, w := pushModel(t, host, "m/r:v1", 200_000)
	s := newStore(t)
	// A previous process got 150000 bytes.
	wr, err := s.OpenWriter(context.Background(), ocispec.Descriptor{Digest: digest.FromBytes(w), Size: int64(len(w))})
	if err != nil {
		t.Fatal(err)
	}
	wr.Write(w[:150_000])
	wr.Close()
	repo, ref := repoFor(t, host, "m/r:v1")
	var resumed int64
	_, err = Copy(context.Background(), repo, "v1", s, ref.String(), Options{Progress: func(e Event) {
		if e.Status == StatusResumed {
			resumed = e.Completed
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, s, ref.String(), md, w)
	if resumed != 150_000 || f.ranged.Load() != 1 {
		t.Fatalf("resumed at %d with %d ranged GETs", resumed, f.ranged.Load())
	}
}

func TestConcurrentPullsDownloadOnce(t *testing.T) {
	f, host := newRegistry(t)
	md, w := pushModel(t, host, "m/c:v1", 2<<20)
	root := filepath.Join(t.TempDir(), "store")
	var wg sync.WaitGroup
	before := f.blobGETs.Load()
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := blobstore.Open(root, blobstore.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			repo, ref := repoFor(t, host, "m/c:v1")
			if _, err := Copy(context.Background(), repo, "v1", s, ref.String(), Options{Parts: 1}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, _ := blobstore.Open(root, blobstore.Options{})
	checkPulled(t, s, host+"/m/c:v1", md, w)
	// Config and weights, once each.
	if n := f.blobGETs.Load() - before; n != 2 {
		t.Fatalf("%d blob GETs for 4 concurrent pulls, want 2", n)
	}
}

// TestBadManifests serves hand-made manifests with hostile content.
func TestBadManifests(t *testing.T) {
	goodW := []byte("weights")
	cases := []struct {
		name     string
		manifest string
		blobs    map[string][]byte
		want     error
	}{
		{"traversal digest", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:../../x","size":2},"layers":[]}`, nil, oci.ErrInvalidDigest},
		{"blob does not match digest", "", map[string][]byte{"wrong": []byte("WEIGHTS")}, ErrVerify},
		{"blob larger than announced", "", map[string][]byte{"long": append(append([]byte{}, goodW...), "extra"...)}, ErrVerify},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			wd := digest.FromBytes(goodW)
			body := map[string][]byte{}
			for _, b := range tc.blobs {
				body[string(wd)] = b
			}
			mux := http.NewServeMux()
			man := tc.manifest
			if man == "" {
				man = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"` + string(wd) + `","size":7}]}`
			}
			md := digest.FromString(man)
			mux.HandleFunc("/v2/m/bad/manifests/", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
				w.Header().Set("Docker-Content-Digest", string(md))
				w.Header().Set("Content-Length", itoa(len(man)))
				if r.Method == http.MethodGet {
					w.Write([]byte(man))
				}
			})
			mux.HandleFunc("/v2/m/bad/blobs/", func(w http.ResponseWriter, r *http.Request) {
				d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
				if d == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" {
					w.Write([]byte("{}"))
					return
				}
				if b, ok := body[d]; ok {
					w.Write(b)
					return
				}
				http.NotFound(w, r)
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			repo, ref := repoFor(t, host, "m/bad:v1")
			s := newStore(t)
			_, err := Copy(ctx, repo, "v1", s, ref.String(), Options{Retries: -1})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Copy = %v, want %v", err, tc.want)
			}
			if ls, _ := s.List(ctx); len(ls) != 0 {
				t.Fatalf("bad model was tagged: %+v", ls)
			}
			if ok, _ := s.Exists(ctx, ocispec.Descriptor{Digest: wd}); ok {
				t.Fatal("bad weights stored")
			}
		})
	}
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// TestRedirectWithoutCredentials serves blobs from a second host (a CDN) and
// checks that the registry's credentials are not sent there.
func TestRedirectWithoutCredentials(t *testing.T) {
	ctx := context.Background()
	w := make([]byte, 1<<20)
	rand.Read(w)
	var cdnAuth atomic.Value
	cdnAuth.Store("")
	cdn := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			cdnAuth.Store(a)
		}
		http.ServeContent(rw, r, "blob", time.Time{}, bytes.NewReader(w))
	}))
	defer cdn.Close()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	wd := digest.FromBytes(w)
	reg := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "secret" {
			rw.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+string(wd)) {
			http.Redirect(rw, r, cdn.URL+"/cdn/"+string(wd), http.StatusTemporaryRedirect)
			return
		}
		inner.ServeHTTP(rw, r)
	}))
	defer reg.Close()
	// Use "localhost" for the registry so the CDN (127.0.0.1) is another host.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(reg.URL, "http://"))
	host := "localhost:" + port
	creds := newMemCreds(host, "user", "secret")
	ref, _ := oci.ParseReference(host + "/m/cdn:v1")
	repo, err := NewRepository(ctx, ref, RemoteOptions{Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.New()
	ld := ocispec.Descriptor{MediaType: oci.MediaTypeModelPackWeightRaw, Digest: wd, Size: int64(len(w))}
	mem.Push(ctx, ld, bytes.NewReader(w))
	md, _ := oras.PackManifest(ctx, mem, oras.PackManifestVersion1_1, oci.ArtifactTypeModelPack, oras.PackManifestOptions{Layers: []ocispec.Descriptor{ld}})
	mem.Tag(ctx, md, "v1")
	if _, err := Copy(ctx, mem, "v1", repo, "v1", Options{}); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	if _, err := Copy(ctx, repo, "v1", s, ref.String(), Options{Parts: 2, MinParallelSize: 1 << 20, PartSize: 256 << 10}); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, s, ref.String(), md, w)
	if a := cdnAuth.Load().(string); a != "" {
		t.Fatalf("credentials leaked to the CDN: %q", a)
	}
}

func TestSaveLoad(t *testing.T) {
	ctx := context.Background()
	_, host := newRegistry(t)
	md, w := pushModel(t, host, "m/s:v1", 100_000)
	s := newStore(t)
	repo, ref := repoFor(t, host, "m/s:v1")
	if _, err := Copy(ctx, repo, "v1", s, ref.String(), Options{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Save(ctx, s, []string{ref.String()}, &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t)
	tags, err := Load(ctx, bytes.NewReader(buf.Bytes()), s2, LoadOptions{})
	if err != nil || len(tags) != 1 || tags[0] != ref.String() {
		t.Fatalf("Load = %v, %v", tags, err)
	}
	checkPulled(t, s2, ref.String(), md, w)
	// A corrupted archive is refused and tags nothing.
	bad := bytes.Replace(buf.Bytes(), w[1000:1100], make([]byte, 100), 1)
	s3 := newStore(t)
	if _, err := Load(ctx, bytes.NewReader(bad), s3, LoadOptions{}); !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Fatalf("Load(corrupt) = %v", err)
	}
	if ls, _ := s3.List(ctx); len(ls) != 0 {
		t.Fatal("corrupt archive tagged a model")
	}
}

func TestRegistryToRegistry(t *testing.T) {
	ctx := context.Background()
	_, host := newRegistry(t)
	md, _ := pushModel(t, host, "a/m:v1", 50_000)
	src, _ := repoFor(t, host, "a/m:v1")
	dst, _ := repoFor(t, host, "b/m:v2")
	var mounted int
	if _, err := Copy(ctx, src, "v1", dst, "v2", Options{Progress: func(e Event) {
		if e.Status == StatusMounted {
			mounted++
		}
	}}); err != nil {
		t.Fatal(err)
	}
	d, err := dst.Resolve(ctx, "v2")
	if err != nil || d.Digest != md.Digest {
		t.Fatalf("copied manifest %v, %v", d.Digest, err)
	}
	_ = mounted // go-containerregistry's test registry does not mount; registry-test checks mounts on the real one
}

// TestParallelResumesPartialIngest resumes a parallel download from the
// hashed prefix an interrupted pull left.
func TestParallelResumesPartialIngest(t *testing.T) {
	f, host := newRegistry(t)
	md, w := pushModel(t, host, "m/pr:v1", 3<<20)
	s := newStore(t)
	wr, err := s.OpenWriter(context.Background(), ocispec.Descriptor{Digest: digest.FromBytes(w), Size: int64(len(w))})
	if err != nil {
		t.Fatal(err)
	}
	wr.Write(w[:1_000_000])
	wr.Close()
	repo, ref := repoFor(t, host, "m/pr:v1")
	var resumed int64
	before := f.ranged.Load()
	_, err = Copy(context.Background(), repo, "v1", s, ref.String(), Options{Parts: 3, MinParallelSize: 1 << 20, PartSize: 512 << 10, Progress: func(e Event) {
		if e.Status == StatusResumed {
			resumed = e.Completed
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, s, ref.String(), md, w)
	// (3 MiB - 1000000) / 512 KiB = 5 ranges.
	if resumed != 1_000_000 || f.ranged.Load()-before != 5 {
		t.Fatalf("resumed at %d with %d ranged GETs, want 1000000 and 5", resumed, f.ranged.Load()-before)
	}
}

// TestUnreachableFailsAtOnce: a registry nobody listens at, or whose name
// does not resolve, fails on the first attempt instead of waiting out the
// retries; a connection that breaks after it was made is still retried.
func TestUnreachableFailsAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused from now on (a reused port would only make this test pass slower)
	repo, ref := repoFor(t, addr, "m/tiny:v1")
	var retries int
	_, err = Copy(context.Background(), repo, "v1", newStore(t), ref.String(),
		Options{Backoff: time.Millisecond, Progress: func(e Event) {
			if e.Status == StatusRetry {
				retries++
			}
		}})
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("pull from %s: %v, want connection refused", addr, err)
	}
	if retries != 0 {
		t.Fatalf("%d retries of a refused connection", retries)
	}

	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "regsitry.example", IsNotFound: true}}, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "registry.example", IsTemporary: true}}, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, true},
		{io.ErrUnexpectedEOF, true},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
