package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/registry-test/regtest"
	"github.com/olmhq/olm/runtime/llama"
)

var (
	createBinOnce sync.Once
	createBin     string
	createBinErr  error
)

// olmForCreateTests builds the olm binary once for the create/build/show
// end-to-end tests (it needs the llama.cpp build for quantize-worker).
func olmForCreateTests(t *testing.T) string {
	t.Helper()
	testenv.LlamaDir(t)
	createBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "olm-create-test-")
		if err != nil {
			createBinErr = err
			return
		}
		createBin = filepath.Join(dir, "olm")
		out, err := exec.Command("go", "build", "-o", createBin, ".").CombinedOutput()
		if err != nil {
			createBinErr = &buildFailure{string(out)}
		}
	})
	if createBinErr != nil {
		t.Fatalf("go build olm: %v", createBinErr)
	}
	return createBin
}

type buildFailure struct{ out string }

func (b *buildFailure) Error() string { return b.out }

type olmRun struct {
	stdout, stderr string
	code           int
}

func runOlm(t *testing.T, env []string, dir string, args ...string) olmRun {
	t.Helper()
	cmd := exec.Command(olmForCreateTests(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return olmRun{out.String(), errb.String(), code}
}

func mustOlm(t *testing.T, env []string, dir string, args ...string) string {
	t.Helper()
	r := runOlm(t, env, dir, args...)
	if r.code != 0 {
		t.Fatalf("olm %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func writeTestGGUF(t *testing.T, path string, kv []gguf.KV) {
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
	w.Write(make([]byte, ti.Size()))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

const cliModelfile = `FROM ./tiny.gguf
FROM ./mmproj.gguf
ADAPTER ./lora.gguf
PARAMETER temperature 0.6
PARAMETER num_ctx 512
PARAMETER stop "</s>"
TEMPLATE """{{ .System }} USER: {{ .Prompt }} ASSISTANT:"""
SYSTEM """You are
a tiny llama."""
MESSAGE user hello
MESSAGE assistant hi!
LICENSE """Tiny License
line two
line three"""
`

func cliContext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tiny.gguf"), b, 0o644)
	writeTestGGUF(t, filepath.Join(dir, "mmproj.gguf"), []gguf.KV{{Key: "general.architecture", Value: gguf.String("clip")}})
	writeTestGGUF(t, filepath.Join(dir, "lora.gguf"), []gguf.KV{{Key: "general.architecture", Value: gguf.String("llama")}, {Key: "general.type", Value: gguf.String("adapter")}})
	os.WriteFile(filepath.Join(dir, "Modelfile"), []byte(cliModelfile), 0o644)
	return dir
}

func TestCLICreateShowRebuild(t *testing.T) {
	ctxDir := cliContext(t)
	env := []string{"OLM_HOME=" + filepath.Join(t.TempDir(), "home"), "OLM_DEFAULT_REGISTRY=", "SOURCE_DATE_EPOCH="}
	r := runOlm(t, env, ctxDir, "create", "tiny")
	if r.code != 0 || !strings.Contains(r.stderr, "success") || !strings.Contains(r.stderr, "parsing GGUF") {
		t.Fatalf("create: %d\n%s", r.code, r.stderr)
	}
	show := mustOlm(t, env, ctxDir, "show", "tiny")
	for _, want := range []string{"architecture        llama", "parameters          513K", "context length      4096", "embedding length    8", "quantization        F16", "completion", "vision", "temperature                    0.6", "You are", "Tiny License", "projectors          1", "adapters            1"} {
		if !strings.Contains(show, want) {
			t.Errorf("olm show lacks %q:\n%s", want, show)
		}
	}
	if got := mustOlm(t, env, ctxDir, "show", "tiny", "--system"); got != "You are\na tiny llama.\n" {
		t.Errorf("--system %q", got)
	}
	if got := mustOlm(t, env, ctxDir, "show", "tiny", "--template"); got != "{{ .System }} USER: {{ .Prompt }} ASSISTANT:\n" {
		t.Errorf("--template %q", got)
	}
	if got := mustOlm(t, env, ctxDir, "show", "tiny", "--license"); got != "Tiny License\nline two\nline three\n" {
		t.Errorf("--license %q", got)
	}
	if got := mustOlm(t, env, ctxDir, "show", "tiny", "--parameters"); !strings.Contains(got, "num_ctx                        512\n") || !strings.Contains(got, `stop                           "</s>"`) {
		t.Errorf("--parameters %q", got)
	}
	if got := mustOlm(t, env, ctxDir, "show", "tiny", "-v"); !strings.Contains(got, "general.architecture") || !strings.Contains(got, "llama.context_length") {
		t.Errorf("-v lacks metadata:\n%s", got)
	}

	// olm build of the same context gives one digest; the Modelfile from
	// show --modelfile rebuilds exactly that digest.
	d1 := strings.TrimSpace(mustOlm(t, env, ctxDir, "build", "-t", "tiny:built", "."))
	if !strings.HasPrefix(d1, "registry.ollama.ai/library/tiny:built@sha256:") {
		t.Fatalf("build output %q", d1)
	}
	mf := mustOlm(t, env, ctxDir, "show", "tiny:built", "--modelfile")
	os.WriteFile(filepath.Join(ctxDir, "Modelfile.show"), []byte(mf), 0o644)
	d2 := strings.TrimSpace(mustOlm(t, env, ctxDir, "build", "-t", "tiny:rebuilt", "-f", "Modelfile.show", "."))
	if digestOf(d1) != digestOf(d2) {
		t.Errorf("show --modelfile rebuilt %s, want %s\n%s", d2, d1, mf)
	}
	// A created time changes the digest; SOURCE_DATE_EPOCH sets it too.
	d3 := strings.TrimSpace(mustOlm(t, env, ctxDir, "build", "-t", "tiny:dated", "--created", "1700000000", "."))
	d4 := strings.TrimSpace(mustOlm(t, append(env, "SOURCE_DATE_EPOCH=1700000000"), ctxDir, "build", "-t", "tiny:dated2", "."))
	if digestOf(d3) == digestOf(d1) || digestOf(d3) != digestOf(d4) {
		t.Errorf("created: %s %s %s", d1, d3, d4)
	}
	// Other formats.
	for _, f := range []string{"ollama", "docker"} {
		out := mustOlm(t, env, ctxDir, "build", "-t", "tiny:"+f, "--format", f, "--label", "org.opencontainers.image.source=https://example.com", ".")
		info := mustOlm(t, env, ctxDir, "show", "tiny:"+f)
		if !strings.Contains(info, "architecture        llama") || digestOf(out) == digestOf(d1) {
			t.Errorf("%s: %s\n%s", f, out, info)
		}
	}
}

func digestOf(line string) string {
	_, d, _ := strings.Cut(strings.TrimSpace(line), "@")
	return d
}

func TestCLIQuantize(t *testing.T) {
	ctxDir := cliContext(t)
	env := []string{"OLM_HOME=" + filepath.Join(t.TempDir(), "home")}
	r := runOlm(t, env, ctxDir, "create", "tiny:q4", "--quantize", "q4_K_M")
	if r.code != 0 || !strings.Contains(r.stderr, "quantizing F16 model to Q4_K_M") {
		t.Fatalf("create --quantize: %d\n%s", r.code, r.stderr)
	}
	if show := mustOlm(t, env, ctxDir, "show", "tiny:q4"); !strings.Contains(show, "quantization        Q4_K_M") {
		t.Errorf("show:\n%s", show)
	}
	os.WriteFile(filepath.Join(ctxDir, "Requant"), []byte("FROM tiny:q4\n"), 0o644)
	r = runOlm(t, env, ctxDir, "create", "tiny:q4b", "-f", "Requant", "--quantize", "q8_0")
	if r.code != 2 || !strings.Contains(r.stderr, "already quantized") {
		t.Errorf("requantize: %d\n%s", r.code, r.stderr)
	}
	r = runOlm(t, env, ctxDir, "create", "tiny:bad", "--quantize", "q3_nope")
	if r.code != 2 || !strings.Contains(r.stderr, "Q4_K_M") {
		t.Errorf("unknown type: %d\n%s", r.code, r.stderr)
	}
}

func TestCLIBadInput(t *testing.T) {
	ctxDir := cliContext(t)
	home := filepath.Join(t.TempDir(), "home")
	// Short names resolve to a closed loopback port: no network in tests.
	env := []string{"OLM_HOME=" + home, "OLM_DEFAULT_REGISTRY=127.0.0.1:1"}
	tiny, _ := os.ReadFile(filepath.Join(ctxDir, "tiny.gguf"))
	os.WriteFile(filepath.Join(ctxDir, "cut.gguf"), tiny[:len(tiny)/2], 0o644)
	os.WriteFile(filepath.Join(ctxDir, "text.gguf"), []byte("hello"), 0o644)
	mustOlm(t, env, ctxDir, "create", "good")
	index := func() string { b, _ := os.ReadFile(filepath.Join(home, "store", "index.json")); return string(b) }
	blobs := func() int { e, _ := os.ReadDir(filepath.Join(home, "store", "blobs", "sha256")); return len(e) }
	before, nblobs := index(), blobs()
	tests := []struct{ modelfile, msg string }{
		{"SYSTEM hi\n", "no FROM"},
		{"FROM ./tiny.gguf\nPARAMETER temprature 1\n", `Bad:2:11: unknown parameter "temprature"; valid parameters:`},
		{"FROM ./tiny.gguf\nPARAMETER num_ctx lots\n", "Bad:2:19: parameter num_ctx must be a integer"},
		{"FROM ./tiny.gguf\nPARAMETER use_mmap maybe\n", "must be a boolean"},
		{"FROM ./missing.gguf\n", "missing.gguf does not exist"},
		{"FROM ./text.gguf\n", "is not a GGUF file"},
		{"FROM ./cut.gguf\n", "truncated"},
		{"FROM nosuchmodel\n", "FROM nosuchmodel:latest: not in the store, and pulling it failed"},
		{"FROM ./tiny.gguf\nMESSAGE robot hi\n", "invalid message role"},
		{"FROM ./tiny.gguf\nSYSTEM \"\"\"unterminated\n", "unterminated"},
	}
	for _, tt := range tests {
		os.WriteFile(filepath.Join(ctxDir, "Bad"), []byte(tt.modelfile), 0o644)
		r := runOlm(t, env, ctxDir, "create", "bad", "-f", "Bad")
		if r.code != 2 || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tt.modelfile, r.code, r.stderr, tt.msg)
		}
	}
	if r := runOlm(t, env, ctxDir, "create", "bad", "-f", "NoSuchFile"); r.code != 2 || !strings.Contains(r.stderr, "no Modelfile") {
		t.Errorf("missing Modelfile: %d %q", r.code, r.stderr)
	}
	if r := runOlm(t, env, ctxDir, "show", "nosuch"); r.code != 2 {
		t.Errorf("show missing: %d %q", r.code, r.stderr)
	}
	if index() != before || blobs() != nblobs {
		t.Errorf("bad input changed the store: %d → %d blobs\n%s\n%s", nblobs, blobs(), before, index())
	}
}

// TestCLIBuildPushPull builds and pushes to a real registry (TLS, basic
// auth), checks the manifest there, then builds FROM the pushed reference in
// an empty store, which pulls it back.
func TestCLIBuildPushPull(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{TLS: true, Auth: true})
	ctxDir := cliContext(t)
	env := append([]string{"OLM_HOME=" + filepath.Join(t.TempDir(), "home")}, reg.Env()...)
	ref1, ref2 := reg.Ref("team/tiny", "1.0"), reg.Ref("team/tiny", "latest")
	r := runOlm(t, env, ctxDir, "build", "-t", ref1, "-t", ref2, "--push", ".")
	if r.code != 0 || !strings.Contains(r.stderr, "pushed "+ref1) {
		t.Fatalf("build --push: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || digestOf(lines[0]) != digestOf(lines[1]) {
		t.Fatalf("stdout %q", r.stdout)
	}
	man, mt, err := reg.GetManifest(t.Context(), "team/tiny", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ArtifactType string `json:"artifactType"`
		Layers       []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	json.Unmarshal(man, &m)
	if mt != "application/vnd.oci.image.manifest.v1+json" || m.ArtifactType != "application/vnd.cncf.model.manifest.v1+json" || len(m.Layers) != 8 {
		t.Errorf("registry manifest %s: %s", mt, man)
	}

	// A fresh store: FROM the pushed reference pulls it.
	env2 := append([]string{"OLM_HOME=" + filepath.Join(t.TempDir(), "home2")}, reg.Env()...)
	os.WriteFile(filepath.Join(ctxDir, "Derived"), []byte("FROM "+ref1+"\nSYSTEM pulled\n"), 0o644)
	r = runOlm(t, env2, ctxDir, "create", "derived", "-f", "Derived")
	if r.code != 0 || !strings.Contains(r.stderr, "pulling "+ref1) {
		t.Fatalf("create from reference: %d\n%s", r.code, r.stderr)
	}
	show := mustOlm(t, env2, ctxDir, "show", ref1)
	if !strings.Contains(show, "architecture        llama") || !strings.Contains(show, "You are") {
		t.Errorf("pulled model:\n%s", show)
	}
	if got := mustOlm(t, env2, ctxDir, "show", "derived", "--system"); got != "pulled\n" {
		t.Errorf("derived system %q", got)
	}
	runsPulled(t, filepath.Join(strings.TrimPrefix(env2[0], "OLM_HOME="), "store"), ref1)
}

// runsPulled loads the pulled model's weights blob with llama.cpp and
// decodes a prompt: the model that went through the registry runs.
func runsPulled(t *testing.T, root, ref string) {
	ctx := t.Context()
	s, err := blobstore.Open(root, blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := build.LoadModel(ctx, s, ref)
	if err != nil {
		t.Fatal(err)
	}
	path, err := s.BlobPath(m.Weights[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	model, err := llama.LoadModel(ctx, path, llama.ModelParams{UseMMap: true})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	lc, err := llama.NewContext(model, llama.ContextParams{NumCtx: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	toks, err := model.Tokenize("Hello from the registry", true, false)
	if err != nil || len(toks) == 0 {
		t.Fatalf("tokenize: %v %v", toks, err)
	}
	batch, err := llama.NewBatch(len(toks), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Close()
	for i, tk := range toks {
		batch.Add(tk, i, i == len(toks)-1, 0)
	}
	if err := lc.Decode(ctx, batch); err != nil {
		t.Fatal(err)
	}
	logits, err := lc.Logits(len(toks) - 1)
	if err != nil || len(logits) != model.NumVocab() {
		t.Fatalf("logits: %d values, %v", len(logits), err)
	}
}
