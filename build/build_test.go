package build_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/modelfile"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/quantize"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newBuilder(t *testing.T) (*build.Builder, *blobstore.Store) {
	t.Helper()
	s, err := blobstore.Open(filepath.Join(t.TempDir(), "store"), blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &build.Builder{Store: s, TempDir: filepath.Join(t.TempDir(), "tmp")}, s
}

// writeGGUF writes a small GGUF with the given metadata and one F16 tensor.
func writeGGUF(t *testing.T, path string, kv []gguf.KV) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti := gguf.TensorInfo{Name: "t.weight", Dims: []uint64{32, 4}, Type: gguf.TensorF16}
	w, err := gguf.NewWriter(f, gguf.Header{KV: kv, Tensors: []gguf.TensorInfo{ti}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, ti.Size())); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func projector(t *testing.T, dir string) string {
	p := filepath.Join(dir, "mmproj-tiny.gguf")
	writeGGUF(t, p, []gguf.KV{{Key: "general.architecture", Value: gguf.String("clip")}, {Key: "clip.projector_type", Value: gguf.String("mlp")}})
	return p
}

func adapter(t *testing.T, dir string) string {
	p := filepath.Join(dir, "lora.gguf")
	writeGGUF(t, p, []gguf.KV{{Key: "general.architecture", Value: gguf.String("llama")}, {Key: "general.type", Value: gguf.String("adapter")}, {Key: "adapter.type", Value: gguf.String("lora")}})
	return p
}

const fullModelfile = `# every instruction
FROM ./tiny.gguf
FROM ./mmproj-tiny.gguf
PARAMETER temperature 0.5
PARAMETER num_ctx 256
PARAMETER stop "<|end|>"
PARAMETER stop "USER:"
TEMPLATE """{{ if .System }}<|system|>{{ .System }}<|end|>{{ end }}{{ if .Tools }}{{ .Tools }}{{ end }}<|user|>{{ .Prompt }}<|end|><|assistant|>"""
SYSTEM You are a tiny llama.
ADAPTER ./lora.gguf
LICENSE MIT
LICENSE """Second license
with two lines"""
MESSAGE user Hi
MESSAGE assistant Hello!
REQUIRES 0.1.0
`

// fixture lays out a build context: the tiny model, a projector, an
// adapter and the Modelfile above.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tiny.gguf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	projector(t, dir)
	adapter(t, dir)
	os.WriteFile(filepath.Join(dir, "Modelfile"), []byte(fullModelfile), 0o644)
	return dir
}

