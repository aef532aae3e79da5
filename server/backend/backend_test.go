package backend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/oci/transfer"
	"github.com/olmhq/olm/server"
)

type parts struct {
	store  *blobstore.Store
	models *Models
	build  *Builder
}

func newParts(t *testing.T) *parts {
	t.Helper()
	dir := t.TempDir()
	s, err := blobstore.Open(filepath.Join(dir, "store"), blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &parts{
		store:  s,
		models: &Models{Store: s, TempDir: dir},
		build:  &Builder{Builder: &build.Builder{Store: s, TempDir: filepath.Join(dir, "tmp")}},
	}
}

func (p *parts) create(t *testing.T, req *api.CreateRequest) []string {
	t.Helper()
	var statuses []string
	if err := p.build.Create(context.Background(), req, func(r api.ProgressResponse) error {
		statuses = append(statuses, r.Status)
		return nil
	}); err != nil {
		t.Fatalf("create %s: %v", req.Model, err)
	}
	return statuses
}

func TestModelsOverTheStore(t *testing.T) {
	ctx := context.Background()
	p := newParts(t)
	gguf := testmodel.Tiny(t)
	st := p.create(t, &api.CreateRequest{Model: "tiny", Modelfile: "FROM " + gguf})
	if len(st) == 0 || st[len(st)-1] == "success" {
		t.Errorf("statuses = %v (success is the server's to send)", st)
	}
	p.create(t, &api.CreateRequest{Model: "ns/mario:v1", From: "tiny", System: "You are Mario.",
		Template:   "[INST]{{ .Prompt }}[/INST]{{ .Response }}",
		Parameters: map[string]any{"temperature": 0.25, "stop": []any{"</s>", "[INST]"}, "num_ctx": 512},
		Messages:   []api.Message{{Role: "user", Content: "who?"}, {Role: "assistant", Content: "Mario"}},
		License:    api.LicenseList{"MIT"}})

	m, err := p.models.Resolve(ctx, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "tiny:latest" || !strings.HasPrefix(m.Digest, "sha256:") || m.Details.Family != "llama" || m.Details.Format != "gguf" {
		t.Errorf("model = %+v", m)
	}
	if fi, err := os.Stat(m.WeightsPath); err != nil || fi.Size() == 0 {
		t.Errorf("weights path %q: %v", m.WeightsPath, err)
	}
	if m.Template != "" || m.System != "" || !m.Options.IsZero() {
		t.Errorf("plain model has layers: %+v", m)
	}
	mario, err := p.models.Resolve(ctx, "ns/mario:v1")
	if err != nil {
		t.Fatal(err)
	}
	if mario.Name != "ns/mario:v1" || mario.System != "You are Mario." || !strings.Contains(mario.Template, ".Prompt") {
		t.Errorf("mario = %+v", mario)
	}
	if o := mario.Options; o.Temperature == nil || *o.Temperature != 0.25 || len(o.Stop) != 2 || o.NumCtx == nil || *o.NumCtx != 512 {
		t.Errorf("mario options = %v", o.Map())
	}
	if len(mario.Messages) != 2 || mario.Messages[1].Content != "Mario" || len(mario.Licenses) != 1 {
		t.Errorf("mario messages/licenses = %+v %v", mario.Messages, mario.Licenses)
	}
	if mario.WeightsPath != m.WeightsPath {
		t.Errorf("FROM tiny should share the weights blob")
	}

	list, err := p.models.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list = %d models, %v", len(list), err)
	}
	info, err := p.models.ModelInfo(ctx, m, false)
	if err != nil || info["general.architecture"] != "llama" {
		t.Errorf("model info = %v, %v", info, err)
	}

	if err := p.models.Copy(ctx, "tiny", "tiny-copy"); err != nil {
		t.Fatal(err)
	}
	if c, err := p.models.Resolve(ctx, "tiny-copy"); err != nil || c.Digest != m.Digest {
		t.Errorf("copy = %+v, %v", c, err)
	}
	if err := p.models.Delete(ctx, "tiny-copy"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		err  error
		want error
	}{
		{p.models.Delete(ctx, "tiny-copy"), server.ErrNotFound},
		{p.models.Copy(ctx, "nope", "x"), server.ErrNotFound},
		{p.models.Copy(ctx, "tiny", "Bad Name!"), server.ErrBadRequest},
		{func() error { _, err := p.models.Resolve(ctx, "nope"); return err }(), server.ErrNotFound},
		{func() error { _, err := p.models.Resolve(ctx, "UPPER CASE"); return err }(), server.ErrBadRequest},
		{p.build.Create(ctx, &api.CreateRequest{Model: "x", From: "missing-model"}, func(api.ProgressResponse) error { return nil }), server.ErrNotFound},
		{p.build.Create(ctx, &api.CreateRequest{Model: "x", From: "tiny", Parameters: map[string]any{"nonsense": 1}}, func(api.ProgressResponse) error { return nil }), server.ErrBadRequest},
		{p.build.Create(ctx, &api.CreateRequest{Model: "x", Modelfile: "FROM"}, func(api.ProgressResponse) error { return nil }), server.ErrBadRequest},
		{p.build.Create(ctx, &api.CreateRequest{Model: "x", From: "tiny", Messages: []api.Message{{Role: "tool", Content: "x"}}}, func(api.ProgressResponse) error { return nil }), server.ErrBadRequest},
	} {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("err = %v, want %v", tt.err, tt.want)
		}
	}
}

