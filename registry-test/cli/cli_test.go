package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/internal/testolm"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/registry-test/regtest"
)

var olmBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "olm-cli-test")
	if err != nil {
		panic(err)
	}
	olmBin = filepath.Join(dir, "olm")
	// The model commands need no inference, so a pure-Go build will do (and
	// does not wait for llama.cpp).
	cmd := exec.Command("go", "build", "-o", olmBin, "github.com/olmhq/olm/cmd/olm")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build olm: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	testolm.Cleanup() // the cgo build of runs_test.go
	os.Exit(code)
}

// env is the environment of one olm "machine": its home and registry access.
type env struct {
	home string
	vars []string
}

func newEnv(t *testing.T, reg *regtest.Registry) *env {
	e := &env{home: t.TempDir()}
	e.vars = []string{"OLM_HOME=" + e.home, "HOME=" + t.TempDir()}
	if reg != nil {
		e.vars = append(e.vars, reg.Env()...)
	} else {
		e.vars = append(e.vars, "DOCKER_CONFIG="+t.TempDir())
	}
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

// olm runs the binary and returns its output and exit code.
func (e *env) olm(t *testing.T, args ...string) result {
	t.Helper()
	return e.olmStdin(t, nil, args...)
}

func (e *env) olmStdin(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(olmBin, args...)
	cmd.Env = append(os.Environ(), e.vars...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("olm %v: %v", args, err)
	}
	return r
}

// must runs olm and fails the test unless it exits 0.
func (e *env) must(t *testing.T, args ...string) string {
	t.Helper()
	r := e.olm(t, args...)
	if r.code != 0 {
		t.Fatalf("olm %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (e *env) store(t *testing.T) *blobstore.Store {
	t.Helper()
	s, err := blobstore.Open(filepath.Join(e.home, "store"), blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seed builds a ModelPack model from the tiny GGUF in e's store, tagged name.
func (e *env) seed(t *testing.T, name string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	s := e.store(t)
	w, err := s.Import(ctx, testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := []byte("{{ .Prompt }}")
	td := digest.FromBytes(tmpl)
	if err := s.Push(ctx, ocispec.Descriptor{Digest: td, Size: int64(len(tmpl))}, bytes.NewReader(tmpl)); err != nil {
		t.Fatal(err)
	}
	m := oci.Model{
		Config:   oci.Config{Architecture: "llama", Format: "gguf", ParamSize: "0.5M", Quantization: "F16"},
		Weights:  []oci.Layer{{Digest: w.Digest, Size: w.Size, Filename: testmodel.TinyName}},
		Template: &oci.Layer{Digest: td, Size: int64(len(tmpl)), Data: tmpl},
	}
	man, cfg, err := oci.BuildManifest(m, oci.FormatModelPack, oci.BuildOptions{Created: oci.ReproducibleTime})
	if err != nil {
		t.Fatal(err)
	}
	cd := ocispec.Descriptor{MediaType: oci.MediaTypeModelPackConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	if err := s.Push(ctx, cd, bytes.NewReader(cfg)); err != nil && !errors.Is(err, blobstore.ErrAlreadyExists) {
		t.Fatal(err)
	}
	md := ocispec.Descriptor{MediaType: oci.MediaTypeOCIManifest, Digest: digest.FromBytes(man), Size: int64(len(man))}
	if err := s.Push(ctx, md, bytes.NewReader(man)); err != nil && !errors.Is(err, blobstore.ErrAlreadyExists) {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, md, name); err != nil {
		t.Fatal(err)
	}
	return md
}

// blobsOf lists the blob digests in e's store.
func (e *env) blobsOf(t *testing.T) []string {
	ents, _ := os.ReadDir(filepath.Join(e.home, "store", "blobs", "sha256"))
	var out []string
	for _, x := range ents {
		out = append(out, x.Name())
	}
	return out
}

// checkStoreSound asserts that every tagged model has all its blobs, verified.
func (e *env) checkStoreSound(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	s := e.store(t)
	ls, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ls {
		_, b, err := s.Manifest(ctx, m.Name)
		if err != nil {
			t.Fatalf("tagged %s: %v", m.Name, err)
		}
		var man ocispec.Manifest
		json.Unmarshal(b, &man)
		for _, d := range append([]ocispec.Descriptor{man.Config}, man.Layers...) {
			p, err := s.BlobPath(d.Digest)
			if err != nil {
				t.Fatalf("tagged %s misses %s: %v", m.Name, d.Digest, err)
			}
			data, _ := os.ReadFile(p)
			if digest.FromBytes(data) != d.Digest || int64(len(data)) != d.Size {
				t.Fatalf("tagged %s has a wrong blob %s", m.Name, d.Digest)
			}
		}
	}
}

func fileSHA(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// localTool runs a CLI on local files only.
func localTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, name), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRoundTrip pushes, removes and pulls back a model, on a plain registry,
// one with TLS and htpasswd basic auth, and one with bearer tokens; oras and
// crane read what olm pushed.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts regtest.Options
	}{
		{"plain", regtest.Options{}},
		{"tls-basic", regtest.Options{TLS: true, Auth: true}},
		{"tls-token", regtest.Options{TLS: true, Token: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := regtest.Start(t, tc.opts)
			e := newEnv(t, reg)
			name := reg.Ref("olm/tiny", "v1")
			md := e.seed(t, name)
			before := e.blobsOf(t)

			out := e.must(t, "push", "--json", name)
			var pushed struct{ Digest string }
			json.Unmarshal([]byte(out), &pushed)
			if pushed.Digest != md.Digest.String() {
				t.Fatalf("pushed %s, want %s", pushed.Digest, md.Digest)
			}
			e.must(t, "rm", name)
			if left := e.blobsOf(t); len(left) != 0 {
				t.Fatalf("rm left blobs: %v", left)
			}
			if r := e.olm(t, "inspect", name); r.code != 2 {
				t.Fatalf("inspect of a removed model: exit %d, want 2", r.code)
			}
			e.must(t, "pull", name)
			if after := e.blobsOf(t); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Fatalf("pulled blobs %v, pushed %v", after, before)
			}
			d, err := e.store(t).Resolve(context.Background(), name)
			if err != nil || d.Digest != md.Digest {
				t.Fatalf("pulled manifest %v (%v), want %s", d.Digest, err, md.Digest)
			}
			e.checkStoreSound(t)

			// crane reads the manifest byte for byte.
			got := reg.Tool(t, t.TempDir(), "crane", "manifest", name)
			if digest.FromString(got) != md.Digest {
				t.Fatalf("crane manifest differs:\n%s", got)
			}
			// oras pull writes the GGUF under its file name.
			dir := t.TempDir()
			reg.Tool(t, dir, "oras", "pull", name)
			if fileSHA(t, filepath.Join(dir, testmodel.TinyName)) != fileSHA(t, testmodel.Tiny(t)) {
				t.Fatal("oras pulled different weights")
			}
			// oras reads olm's store as an OCI image layout.
			store := filepath.Join(e.home, "store")
			if tags := localTool(t, dir, "oras", "repo", "tags", "--oci-layout", store); strings.TrimSpace(tags) != name {
				t.Fatalf("oras repo tags of the store: %q, want %q", tags, name)
			}
			dir = t.TempDir()
			localTool(t, dir, "oras", "pull", "--oci-layout", store+"@"+md.Digest.String())
			if fileSHA(t, filepath.Join(dir, testmodel.TinyName)) != fileSHA(t, testmodel.Tiny(t)) {
				t.Fatal("oras pulled different weights from the store")
			}
			// olm inspect and ls see the model.
			var insp struct{ Format, Digest string }
			json.Unmarshal([]byte(e.must(t, "inspect", name)), &insp)
			if insp.Format != "modelpack" || insp.Digest != md.Digest.String() {
				t.Fatalf("inspect = %+v", insp)
			}
			if ls := e.must(t, "ls"); !strings.Contains(ls, md.Digest.Encoded()[:12]) || !strings.HasPrefix(ls, "NAME") {
				t.Fatalf("ls:\n%s", ls)
			}
		})
	}
}

// TestLoginLogout writes credentials with olm login and uses them.
func TestLoginLogout(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{TLS: true, Auth: true})
	e := newEnv(t, reg)
	cfgDir := t.TempDir()
	for i, v := range e.vars {
		if strings.HasPrefix(v, "DOCKER_CONFIG=") {
			e.vars[i] = "DOCKER_CONFIG=" + cfgDir
		}
	}
	name := reg.Ref("olm/login", "v1")
	e.seed(t, name)
	if r := e.olm(t, "push", name); r.code != 4 {
		t.Fatalf("push without login: exit %d, want 4\n%s", r.code, r.stderr)
	}
	if r := e.olmStdin(t, []byte("wrong\n"), "login", "-u", reg.Username, "--password-stdin", reg.Host); r.code != 4 {
		t.Fatalf("login with a wrong password: exit %d, want 4\n%s", r.code, r.stderr)
	}
	if r := e.olmStdin(t, []byte(reg.Password+"\n"), "login", "-u", reg.Username, "--password-stdin", reg.Host); r.code != 0 {
		t.Fatalf("login: exit %d\n%s", r.code, r.stderr)
	}
	cfg, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if !strings.Contains(string(cfg), reg.Host) || !strings.Contains(string(cfg), `"auth"`) {
		t.Fatalf("config.json after login: %s", cfg)
	}
	e.must(t, "push", name)
	e.must(t, "logout", reg.Host)
	if cfg, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); strings.Contains(string(cfg), reg.Host) {
		t.Fatalf("config.json after logout: %s", cfg)
	}
}

// TestPullForeignFormats pulls models written by others: oras push with
// ModelPack media types, and Ollama and Docker Model Runner manifests made
// with their real media types.
func TestPullForeignFormats(t *testing.T) {
	ctx := context.Background()
	reg := regtest.Start(t, regtest.Options{})
	e := newEnv(t, reg)
	gguf := testmodel.Tiny(t)
	ggufBytes, _ := os.ReadFile(gguf)

	// oras push with ModelPack media types.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "model.gguf"), ggufBytes, 0o644)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"descriptor":{"name":"tiny"},"config":{"architecture":"llama","format":"gguf","paramSize":"0.5M"},"modelfs":{"type":"layers","diffIds":["sha256:`+fileSHA(t, gguf)+`"]}}`), 0o644)
	orasRef := reg.Ref("oras/tiny", "v1")
	reg.Tool(t, dir, "oras", "push", orasRef, "--artifact-type", oci.ArtifactTypeModelPack,
		"--config", "config.json:"+oci.MediaTypeModelPackConfig, "model.gguf:"+oci.MediaTypeModelPackWeightRaw)

	push := func(repo string, mt string, data []byte) ocispec.Descriptor {
		d, err := reg.PushBlob(ctx, repo, data)
		if err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))}
	}
	// Ollama: Docker v2 schema 2 manifest, Docker image config.
	ocfg := []byte(`{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"0.5M","file_type":"F16","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	oman, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeDockerManifest,
		"config": push("ollama/tiny", oci.MediaTypeDockerConfig, ocfg),
		"layers": []ocispec.Descriptor{push("ollama/tiny", oci.MediaTypeOllamaModel, ggufBytes), push("ollama/tiny", oci.MediaTypeOllamaTemplate, []byte("{{ .Prompt }}"))},
	})
	if _, err := reg.PushManifest(ctx, "ollama/tiny", "v1", oci.MediaTypeDockerManifest, oman); err != nil {
		t.Fatal(err)
	}
	// Docker Model Runner v0.2.
	dcfg := []byte(`{"config":{"format":"gguf","quantization":"F16","parameters":"0.5M","architecture":"llama","size":"1.75MB"},"descriptor":{"created":"2025-01-01T00:00:00Z"},"rootfs":{"type":"rootfs","diff_ids":["sha256:` + fileSHA(t, gguf) + `"]}}`)
	dman, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest,
		"config": push("docker/tiny", oci.MediaTypeDockerModelConfigV02, dcfg),
		"layers": []ocispec.Descriptor{push("docker/tiny", "application/vnd.docker.ai.gguf.v3", ggufBytes)},
	})
	if _, err := reg.PushManifest(ctx, "docker/tiny", "v1", oci.MediaTypeOCIManifest, dman); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ ref, format string }{
		{orasRef, "modelpack"},
		{reg.Ref("ollama/tiny", "v1"), "ollama"},
		{reg.Ref("docker/tiny", "v1"), "docker"},
	} {
		e.must(t, "pull", "-q", tc.ref)
		var insp struct {
			Format string
			Error  string
			Model  *struct{ Weights []struct{ Digest string } }
		}
		json.Unmarshal([]byte(e.must(t, "inspect", tc.ref)), &insp)
		if insp.Format != tc.format || insp.Model == nil || len(insp.Model.Weights) != 1 || insp.Model.Weights[0].Digest != "sha256:"+fileSHA(t, gguf) {
			t.Errorf("%s: inspect = %+v", tc.ref, insp)
		}
		// The weights are where the runner maps them from.
		p, err := e.store(t).BlobPath(digest.Digest("sha256:" + fileSHA(t, gguf)))
		if err != nil || fileSHA(t, p) != fileSHA(t, gguf) {
			t.Fatalf("%s: weights not in the store: %v", tc.ref, err)
		}
	}
	e.checkStoreSound(t)
	// A remote inspect needs no pull.
	var insp struct{ Format string }
	json.Unmarshal([]byte(newEnv(t, reg).must(t, "inspect", "registry://"+reg.Ref("ollama/tiny", "v1"))), &insp)
	if insp.Format != "ollama" {
		t.Fatalf("remote inspect format %q", insp.Format)
	}
}

// TestPushFormats pushes one stored model in each writable format.
func TestPushFormats(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	e := newEnv(t, reg)
	name := reg.Ref("olm/fmt", "v1")
	e.seed(t, name)
	for _, f := range []string{"ollama", "docker", "modelpack"} {
		dst := reg.Ref("olm/fmt-"+f, "v1")
		e.must(t, "tag", name, dst)
		e.must(t, "push", "-q", "--format", f, dst)
		other := newEnv(t, reg)
		other.must(t, "pull", "-q", dst)
		var insp struct{ Format string }
		json.Unmarshal([]byte(other.must(t, "inspect", dst)), &insp)
		if insp.Format != f {
			t.Errorf("pushed --format %s, pulled %q", f, insp.Format)
		}
		other.checkStoreSound(t)
	}
}

// TestCopyRegistryToRegistry copies without a local copy.
func TestCopyRegistryToRegistry(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{TLS: true, Auth: true})
	e := newEnv(t, reg)
	src := reg.Ref("olm/a", "v1")
	md := e.seed(t, src)
	e.must(t, "push", "-q", src)
	fresh := newEnv(t, reg)
	dst := reg.Ref("olm/b", "v2")
	r := fresh.olm(t, "cp", "registry://"+src, "registry://"+dst)
	if r.code != 0 {
		t.Fatalf("cp: exit %d\n%s", r.code, r.stderr)
	}
	// Both repositories are on one registry: the blobs are mounted, not uploaded.
	if !strings.Contains(r.stderr, "mounted") {
		t.Errorf("cp within one registry mounted nothing:\n%s", r.stderr)
	}
	if len(fresh.blobsOf(t)) != 0 {
		t.Fatal("cp registry to registry stored blobs locally")
	}
	got := reg.Tool(t, t.TempDir(), "crane", "digest", dst)
	if strings.TrimSpace(got) != md.Digest.String() {
		t.Fatalf("copied digest %s, want %s", got, md.Digest)
	}
	// Local copies and pushes through cp.
	fresh.must(t, "cp", "registry://"+dst, dst)
	fresh.must(t, "cp", dst, "mine:latest")
	if ls := fresh.must(t, "ls", "--json"); !strings.Contains(ls, `"mine:latest"`) {
		t.Fatalf("ls --json: %s", ls)
	}
}

// TestSaveLoad moves a model through a tarball to another machine.
func TestSaveLoad(t *testing.T) {
	e := newEnv(t, nil)
	name := "localhost:5000/olm/saved:v1"
	md := e.seed(t, name)
	tar := filepath.Join(t.TempDir(), "m.tar")
	e.must(t, "save", "-q", "-o", tar, name)
	other := newEnv(t, nil)
	if out := other.must(t, "load", "-i", tar); !strings.Contains(out, name) {
		t.Fatalf("load: %s", out)
	}
	d, err := other.store(t).Resolve(context.Background(), name)
	if err != nil || d.Digest != md.Digest {
		t.Fatalf("loaded %v, %v", d.Digest, err)
	}
	other.checkStoreSound(t)
	// The tarball is an OCI image layout that oras reads once unpacked.
	unpacked := t.TempDir()
	if out, err := exec.Command("tar", "-xf", tar, "-C", unpacked).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	if tags := localTool(t, unpacked, "oras", "repo", "tags", "--oci-layout", unpacked); strings.TrimSpace(tags) != name {
		t.Fatalf("oras repo tags of the saved layout: %q", tags)
	}
	// A truncated tarball fails with exit 5 and tags nothing.
	b, _ := os.ReadFile(tar)
	bad := filepath.Join(t.TempDir(), "bad.tar")
	os.WriteFile(bad, b[:len(b)/2], 0o644)
	third := newEnv(t, nil)
	if r := third.olm(t, "load", "-i", bad); r.code != 5 {
		t.Fatalf("load of a truncated tar: exit %d, want 5\n%s", r.code, r.stderr)
	}
	if ls := third.must(t, "ls", "--json"); strings.TrimSpace(ls) != "[]" {
		t.Fatalf("truncated load tagged: %s", ls)
	}
}

// pushed returns a registry with the tiny model at olm/tiny:v1, a proxy in
// front of it, and the model's manifest.
func pushed(t *testing.T) (*regtest.Registry, *regtest.Proxy, ocispec.Descriptor) {
	reg := regtest.Start(t, regtest.Options{})
	e := newEnv(t, reg)
	name := reg.Ref("olm/tiny", "v1")
	md := e.seed(t, name)
	e.must(t, "push", "-q", name)
	return reg, regtest.NewProxy(t, reg), md
}

func TestFailures(t *testing.T) {
	reg, p, md := pushed(t)
	name := p.Ref("olm/tiny", "v1")
	weights := digest.Digest("sha256:" + fileSHA(t, testmodel.Tiny(t)))
	tiny, _ := os.Stat(testmodel.Tiny(t))

	t.Run("re-pull is one manifest request", func(t *testing.T) {
		e := newEnv(t, reg)
		e.must(t, "pull", "-q", name)
		n := len(p.Requests())
		e.must(t, "pull", "-q", name)
		reqs := p.Requests()[n:]
		if len(reqs) != 1 || reqs[0].Method != "HEAD" || !strings.Contains(reqs[0].Path, "/manifests/") {
			t.Fatalf("re-pull requests: %+v", reqs)
		}
	})

	t.Run("dropped connection resumes", func(t *testing.T) {
		e := newEnv(t, reg)
		p.DropBlobsAfter(500_000, -1) // each GET of the weights ends after 500000 more bytes
		n := len(p.Requests())
		e.must(t, "pull", "-q", name)
		p.DropBlobsAfter(0, 0)
		e.checkStoreSound(t)
		var ranged bool
		for _, r := range p.Requests()[n:] {
			if strings.HasSuffix(r.Path, weights.String()) && strings.HasPrefix(r.Range, "bytes=500000-") {
				ranged = true
			}
		}
		if !ranged {
			t.Fatalf("no resume from byte 500000: %+v", p.Requests()[n:])
		}
	})

	t.Run("corrupt blob", func(t *testing.T) {
		e := newEnv(t, reg)
		p.CorruptBlobs(-1)
		defer p.CorruptBlobs(0)
		r := e.olm(t, "pull", "-q", name)
		if r.code != 5 || !strings.Contains(r.stderr, "verification") {
			t.Fatalf("pull of corrupt blobs: exit %d\n%s", r.code, r.stderr)
		}
		if ls := e.must(t, "ls", "--json"); strings.TrimSpace(ls) != "[]" {
			t.Fatalf("corrupt model tagged: %s", ls)
		}
		e.checkStoreSound(t)
	})

	manifestWith := func(layer string, size int64) []byte {
		b, _, err := reg.GetManifest(context.Background(), "olm/tiny", "v1")
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), `"digest":"`+weights.String()+`","size":`+fmt.Sprint(tiny.Size()), `"digest":"`+layer+`","size":`+fmt.Sprint(size), 1)
		if s == string(b) {
			t.Fatalf("manifest layout unexpected: %s", b)
		}
		return []byte(s)
	}
	serve := func(repo string, man []byte) string {
		p.ServeManifest(repo, "v1", oci.MediaTypeOCIManifest, man)
		p.ServeManifest(repo, digest.FromBytes(man).String(), oci.MediaTypeOCIManifest, man)
		return p.Ref(repo, "v1")
	}

	t.Run("traversal digest", func(t *testing.T) {
		e := newEnv(t, reg)
		r := e.olm(t, "pull", "-q", serve("olm/tiny", manifestWith("sha256:../../x", tiny.Size())))
		defer p.Handle("/v2/olm/tiny/manifests/v1", nil)
		if r.code != 5 || !strings.Contains(r.stderr, "invalid digest") {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if ls := e.must(t, "ls", "--json"); strings.TrimSpace(ls) != "[]" {
			t.Fatalf("tagged: %s", ls)
		}
		filepath.Walk(e.home, func(path string, info os.FileInfo, err error) error {
			if info != nil && info.Name() == "x" {
				t.Errorf("a file named x appeared at %s", path)
			}
			return nil
		})
	})

	t.Run("blob larger than announced", func(t *testing.T) {
		e := newEnv(t, reg)
		r := e.olm(t, "pull", "-q", serve("olm/tiny", manifestWith(weights.String(), tiny.Size()-1000)))
		defer p.Handle("/v2/olm/tiny/manifests/v1", nil)
		if r.code != 5 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		e.checkStoreSound(t)
		if ls := e.must(t, "ls", "--json"); strings.TrimSpace(ls) != "[]" {
			t.Fatalf("tagged: %s", ls)
		}
	})

	t.Run("killed pull resumes", func(t *testing.T) {
		e := newEnv(t, reg)
		p.DropBlobsAfter(400_000, -1) // every weights GET breaks; olm keeps retrying with backoff
		cmd := exec.Command(olmBin, "pull", name)
		cmd.Env = append(os.Environ(), e.vars...)
		var stderr bytes.Buffer
		var mu sync.Mutex
		cmd.Stderr = writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(b) })
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			s := stderr.String()
			mu.Unlock()
			if strings.Count(s, "retrying") >= 2 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("no retries seen:\n%s", s)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		p.DropBlobsAfter(0, 0)
		partial, err := os.Stat(filepath.Join(e.home, "store", "ingest", weights.Encoded()))
		if err != nil || partial.Size() < 800_000 {
			t.Fatalf("partial download after kill: %v, %v", partial, err)
		}
		n := len(p.Requests())
		e.must(t, "pull", "-q", name)
		e.checkStoreSound(t)
		var from string
		for _, r := range p.Requests()[n:] {
			if strings.HasSuffix(r.Path, weights.String()) {
				from = r.Range
			}
		}
		if from != fmt.Sprintf("bytes=%d-%d", partial.Size(), tiny.Size()-1) {
			t.Fatalf("re-run fetched weights with Range %q, want from %d", from, partial.Size())
		}
	})

	t.Run("concurrent pulls download once", func(t *testing.T) {
		e := newEnv(t, reg)
		n := len(p.Requests())
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := e.olm(t, "pull", "-q", name); r.code != 0 {
					t.Errorf("pull: exit %d\n%s", r.code, r.stderr)
				}
			}()
		}
		wg.Wait()
		gets := 0
		for _, r := range p.Requests()[n:] {
			if r.Method == "GET" && strings.HasSuffix(r.Path, weights.String()) {
				gets++
			}
		}
		if gets != 1 {
			t.Fatalf("%d GETs of the weights for 3 concurrent pulls, want 1", gets)
		}
		e.checkStoreSound(t)
	})

	t.Run("missing model and bad name", func(t *testing.T) {
		e := newEnv(t, reg)
		if r := e.olm(t, "pull", p.Ref("olm/nope", "v1")); r.code != 3 {
			t.Fatalf("pull of a missing model: exit %d\n%s", r.code, r.stderr)
		}
		if r := e.olm(t, "pull", "Bad/NAME"); r.code != 2 {
			t.Fatalf("pull of a bad name: exit %d\n%s", r.code, r.stderr)
		}
		if r := e.olm(t, "pull", "127.0.0.1:1/x/y:z"); r.code != 6 {
			t.Fatalf("pull from nowhere: exit %d\n%s", r.code, r.stderr)
		}
	})
	_ = md
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestInsecureTLS: a registry whose CA olm does not trust is refused, and
// reached with --insecure.
func TestInsecureTLS(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{TLS: true})
	e := newEnv(t, reg)
	name := reg.Ref("olm/selfsigned", "v1")
	e.seed(t, name)
	e.must(t, "push", "-q", name)
	other := newEnv(t, reg)
	var vars []string
	for _, v := range other.vars {
		if !strings.HasPrefix(v, "SSL_CERT_FILE=") {
			vars = append(vars, v)
		}
	}
	other.vars = append(vars, "SSL_CERT_FILE="+filepath.Join(t.TempDir(), "none.pem"))
	if r := other.olm(t, "pull", "-q", name); r.code != 6 || !strings.Contains(r.stderr, "x509") {
		t.Fatalf("pull from an untrusted registry: exit %d, want 6\n%s", r.code, r.stderr)
	}
	other.must(t, "pull", "-q", "--insecure", name)
	other.checkStoreSound(t)
}