func parse(t *testing.T, src string) *modelfile.Modelfile {
	t.Helper()
	m, err := modelfile.ParseString(src)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func manifestOf(t *testing.T, s *blobstore.Store, ref string) ocispec.Manifest {
	t.Helper()
	_, b, err := s.Manifest(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func blobText(t *testing.T, s *blobstore.Store, d ocispec.Descriptor) string {
	t.Helper()
	b, err := s.ReadBlob(context.Background(), d.Digest, d.Size)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuildEveryInstruction(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	dir := fixture(t)
	mf, err := modelfile.ParseFile(filepath.Join(dir, "Modelfile"))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	res, err := b.Build(ctx, build.Request{Modelfile: mf, Dir: dir, Tags: []string{"tiny:full"}}, func(e build.Event) { events = append(events, e.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Tags[0] != "registry.ollama.ai/library/tiny:full" {
		t.Errorf("tags = %v", res.Tags)
	}
	for _, want := range []string{"parsing modelfile", "parsing GGUF", "writing manifest", "success"} {
		if !slices.Contains(events, want) {
			t.Errorf("no %q event in %q", want, events)
		}
	}
	if events[len(events)-1] != "success" {
		t.Errorf("last event %q", events[len(events)-1])
	}

	man := manifestOf(t, s, res.Tags[0])
	if man.ArtifactType != oci.ArtifactTypeModelPack || man.Config.MediaType != oci.MediaTypeModelPackConfig {
		t.Errorf("manifest type %s / config %s", man.ArtifactType, man.Config.MediaType)
	}
	byType := map[string][]ocispec.Descriptor{}
	for _, l := range man.Layers {
		byType[l.MediaType] = append(byType[l.MediaType], l)
	}
	tiny, _ := os.ReadFile(filepath.Join(dir, "tiny.gguf"))
	if w := byType[oci.MediaTypeModelPackWeightRaw]; len(w) != 1 || w[0].Size != int64(len(tiny)) || w[0].Annotations[oci.AnnotationTitle] == "" {
		t.Errorf("weights layers %+v", w)
	}
	checks := []struct {
		mt, want string
		n        int
	}{
		{oci.MediaTypeOllamaTemplate, "{{ if .System }}<|system|>", 1},
		{oci.MediaTypeOllamaSystem, "You are a tiny llama.", 1},
		{oci.MediaTypeOllamaParams, `{"num_ctx":256,"stop":["<|end|>","USER:"],"temperature":0.5}`, 1},
		{oci.MediaTypeOllamaMessages, `[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}]`, 1},
		{oci.MediaTypeOllamaLicense, "MIT", 2},
	}
	for _, c := range checks {
		ls := byType[c.mt]
		if len(ls) != c.n {
			t.Errorf("%s: %d layers, want %d", c.mt, len(ls), c.n)
			continue
		}
		if got := blobText(t, s, ls[0]); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s = %q, want %q", c.mt, got, c.want)
		}
	}
	if got := blobText(t, s, byType[oci.MediaTypeOllamaLicense][1]); got != "Second license\nwith two lines" {
		t.Errorf("second license %q", got)
	}
	if len(byType[oci.MediaTypeOllamaProjector]) != 1 || len(byType[oci.MediaTypeOllamaAdapter]) != 1 {
		t.Errorf("projector/adapter layers: %v", man.Layers)
	}

	// Show sees everything.
	info, err := build.Show(ctx, s, res.Tags[0], build.ShowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := info.Details
	if d.Architecture != "llama" || d.Quantization != "F16" || d.ContextLength == 0 || d.EmbeddingLength == 0 || d.Parameters == 0 {
		t.Errorf("details %+v", d)
	}
	if !slices.Equal(d.Capabilities, []string{"completion", "vision", "tools"}) {
		t.Errorf("capabilities %v", d.Capabilities)
	}
	if info.System != "You are a tiny llama." || len(info.Licenses) != 2 || len(info.Messages) != 2 || info.Parameters["num_ctx"] != int64(256) {
		t.Errorf("info %+v", info)
	}
	var cfg map[string]any
	json.Unmarshal([]byte(blobText(t, s, man.Config)), &cfg)
	c, _ := cfg["config"].(map[string]any)
	if c["architecture"] != "llama" || c["format"] != "gguf" || c["quantization"] != "F16" || c["paramSize"] == "" {
		t.Errorf("config %v", cfg)
	}
	if got := build.FormatParameters(info.Parameters); !strings.Contains(got, "stop                           \"<|end|>\"\n") {
		t.Errorf("parameters:\n%s", got)
	}

	// Reproducible: the same inputs under another name give the same digest.
	res2, err := b.Build(ctx, build.Request{Modelfile: mf, Dir: dir, Tags: []string{"ghcr.io/acme/tiny:v1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("rebuild digest %s != %s", res2.Manifest.Digest, res.Manifest.Digest)
	}
	// A created time changes it.
	res3, err := b.Build(ctx, build.Request{Modelfile: mf, Dir: dir, Tags: []string{"tiny:later"}, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res3.Manifest.Digest == res.Manifest.Digest {
		t.Error("a different created time gave the same digest")
	}
}

// TestShowModelfileRebuilds checks that `olm show --modelfile` output
// rebuilds the same model.
func TestShowModelfileRebuilds(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	dir := fixture(t)
	res, err := b.Build(ctx, build.Request{Modelfile: parse(t, fullModelfile), Dir: dir, Tags: []string{"tiny"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := build.Show(ctx, s, res.Tags[0], build.ShowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text, err := info.Modelfile("tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM tiny\n", "TEMPLATE {{ if .System }}", "SYSTEM You are a tiny llama.\n", "PARAMETER num_ctx 256\n", "PARAMETER stop \"USER:\"\n", "MESSAGE assistant Hello!\n", "LICENSE \"\"\"Second license\nwith two lines\"\"\"\n", "REQUIRES 0.1.0\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("show --modelfile lacks %q:\n%s", want, text)
		}
	}
	var events []string
	res2, err := b.Build(ctx, build.Request{Modelfile: parse(t, text), Tags: []string{"tiny-again"}}, func(e build.Event) { events = append(events, e.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if res2.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("rebuilt from show --modelfile: %s, want %s", res2.Manifest.Digest, res.Manifest.Digest)
	}
	for _, e := range events {
		if strings.HasPrefix(e, "creating new layer") {
			t.Errorf("rebuild created a layer: %s", e)
		}
	}
}

func TestBuildFromModel(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	dir := fixture(t)
	base, err := b.Build(ctx, build.Request{Modelfile: parse(t, fullModelfile), Dir: dir, Tags: []string{"base"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM base\nSYSTEM You are Mario.\nPARAMETER temperature 1\nPARAMETER top_k 7\n"), Tags: []string{"mario"}, Format: oci.FormatOllama}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model.Weights[0].Digest != base.Model.Weights[0].Digest || res.Model.Template.Digest != base.Model.Template.Digest {
		t.Error("weights or template not reused")
	}
	info, err := build.Show(ctx, s, res.Tags[0], build.ShowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Model.Format != oci.FormatOllama || info.System != "You are Mario." || len(info.Licenses) != 2 || len(info.Model.Projectors) != 1 {
		t.Errorf("info %+v", info)
	}
	want := modelfile.Parameters{"num_ctx": int64(256), "stop": []string{"<|end|>", "USER:"}, "temperature": 1.0, "top_k": int64(7)}
	if got, _ := json.Marshal(info.Parameters); string(got) != mustJSON(want) {
		t.Errorf("merged parameters %s, want %s", got, mustJSON(want))
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// fakePuller "pulls" by building the model into the store under the reference.
type fakePuller struct {
	b     *build.Builder
	dir   string
	pulls []string
}

func (p *fakePuller) Pull(ctx context.Context, ref oci.Reference, progress func(build.Event)) error {
	p.pulls = append(p.pulls, ref.String())
	if !strings.Contains(ref.String(), "present") {
		return errors.New("manifest unknown")
	}
	_, err := p.b.Build(ctx, build.Request{Modelfile: &modelfile.Modelfile{Commands: []modelfile.Command{{Instruction: modelfile.From, Value: filepath.Join(p.dir, "tiny.gguf")}}}, Tags: []string{ref.String()}}, nil)
	return err
}

func TestBuildFromRegistryReference(t *testing.T) {
	ctx := context.Background()
	b, _ := newBuilder(t)
	fp := &fakePuller{b: &build.Builder{Store: b.Store}, dir: fixture(t)}
	b.Puller = fp
	var events []string
	res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM localhost:5000/team/present:1\nSYSTEM hi\n"), Tags: []string{"derived"}}, func(e build.Event) { events = append(events, e.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fp.pulls, []string{"localhost:5000/team/present:1"}) || !slices.Contains(events, "pulling localhost:5000/team/present:1") {
		t.Errorf("pulls %v events %v", fp.pulls, events)
	}
	if res.Model.System == nil {
		t.Error("no system layer")
	}
	// Present now: no second pull.
	if _, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM localhost:5000/team/present:1\n"), Tags: []string{"derived2"}}, nil); err != nil || len(fp.pulls) != 1 {
		t.Errorf("second build: %v, pulls %v", err, fp.pulls)
	}
	if _, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM localhost:5000/team/unknown:1\n"), Tags: []string{"x"}}, nil); !errors.Is(err, build.ErrNotFound) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("unknown reference: %v", err)
	}
}

func TestBuildFromFiles(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	dir := fixture(t)
	desc, _, err := s.ImportFile(ctx, filepath.Join(dir, "tiny.gguf"), blobstore.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	mf := &modelfile.Modelfile{Commands: []modelfile.Command{{Instruction: modelfile.System, Value: "s"}}}
	res, err := b.Build(ctx, build.Request{Files: map[string]digest.Digest{"test.gguf": desc.Digest}, Modelfile: mf, Tags: []string{"from-files"}}, func(e build.Event) { events = append(events, e.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Model.Weights[0].Digest != desc.Digest || !slices.Contains(events, "using existing layer "+desc.Digest.String()) {
		t.Errorf("weights %v, events %q", res.Model.Weights, events)
	}
	// FROM and files together are refused.
	_, err = b.Build(ctx, build.Request{Files: map[string]digest.Digest{"test.gguf": desc.Digest}, Modelfile: parse(t, "FROM x"), Tags: []string{"y"}}, nil)
	if !errors.Is(err, build.ErrInvalidRequest) {
		t.Errorf("FROM with files: %v", err)
	}
}

// storeState lists every blob and the index, to check that a failed build
// wrote nothing.
func storeState(t *testing.T, s *blobstore.Store) string {
	t.Helper()
	var names []string
	filepath.Walk(s.Root(), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.Contains(p, string(filepath.Separator)+".olm"+string(filepath.Separator)) {
			names = append(names, strings.TrimPrefix(p, s.Root()))
		}
		return nil
	})
	sort.Strings(names)
	idx, _ := os.ReadFile(filepath.Join(s.Root(), "index.json"))
	return strings.Join(names, "\n") + "\n" + string(idx)
}

func TestBuildBadInput(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	b.Quantizer = &quantize.Quantizer{Command: []string{"/bin/false"}, Types: []string{"Q4_K_M", "Q8_0"}}
	dir := fixture(t)
	tiny, _ := os.ReadFile(filepath.Join(dir, "tiny.gguf"))
	os.WriteFile(filepath.Join(dir, "truncated.gguf"), tiny[:len(tiny)-100], 0o644)
	os.WriteFile(filepath.Join(dir, "notes.gguf"), []byte("just some text, not a model\n"), 0o644)
	q8 := filepath.Join(dir, "q8.gguf")
	writeGGUF(t, q8, []gguf.KV{{Key: "general.architecture", Value: gguf.String("llama")}, {Key: "general.file_type", Value: gguf.Uint32(7)}})
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)

	// A first good build, so the store is not empty.
	if _, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM ./tiny.gguf"), Dir: dir, Tags: []string{"good"}}, nil); err != nil {
		t.Fatal(err)
	}
	before := storeState(t, s)
	cmd := func(in modelfile.Instruction, name, v string) modelfile.Command {
		return modelfile.Command{Instruction: in, Name: name, Value: v}
	}
	tests := []struct {
		name string
		req  build.Request
		err  error
		msg  string
	}{
		{"missing FROM", build.Request{Modelfile: &modelfile.Modelfile{Commands: []modelfile.Command{cmd(modelfile.System, "", "x")}}}, modelfile.ErrMissingFrom, "no FROM"},
		{"nil modelfile", build.Request{}, modelfile.ErrMissingFrom, "no FROM"},
		{"unknown parameter", build.Request{Modelfile: &modelfile.Modelfile{Commands: []modelfile.Command{cmd(modelfile.From, "", "./tiny.gguf"), cmd(modelfile.Parameter, "temprature", "1")}}}, modelfile.ErrUnknownParameter, "valid parameters"},
		{"wrong type", build.Request{Modelfile: &modelfile.Modelfile{Commands: []modelfile.Command{cmd(modelfile.From, "", "./tiny.gguf"), cmd(modelfile.Parameter, "num_ctx", "big")}}}, modelfile.ErrInvalidParameterValue, "num_ctx must be a integer"},
		{"missing path", build.Request{Modelfile: parse(t, "FROM ./nope.gguf")}, build.ErrNotFound, "nope.gguf does not exist"},
		{"missing adapter", build.Request{Modelfile: parse(t, "FROM ./tiny.gguf\nADAPTER ./nope.gguf")}, build.ErrNotFound, "ADAPTER ./nope.gguf"},
		{"not GGUF", build.Request{Modelfile: parse(t, "FROM ./notes.gguf")}, build.ErrInvalidWeights, "not a GGUF file"},
		{"tensor past EOF", build.Request{Modelfile: parse(t, "FROM ./truncated.gguf")}, gguf.ErrTruncated, "truncated"},
		{"empty folder", build.Request{Modelfile: parse(t, "FROM ./empty")}, build.ErrNotFound, "no *.gguf or *.safetensors"},
		{"unknown local model", build.Request{Modelfile: parse(t, "FROM nosuchmodel")}, build.ErrNotFound, "no such local model"},
		{"model as second FROM", build.Request{Modelfile: parse(t, "FROM ./tiny.gguf\nFROM good")}, build.ErrInvalidRequest, "only the first FROM"},
		{"weights twice", build.Request{Modelfile: parse(t, "FROM good\nFROM ./tiny.gguf")}, build.ErrInvalidRequest, "weights twice"},
		{"two models", build.Request{Modelfile: parse(t, "FROM ./tiny.gguf\nFROM ./q8.gguf")}, build.ErrInvalidRequest, "several weights files"},
		{"only projector", build.Request{Modelfile: parse(t, "FROM ./mmproj-tiny.gguf")}, build.ErrInvalidRequest, "only projectors"},
		{"already quantized", build.Request{Modelfile: parse(t, "FROM ./q8.gguf"), Quantize: "q4_K_M"}, quantize.ErrAlreadyQuantized, "q8.gguf is Q8_0"},
		{"unknown quantization", build.Request{Modelfile: parse(t, "FROM ./tiny.gguf"), Quantize: "q9_X"}, quantize.ErrUnknownType, "Q4_K_M, Q8_0"},
		{"bad format", build.Request{Modelfile: parse(t, "FROM ./tiny.gguf"), Format: "zip"}, build.ErrInvalidRequest, "modelpack, ollama or docker"},
		{"bad tag", build.Request{Modelfile: parse(t, "FROM ./tiny.gguf"), Tags: []string{"Bad Name!"}}, build.ErrInvalidRequest, ""},
		{"no tag", build.Request{Modelfile: parse(t, "FROM ./tiny.gguf"), Tags: []string{}}, build.ErrInvalidRequest, "no name"},
		{"bad safetensors", build.Request{Modelfile: parse(t, "FROM ./st")}, build.ErrInvalidWeights, "FROM " + filepath.Join(dir, "st")},
	}
	os.Mkdir(filepath.Join(dir, "st"), 0o755)
	os.WriteFile(filepath.Join(dir, "st", "config.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(dir, "st", "model.safetensors"), []byte("{}"), 0o644)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.Dir = dir
			if req.Tags == nil {
				req.Tags = []string{"bad"}
			}
			_, err := b.Build(ctx, req, nil)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err %q does not say %q", err, tt.msg)
			}
			if after := storeState(t, s); after != before {
				t.Errorf("the store changed:\n%s\n---\n%s", before, after)
			}
		})
	}
}

func TestBuildQuantize(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	b.Quantizer = realQuantizer(t)
	dir := fixture(t)
	var events []build.Event
	res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM ./tiny.gguf\nSYSTEM small"), Dir: dir, Tags: []string{"tiny:q8"}, Quantize: "q8_0"}, func(e build.Event) { events = append(events, e) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Details.Quantization != "Q8_0" || res.Model.Config.Quantization != "Q8_0" {
		t.Errorf("quantization %s / %s", res.Details.Quantization, res.Model.Config.Quantization)
	}
	sawProgress := false
	for _, e := range events {
		if e.Status == "quantizing F16 model to Q8_0" && e.Total > 0 {
			sawProgress = true
		}
	}
	if !sawProgress {
		t.Errorf("no quantize progress in %+v", events)
	}
	// The source F16 file did not go into the store: only the quantized weights.
	tiny, _ := os.ReadFile(filepath.Join(dir, "tiny.gguf"))
	if res.Model.Weights[0].Size >= int64(len(tiny)) {
		t.Errorf("weights are %d bytes, source %d", res.Model.Weights[0].Size, len(tiny))
	}
	// FROM an F16 model in the store, quantized.
	if _, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM ./tiny.gguf"), Dir: dir, Tags: []string{"tiny:f16"}}, nil); err != nil {
		t.Fatal(err)
	}
	res2, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM tiny:f16"), Tags: []string{"tiny:q4"}, Quantize: "Q4_K_M"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := build.Show(ctx, s, res2.Tags[0], build.ShowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Details.Quantization != "Q4_K_M" {
		t.Errorf("show: quantization %s", info.Details.Quantization)
	}
	// Quantizing it again is refused before anything is written.
	if _, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM tiny:q4"), Tags: []string{"tiny:q4again"}, Quantize: "Q4_K_S"}, nil); !errors.Is(err, quantize.ErrAlreadyQuantized) {
		t.Errorf("requantize: %v", err)
	}
	// No temporary files are left behind.
	if entries, _ := os.ReadDir(b.TempDir); len(entries) != 0 {
		t.Errorf("temp dir holds %d entries", len(entries))
	}
}

func TestRequestFromAPI(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	dir := fixture(t)
	desc, _, err := s.ImportFile(ctx, filepath.Join(dir, "tiny.gguf"), blobstore.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var body api.CreateRequest
	if err := json.Unmarshal([]byte(`{"model":"my-gguf-model","files":{"test.gguf":"`+desc.Digest.String()+`"},
		"system":"be brief","license":"MIT","parameters":{"temperature":0.2,"stop":["a","b"],"num_ctx":1024},
		"messages":[{"role":"user","content":"hi"}]}`), &body); err != nil {
		t.Fatal(err)
	}
	req, err := build.RequestFromAPI(&body)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	res, err := b.Build(ctx, req, func(e build.Event) { events = append(events, e.Status) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"parsing modelfile", "parsing GGUF", "using existing layer " + desc.Digest.String()}
	if !slices.Equal(events[:3], want) || events[len(events)-1] != "success" {
		t.Errorf("events %q", events)
	}
	info, err := build.Show(ctx, s, res.Tags[0], build.ShowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.System != "be brief" || info.Licenses[0] != "MIT" || info.Parameters["num_ctx"] != int64(1024) || len(info.Messages) != 1 {
		t.Errorf("info %+v", info)
	}
	// from an existing model, with a bad parameter, without anything.
	if _, err := build.RequestFromAPI(&api.CreateRequest{Model: "x", From: "my-gguf-model", Parameters: map[string]any{"bogus": 1}}); !errors.Is(err, modelfile.ErrUnknownParameter) {
		t.Errorf("bad parameter: %v", err)
	}
	if _, err := build.RequestFromAPI(&api.CreateRequest{Model: "x"}); !errors.Is(err, modelfile.ErrMissingFrom) {
		t.Errorf("nothing: %v", err)
	}
	if _, err := build.RequestFromAPI(&api.CreateRequest{Model: "x", Files: map[string]string{"a.gguf": "sha256:zz"}}); !errors.Is(err, build.ErrInvalidRequest) {
		t.Errorf("bad digest: %v", err)
	}
	req, err = build.RequestFromAPI(&api.CreateRequest{Model: "mario", From: "my-gguf-model", System: "You are Mario"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Build(ctx, req, nil); err != nil {
		t.Fatal(err)
	}
}

// copyConverter "converts" by copying a prepared GGUF, recording the
// checkpoint folder's files.
type copyConverter struct {
	gguf  string
	files []string
}

func (c *copyConverter) Check(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return err
	}
	return nil
}

func (c *copyConverter) Convert(ctx context.Context, dir, out string, progress func(done, total int64)) error {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		c.files = append(c.files, e.Name())
	}
	b, err := os.ReadFile(c.gguf)
	if err != nil {
		return err
	}
	progress(int64(len(b)), int64(len(b)))
	return os.WriteFile(out, b, 0o644)
}

func TestBuildFromSafetensors(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	dir := fixture(t)
	conv := &copyConverter{gguf: filepath.Join(dir, "tiny.gguf")}
	b.Converter = conv
	st := filepath.Join(dir, "hf")
	os.Mkdir(st, 0o755)
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		os.WriteFile(filepath.Join(st, f), []byte("{}"), 0o644)
	}
	var events []string
	res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM ./hf\nSYSTEM converted"), Dir: dir, Tags: []string{"hf"}}, func(e build.Event) { events = append(events, e.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(events, "converting model") || res.Details.Architecture != "llama" {
		t.Errorf("events %q details %+v", events, res.Details)
	}
	// The same through /api/create files: the blobs are laid out as a folder.
	var files = map[string]digest.Digest{}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		d, _, err := s.ImportFile(ctx, filepath.Join(st, f), blobstore.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		files[f] = d.Digest
	}
	conv.files = nil
	res2, err := b.Build(ctx, build.Request{Files: files, Tags: []string{"hf2"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(conv.files, []string{"config.json", "model.safetensors", "tokenizer.json"}) || res2.Model.Weights[0].Digest != res.Model.Weights[0].Digest {
		t.Errorf("converter saw %v", conv.files)
	}
}

func TestBuildSplitGGUF(t *testing.T) {
	ctx := context.Background()
	b, _ := newBuilder(t)
	dir := t.TempDir()
	kv := func(n int) []gguf.KV {
		return []gguf.KV{{Key: "general.architecture", Value: gguf.String("llama")}, {Key: "split.no", Value: gguf.Uint16(uint16(n))}, {Key: "split.count", Value: gguf.Uint16(2)}}
	}
	writeGGUF(t, filepath.Join(dir, "m-00002-of-00002.gguf"), kv(1))
	writeGGUF(t, filepath.Join(dir, "m-00001-of-00002.gguf"), kv(0))
	res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM .\n"), Dir: dir, Tags: []string{"split"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Model.Weights) != 2 || res.Model.Weights[0].Filename != "m-00001-of-00002.gguf" || res.Model.Weights[1].Filename != "m-00002-of-00002.gguf" {
		t.Errorf("weights %+v", res.Model.Weights)
	}
}

// TestLinkOnlyWhenAsked: a user's GGUF is copied into the store unless
// LinkFiles is set (where the file system cannot reflink); with it, the blob
// is the same inode and no second copy exists.
func TestLinkOnlyWhenAsked(t *testing.T) {
	ctx := context.Background()
	dir := fixture(t)
	src := filepath.Join(dir, "tiny.gguf")
	srcFI, _ := os.Stat(src)
	for _, link := range []bool{false, true} {
		b, s := newBuilder(t)
		b.LinkFiles = link
		res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM ./tiny.gguf"), Dir: dir, Tags: []string{"m"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := s.BlobPath(res.Model.Weights[0].Digest)
		blobFI, _ := os.Stat(p)
		if same := os.SameFile(srcFI, blobFI); same != link {
			// A reflink-capable file system gives a distinct inode either way.
			if !link || !same {
				t.Logf("link=%v: blob shares the source inode: %v (reflink file systems differ)", link, same)
			}
			if !link && same {
				t.Errorf("without LinkFiles the user's file was hardlinked into the store")
			}
		}
	}
}

// TestForeignParams: a base model whose params layer holds names olm does
// not know (a newer Ollama's) still builds, keeps them, and its
// show --modelfile still rebuilds it.
func TestForeignParams(t *testing.T) {
	ctx := context.Background()
	b, s := newBuilder(t)
	dir := fixture(t)
	base, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM ./tiny.gguf\nPARAMETER top_k 5"), Dir: dir, Tags: []string{"base"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite its params layer as a newer tool might have.
	m := *base.Model
	data := []byte(`{"future_option":"x","top_k":5}`)
	d := ocispec.Descriptor{MediaType: oci.MediaTypeOllamaParams, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := s.Push(ctx, d, strings.NewReader(string(data))); err != nil {
		t.Fatal(err)
	}
	m.Params = &oci.Layer{Digest: d.Digest, Size: d.Size, Data: data}
	man, cfg, err := oci.BuildManifest(m, oci.FormatModelPack, oci.BuildOptions{Created: oci.ReproducibleTime})
	if err != nil {
		t.Fatal(err)
	}
	var mm ocispec.Manifest
	json.Unmarshal(man, &mm)
	s.Push(ctx, mm.Config, strings.NewReader(string(cfg)))
	md := ocispec.Descriptor{MediaType: mm.MediaType, Digest: digest.FromBytes(man), Size: int64(len(man))}
	if err := s.Push(ctx, md, strings.NewReader(string(man))); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, md, "registry.ollama.ai/library/foreign:latest"); err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM foreign\nPARAMETER temperature 0.1"), Tags: []string{"derived"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Model.Params.Data); got != `{"future_option":"x","temperature":0.1,"top_k":5}` {
		t.Errorf("merged params %s", got)
	}
	info, err := build.Show(ctx, s, res.Tags[0], build.ShowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text, err := info.Modelfile("derived")
	if err != nil || !strings.Contains(text, "left out (kept from the FROM model): PARAMETER future_option") {
		t.Fatalf("modelfile %v:\n%s", err, text)
	}
	res2, err := b.Build(ctx, build.Request{Modelfile: parse(t, text), Tags: []string{"again"}}, nil)
	if err != nil || res2.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("rebuild: %v, %s vs %s", err, res2.Manifest.Digest, res.Manifest.Digest)
	}
}

// TestRequires: REQUIRES is stored as Ollama stores it (the version without
// "v", in the config's "requires" for the Ollama format, in a manifest
// annotation for ModelPack and Docker), a model built FROM it keeps it
// unless its own Modelfile sets another, and show --modelfile gives it back.
func TestRequires(t *testing.T) {
	ctx := context.Background()
	for _, f := range oci.WritableFormats {
		t.Run(string(f), func(t *testing.T) {
			b, s := newBuilder(t)
			dir := fixture(t)
			res, err := b.Build(ctx, build.Request{Modelfile: parse(t, "FROM ./tiny.gguf\nREQUIRES v0.5.0\n"), Dir: dir, Tags: []string{"req"}, Format: f}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, man, err := s.Manifest(ctx, res.Manifest.Digest.String())
			if err != nil {
				t.Fatal(err)
			}
			var mf ocispec.Manifest
			json.Unmarshal(man, &mf)
			config, err := s.ReadBlob(ctx, mf.Config.Digest, mf.Config.Size)
			if err != nil {
				t.Fatal(err)
			}
			if f == oci.FormatOllama {
				var c struct{ Requires string }
				if json.Unmarshal(config, &c); c.Requires != "0.5.0" {
					t.Fatalf("Ollama config requires = %q:\n%s", c.Requires, config)
				}
			} else if got := mf.Annotations[oci.AnnotationRequires]; got != "0.5.0" || strings.Contains(string(config), "0.5.0") {
				t.Fatalf("annotation %q, config %s", got, config)
			}

			info, err := build.Show(ctx, s, res.Tags[0], build.ShowOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Model.Config.Requires != "0.5.0" {
				t.Fatalf("show: requires %q", info.Model.Config.Requires)
			}
			text, err := info.Modelfile("req")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, "\nREQUIRES 0.5.0\n") {
				t.Fatalf("show --modelfile lacks REQUIRES:\n%s", text)
			}
			again, err := b.Build(ctx, build.Request{Modelfile: parse(t, text), Tags: []string{"req-again"}, Format: f}, nil)
			if err != nil || again.Manifest.Digest != res.Manifest.Digest {
				t.Fatalf("rebuilt from show --modelfile: %v, %v; want %s", again, err, res.Manifest.Digest)
			}

			// Inherited from the FROM model, overridden by the Modelfile.
			for src, want := range map[string]string{"FROM req\nSYSTEM hi\n": "0.5.0", "FROM req\nREQUIRES 0.6.1\n": "0.6.1"} {
				d, err := b.Build(ctx, build.Request{Modelfile: parse(t, src), Tags: []string{"derived"}, Format: f}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if d.Model.Config.Requires != want {
					t.Errorf("%q: requires %q, want %q", src, d.Model.Config.Requires, want)
				}
			}
		})
	}
}