func TestBlobs(t *testing.T) {
	ctx := context.Background()
	p := newParts(t)
	data := []byte("some model bytes")
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if ok, err := p.models.HasBlob(ctx, d); ok || err != nil {
		t.Fatalf("HasBlob before = %v %v", ok, err)
	}
	if err := p.models.PutBlob(ctx, d, -1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if ok, err := p.models.HasBlob(ctx, d); !ok || err != nil {
		t.Fatalf("HasBlob after = %v %v", ok, err)
	}
	// An upload no model uses yet survives garbage collection (a delete or
	// pull of another model) until the create that uses it.
	if st, err := p.store.GC(ctx); err != nil || st.Removed != 0 {
		t.Fatalf("GC after the upload = %+v, %v", st, err)
	}
	if ok, err := p.models.HasBlob(ctx, d); !ok || err != nil {
		t.Fatalf("HasBlob after GC = %v %v", ok, err)
	}
	if err := p.models.PutBlob(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Errorf("second put = %v", err)
	}
	other := "sha256:" + strings.Repeat("1", 64)
	if err := p.models.PutBlob(ctx, other, int64(len(data)), bytes.NewReader(data)); !errors.Is(err, server.ErrBadRequest) {
		t.Errorf("mismatch = %v", err)
	}
	if err := p.models.PutBlob(ctx, other, 3, bytes.NewReader(data)); !errors.Is(err, server.ErrBadRequest) {
		t.Errorf("size mismatch = %v", err)
	}
	if ok, _ := p.models.HasBlob(ctx, other); ok {
		t.Errorf("a mismatched blob was stored")
	}
	if _, err := p.models.HasBlob(ctx, "sha256:../../etc"); !errors.Is(err, server.ErrBadRequest) {
		t.Errorf("bad digest = %v", err)
	}
}

// noEngine is an Engine for tests that never load a model.
type noEngine struct{}

func (noEngine) Acquire(context.Context, server.Target) (server.Runner, func(), error) {
	return nil, nil, errors.New("no engine in this test")
}
func (noEngine) Unload(context.Context, string) error              { return nil }
func (noEngine) Running(context.Context) ([]server.Running, error) { return nil, nil }

// TestHTTPCreateFromBlob is Ollama's "create a model from GGUF" flow over
// HTTP: upload the file as a blob, create from its digest, list, show,
// delete.
func TestHTTPCreateFromBlob(t *testing.T) {
	p := newParts(t)
	srv, err := server.New(server.Options{Engine: noEngine{}, Models: p.models, Builder: p.build, Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	cl := api.NewClient(u, api.ClientOptions{})
	ctx := context.Background()

	data, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if ok, err := cl.HasBlob(ctx, d); ok || err != nil {
		t.Fatalf("HasBlob = %v %v", ok, err)
	}
	if err := cl.CreateBlob(ctx, d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var statuses []string
	err = cl.Create(ctx, &api.CreateRequest{Model: "my-gguf-model", Files: map[string]string{"test.gguf": d}, System: "be brief"},
		func(r api.ProgressResponse) error { statuses = append(statuses, r.Status); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if statuses[len(statuses)-1] != "success" {
		t.Errorf("statuses = %v", statuses)
	}
	l, err := cl.List(ctx)
	if err != nil || len(l.Models) != 1 || l.Models[0].Name != "my-gguf-model:latest" || l.Models[0].Details.Family != "llama" {
		t.Fatalf("list = %+v %v", l, err)
	}
	sh, err := cl.Show(ctx, &api.ShowRequest{Model: "my-gguf-model"})
	if err != nil || sh.System != "be brief" || sh.ModelInfo["general.architecture"] != "llama" {
		t.Errorf("show = %+v %v", sh, err)
	}
	b, _ := json.Marshal(sh)
	if !strings.Contains(string(b), `"capabilities":["completion"`) {
		t.Errorf("show json = %s", b)
	}
	if err := cl.Delete(ctx, &api.DeleteRequest{Model: "my-gguf-model"}); err != nil {
		t.Fatal(err)
	}
	var se *api.StatusError
	if _, err := cl.Show(ctx, &api.ShowRequest{Model: "my-gguf-model"}); !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Errorf("show after delete = %v", err)
	}
}

// TestTransfers pushes a model to an in-memory registry on loopback and
// pulls it back into an empty store.
func TestTransfers(t *testing.T) {
	ctx := context.Background()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	src := newParts(t)
	src.create(t, &api.CreateRequest{Model: "tiny", Modelfile: "FROM " + testmodel.Tiny(t)})
	if err := src.models.Copy(ctx, "tiny", host+"/ns/tiny:v1"); err != nil {
		t.Fatal(err)
	}
	push := &Transfers{Store: src.store, Remote: transfer.RemoteOptions{}}
	var phases []server.TransferPhase
	var layerDone bool
	pushed := map[string]bool{}
	err := push.Push(ctx, host+"/ns/tiny:v1", false, func(ev server.TransferEvent) error {
		phases = append(phases, ev.Phase)
		if ev.Phase == server.PhaseLayer {
			pushed[ev.Digest] = true
		}
		if ev.Phase == server.PhaseLayer && ev.Completed == ev.Total && ev.Total > 0 {
			layerDone = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if phases[0] != server.PhaseManifest || phases[len(phases)-1] != server.PhaseWriteManifest || !layerDone {
		t.Errorf("push phases = %v, a finished layer: %v", phases, layerDone)
	}

	dst := newParts(t)
	pull := &Transfers{Store: dst.store}
	if err := pull.Pull(ctx, host+"/ns/tiny:v1", false, func(server.TransferEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	m, err := dst.models.Resolve(ctx, host+"/ns/tiny:v1")
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := src.models.Resolve(ctx, "tiny")
	if m.Digest != orig.Digest {
		t.Errorf("pulled digest %s, pushed %s", m.Digest, orig.Digest)
	}
	err = pull.Pull(ctx, host+"/ns/missing:v1", false, func(server.TransferEvent) error { return nil })
	if !errors.Is(err, server.ErrNotFound) {
		t.Errorf("pull of a missing model = %v", err)
	}
	if err := push.Push(ctx, host+"/ns/notlocal:v1", false, func(server.TransferEvent) error { return nil }); !errors.Is(err, server.ErrNotFound) {
		t.Errorf("push of a model not in the store = %v", err)
	}
	// The push reported the layers, not the manifest, as uploads.
	if pushed["sha256:"+strings.TrimPrefix(orig.Digest, "sha256:")] || len(pushed) == 0 {
		t.Errorf("push reported the manifest %s as a layer upload: %v", orig.Digest, pushed)
	}

	// The tag moves to a new manifest: pulling it again removes the blobs
	// only the old manifest used (Ollama's "removing any unused layers").
	src.create(t, &api.CreateRequest{Model: "tiny2", From: "tiny", System: "be brief"})
	if err := src.models.Copy(ctx, "tiny2", host+"/ns/tiny:v1"); err != nil {
		t.Fatal(err)
	}
	if err := push.Push(ctx, host+"/ns/tiny:v1", false, func(server.TransferEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	oldManifest := ocispec.Descriptor{Digest: digest.Digest("sha256:" + strings.TrimPrefix(m.Digest, "sha256:"))}
	if ok, _ := dst.store.Exists(ctx, oldManifest); !ok {
		t.Fatal("the old manifest is not in the store before the second pull")
	}
	var phases2 []server.TransferPhase
	if err := pull.Pull(ctx, host+"/ns/tiny:v1", false, func(ev server.TransferEvent) error {
		phases2 = append(phases2, ev.Phase)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if phases2[len(phases2)-1] != server.PhasePrune {
		t.Errorf("pull that moved the tag: phases %v, want PhasePrune last", phases2)
	}
	if ok, _ := dst.store.Exists(ctx, oldManifest); ok {
		t.Errorf("the old manifest %s is still in the store after the pull moved the tag", m.Digest)
	}
	// Pulling the same manifest again removes nothing.
	phases2 = nil
	if err := pull.Pull(ctx, host+"/ns/tiny:v1", false, func(ev server.TransferEvent) error {
		phases2 = append(phases2, ev.Phase)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if phases2[len(phases2)-1] != server.PhaseWriteManifest {
		t.Errorf("pull of an unchanged tag: phases %v, want PhaseWriteManifest last", phases2)
	}
}
