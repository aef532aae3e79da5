package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// blobs is an in-memory content store for tests.
type blobs map[digest.Digest][]byte

func (b blobs) add(data []byte) (digest.Digest, int64) {
	d := digest.SHA256.FromBytes(data)
	b[d] = data
	return d, int64(len(data))
}

func (b blobs) layer(name string, data []byte) Layer {
	d, n := b.add(data)
	return Layer{Digest: d, Size: n, Filename: name}
}

func (b blobs) fetch(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	data, ok := b[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s not found", desc.Digest)
	}
	return data, nil
}

// fixture returns a model with every kind of layer, whose small layers carry
// their data, and the store that holds its blobs.
func fixture() (Model, blobs) {
	b := blobs{}
	small := func(name, text string) *Layer {
		l := b.layer(name, []byte(text))
		l.Data = []byte(text)
		return &l
	}
	m := Model{
		Config: Config{
			Name:          "tiny",
			Description:   "a tiny test model",
			Family:        "llama",
			Architecture:  "llama",
			Format:        "gguf",
			ParamSize:     "494.03M",
			Quantization:  "Q4_K_M",
			ContextLength: 4096,
			Capabilities:  []string{"completion", "vision", "tools", "thinking"},
			Licenses:      []string{"Apache-2.0"},
			Created:       time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		},
		Weights: []Layer{
			b.layer("tiny-00001-of-00002.gguf", []byte("GGUF part one")),
			b.layer("tiny-00002-of-00002.gguf", []byte("GGUF part two")),
		},
		Projectors:   []Layer{b.layer("mmproj-tiny-f16.gguf", []byte("GGUF projector"))},
		Adapters:     []Layer{b.layer("adapter.gguf", []byte("GGUF lora"))},
		Template:     small("template", "{{ .System }} {{ .Prompt }}"),
		ChatTemplate: small("chat_template.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}"),
		System:       small("system", "You are a tiny model."),
		Params:       small("params.json", `{"stop":["<|eot|>"],"temperature":0.2}`),
		Messages:     small("messages.json", `[{"role":"user","content":"hi"}]`),
		Licenses:     []Layer{*small("LICENSE", "Apache License 2.0 text"), *small("NOTICE", "notice text")},
	}
	return m, b
}

// expectFor returns what ParseModel must read back from a manifest of format
// f built from m: the fields a format cannot carry are dropped.
func expectFor(m Model, f Format) Model {
	want := m
	want.Format = f
	set := func(ls []Layer, mt string) []Layer {
		out := make([]Layer, len(ls))
		for i, l := range ls {
			l.MediaType = mt
			if f == FormatOllama {
				l.Filename = ""
			}
			out[i] = l
		}
		return out
	}
	one := func(l *Layer, mt string) *Layer {
		if l == nil {
			return nil
		}
		return &set([]Layer{*l}, mt)[0]
	}
	switch f {
	case FormatModelPack:
		want.Weights = set(m.Weights, MediaTypeModelPackWeightRaw)
		want.Config.ContextLength = 0 // ModelPack has no field for it
	case FormatOllama:
		want.Weights = set(m.Weights, MediaTypeOllamaModel)
		want.Config.Name, want.Config.Description, want.Config.Licenses = "", "", nil
		want.Config.Created = time.Time{}
		want.Config.Architecture = m.Config.Family
	case FormatDocker:
		want.Weights = set(m.Weights, MediaTypeDockerGGUF)
		want.Config.Name, want.Config.Description, want.Config.Licenses = "", "", nil
		want.Config.Family, want.Config.Capabilities = "", nil
	}
	projector, license := MediaTypeOllamaProjector, MediaTypeOllamaLicense
	if f == FormatDocker {
		projector, license = MediaTypeDockerMMProj, MediaTypeDockerLicense
	}
	want.Projectors = set(m.Projectors, projector)
	want.Adapters = set(m.Adapters, MediaTypeOllamaAdapter)
	want.Template = one(m.Template, MediaTypeOllamaTemplate)
	want.ChatTemplate = one(m.ChatTemplate, MediaTypeDockerChatTemplate)
	want.System = one(m.System, MediaTypeOllamaSystem)
	want.Params = one(m.Params, MediaTypeOllamaParams)
	want.Messages = one(m.Messages, MediaTypeOllamaMessages)
	want.Licenses = set(m.Licenses, license)
	return want
}

func fetchWithConfig(b blobs, config []byte) Fetcher {
	b.add(config)
	return b.fetch
}

func TestBuildGoldenAndRoundTrip(t *testing.T) {
	for _, f := range WritableFormats {
		t.Run(string(f), func(t *testing.T) {
			m, b := fixture()
			opts := BuildOptions{Created: m.Config.Created}
			manifest, config, err := BuildManifest(m, f, opts)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, string(f)+".manifest.json", manifest)
			golden(t, string(f)+".config.json", config)

			// Reproducible: the same input gives the same bytes.
			m2, _ := fixture()
			manifest2, config2, err := BuildManifest(m2, f, opts)
			if err != nil || !bytes.Equal(manifest, manifest2) || !bytes.Equal(config, config2) {
				t.Fatalf("second build differs (err %v)", err)
			}

			if got, err := DetectFormat(manifest, f.ManifestMediaType()); err != nil || got != f {
				t.Fatalf("DetectFormat = %q, %v; want %q", got, err, f)
			}
			got, err := ParseModel(context.Background(), manifest, fetchWithConfig(b, config))
			if err != nil {
				t.Fatal(err)
			}
			want := expectFor(m, f)
			if !reflect.DeepEqual(got, &want) {
				gj, _ := json.MarshalIndent(got, "", " ")
				wj, _ := json.MarshalIndent(want, "", " ")
				t.Fatalf("round trip differs:\ngot  %s\nwant %s", gj, wj)
			}

			// Writing the parsed model again gives the same manifest, except
			// where the format drops file names (Ollama gives defaults back).
			if f != FormatOllama {
				again, config3, err := BuildManifest(*got, f, opts)
				if err != nil || !bytes.Equal(again, manifest) || !bytes.Equal(config3, config) {
					t.Fatalf("rewrite of the parsed model differs (err %v):\n%s\n%s", err, again, manifest)
				}
			}
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (go test -update rewrites it):\ngot  %s\nwant %s", name, got, want)
	}
}

func TestModelPackShape(t *testing.T) {
	m, _ := fixture()
	manifest, config, err := BuildManifest(m, FormatModelPack, BuildOptions{Created: ReproducibleTime})
	if err != nil {
		t.Fatal(err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(manifest, &man); err != nil {
		t.Fatal(err)
	}
	if man.MediaType != ocispec.MediaTypeImageManifest || man.ArtifactType != ArtifactTypeModelPack ||
		man.Config.MediaType != MediaTypeModelPackConfig || man.Annotations[AnnotationCreated] != "1970-01-01T00:00:00Z" {
		t.Fatalf("manifest header: %s", manifest)
	}
	w := man.Layers[0]
	if w.MediaType != MediaTypeModelPackWeightRaw || w.Annotations[AnnotationModelPackFilepath] != "tiny-00001-of-00002.gguf" ||
		w.Annotations[AnnotationTitle] != "tiny-00001-of-00002.gguf" {
		t.Fatalf("weights layer: %+v", w)
	}
	// The config holds only the properties the ModelPack JSON schema allows.
	var cfg map[string]map[string]any
	if err := json.Unmarshal(config, &cfg); err != nil {
		t.Fatal(err)
	}
	allowed := map[string][]string{
		"descriptor": {"createdAt", "authors", "family", "name", "docURL", "sourceURL", "datasetsURL", "version", "revision", "vendor", "licenses", "title", "description"},
		"modelfs":    {"type", "diffIds"},
		"config":     {"architecture", "format", "paramSize", "precision", "quantization", "capabilities"},
	}
	if len(cfg) != 3 {
		t.Fatalf("config has keys %v", cfg)
	}
	for k, v := range cfg {
		for field := range v {
			if !contains(allowed[k], field) {
				t.Errorf("config.%s.%s is not in the ModelPack schema", k, field)
			}
		}
	}
	if ids := cfg["modelfs"]["diffIds"].([]any); len(ids) != len(man.Layers) {
		t.Errorf("diffIds has %d entries for %d layers", len(ids), len(man.Layers))
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestOllamaShapeLeaksNoPaths(t *testing.T) {
	m, _ := fixture()
	m.Weights[0].Filename = "tiny-00001-of-00002.gguf"
	manifest, config, err := BuildManifest(m, FormatOllama, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range [][]byte{manifest, config} {
		s := string(doc)
		for _, bad := range []string{`"from"`, "annotations", "tiny-0000", "/"} {
			if bad == "/" {
				// Media types contain slashes; a path would follow a quote.
				if strings.Contains(s, `"/`) {
					t.Errorf("document has an absolute path: %s", s)
				}
				continue
			}
			if strings.Contains(s, bad) {
				t.Errorf("Ollama document contains %q: %s", bad, s)
			}
		}
	}
	var cfg map[string]any
	json.Unmarshal(config, &cfg)
	for _, k := range []string{"model_format", "model_family", "model_type", "file_type", "rootfs", "os", "architecture"} {
		if _, ok := cfg[k]; !ok {
			t.Errorf("Ollama config lacks %s: %s", k, config)
		}
	}
	var man map[string]any
	json.Unmarshal(manifest, &man)
	if man["mediaType"] != MediaTypeDockerManifest {
		t.Errorf("mediaType = %v", man["mediaType"])
	}
}

func TestBuildDefaultsAndErrors(t *testing.T) {
	b := blobs{}
	m := Model{Weights: []Layer{b.layer("", []byte("GGUF"))}, Params: ptr(b.layer("", []byte(`{}`)))}
	manifest, _, err := BuildManifest(m, FormatModelPack, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(manifest), `"org.opencontainers.image.title":"model.gguf"`) ||
		!strings.Contains(string(manifest), `"org.opencontainers.image.title":"params.json"`) {
		t.Errorf("default names missing: %s", manifest)
	}
	if m.Weights[0].Filename != "" {
		t.Error("BuildManifest changed its input")
	}

	bad := []struct {
		name string
		m    Model
		f    Format
		want error
	}{
		{"no weights", Model{}, FormatModelPack, ErrInvalidManifest},
		{"format", m, "safetensors", ErrUnsupportedFormat},
		{"bad digest", Model{Weights: []Layer{{Digest: "sha256:../../x", Filename: "a.gguf"}}}, FormatModelPack, ErrInvalidDigest},
		{"escape", Model{Weights: []Layer{b.layer("../a.gguf", []byte("x"))}}, FormatModelPack, ErrInvalidManifest},
		{"absolute", Model{Weights: []Layer{b.layer("/etc/a.gguf", []byte("x"))}}, FormatDocker, ErrInvalidManifest},
		{"not gguf", Model{Weights: []Layer{b.layer("model.safetensors", []byte("x"))}}, FormatModelPack, ErrInvalidManifest},
		{"duplicate", Model{Weights: []Layer{b.layer("a.gguf", []byte("x")), b.layer("a.gguf", []byte("y"))}}, FormatModelPack, ErrInvalidManifest},
		{"data mismatch", Model{Weights: []Layer{b.layer("a.gguf", []byte("x"))}, System: &Layer{Digest: digest.SHA256.FromString("a"), Size: 1, Data: []byte("b")}}, FormatModelPack, ErrInvalidManifest},
		{"archive in ollama", Model{Weights: []Layer{{Digest: digest.SHA256.FromString("t"), Size: 1, Filename: "m", Archive: ArchiveTar}}}, FormatOllama, ErrUnsupportedFormat},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := BuildManifest(tt.m, tt.f, BuildOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// manifestOf marshals a manifest for a test, storing the config.
func manifestOf(t testing.TB, b blobs, mediaType, artifactType, configType string, config []byte, layers ...ocispec.Descriptor) []byte {
	t.Helper()
	cd, cn := b.add(config)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaType,
		"config":        ocispec.Descriptor{MediaType: configType, Digest: cd, Size: cn},
		"layers":        layers,
	}
	if artifactType != "" {
		m["artifactType"] = artifactType
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func desc(b blobs, mt string, data []byte, annotations map[string]string) ocispec.Descriptor {
	d, n := b.add(data)
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: n, Annotations: annotations}
}

// TestParseOllamaAsOllamaWrites parses a manifest shaped exactly like the ones
// Ollama pushes (registry.ollama.ai/library/*).
func TestParseOllamaAsOllamaWrites(t *testing.T) {
	b := blobs{}
	cfg := []byte(`{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"3.2B","file_type":"Q4_K_M","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	man := manifestOf(t, b, MediaTypeDockerManifest, "", MediaTypeDockerConfig, cfg,
		desc(b, MediaTypeOllamaModel, []byte("GGUF weights"), nil),
		desc(b, MediaTypeOllamaTemplate, []byte("{{ .Prompt }}"), nil),
		desc(b, MediaTypeOllamaLicense, []byte("LLAMA 3.2 COMMUNITY LICENSE"), nil),
		desc(b, MediaTypeOllamaLicense, []byte("Acceptable use"), nil),
		desc(b, MediaTypeOllamaParams, []byte(`{"stop":["<|eot_id|>"]}`), nil),
	)
	m, err := ParseModel(context.Background(), man, b.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != FormatOllama || m.Config.Family != "llama" || m.Config.ParamSize != "3.2B" || m.Config.Quantization != "Q4_K_M" {
		t.Fatalf("config: %+v", m.Config)
	}
	if len(m.Weights) != 1 || len(m.Licenses) != 2 || string(m.Template.Data) != "{{ .Prompt }}" || string(m.Licenses[1].Data) != "Acceptable use" {
		t.Fatalf("layers: %+v", m)
	}
	// Without a fetcher only the manifest is read.
	m, err = ParseModel(context.Background(), man, nil)
	if err != nil || m.Template.Data != nil || m.Config.Family != "" || len(m.Weights) != 1 {
		t.Fatalf("nil fetch: %+v, %v", m, err)
	}
}

func TestParseDockerV01AndCNAIAndOras(t *testing.T) {
	b := blobs{}
	ctx := context.Background()

	// Docker Model Runner v0.1: flat layers, no annotations.
	cfg := []byte(`{"config":{"format":"gguf","quantization":"IQ2_XXS/Q4_K_M","parameters":"361.82M","architecture":"llama","size":"256.35MiB","context_size":2048},"descriptor":{"created":"2025-03-26T08:50:17.61851-06:00"},"rootfs":{"type":"rootfs","diff_ids":["sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}}`)
	man := manifestOf(t, b, MediaTypeOCIManifest, "", MediaTypeDockerModelConfigV01, cfg,
		desc(b, MediaTypeDockerGGUF, []byte("GGUF smollm"), nil),
		desc(b, MediaTypeDockerLicense, []byte("Apache 2"), nil),
		desc(b, MediaTypeDockerChatTemplate, []byte("{{ messages }}"), nil),
	)
	m, err := ParseModel(ctx, man, b.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != FormatDockerV01 || m.Config.ContextLength != 2048 || m.Config.ParamSize != "361.82M" ||
		!m.Config.Created.Equal(time.Date(2025, 3, 26, 14, 50, 17, 618510000, time.UTC)) ||
		len(m.Licenses) != 1 || string(m.ChatTemplate.Data) != "{{ messages }}" {
		t.Fatalf("docker v0.1: %+v", m)
	}

	// The older cnai ModelPack prefix, with an empty config as podman writes.
	man = manifestOf(t, b, MediaTypeOCIManifest, ArtifactTypeCNAIModel, MediaTypeEmptyJSON, []byte("{}"),
		desc(b, MediaTypeCNAIWeightRaw, []byte("GGUF smollm2"), map[string]string{AnnotationCNAIFilepath: "smollm2.gguf"}),
	)
	m, err = ParseModel(ctx, man, b.fetch)
	if err != nil || m.Format != FormatModelPackCNAI || m.Weights[0].Filename != "smollm2.gguf" {
		t.Fatalf("cnai: %+v, %v", m, err)
	}

	// What `oras push --artifact-type application/vnd.cncf.model.manifest.v1+json
	// model.gguf:application/vnd.cncf.model.weight.v1.raw` uploads: a title
	// annotation and an empty config.
	man = manifestOf(t, b, MediaTypeOCIManifest, ArtifactTypeModelPack, MediaTypeEmptyJSON, []byte("{}"),
		desc(b, MediaTypeModelPackWeightRaw, []byte("GGUF oras"), map[string]string{AnnotationTitle: "model.gguf"}),
		desc(b, MediaTypeModelPackDocRaw, []byte("# readme"), map[string]string{AnnotationTitle: "README.md"}),
	)
	m, err = ParseModel(ctx, man, b.fetch)
	if err != nil || m.Format != FormatModelPack || m.Weights[0].Filename != "model.gguf" || len(m.Other) != 1 {
		t.Fatalf("oras modelpack: %+v, %v", m, err)
	}

	// Tar weights: the title names the archive, so OpenArchived gets no
	// name and takes the GGUF inside.
	archive := tarOf(t, false, map[string]string{"tiny.gguf": "GGUF in tar"})
	man = manifestOf(t, b, MediaTypeOCIManifest, ArtifactTypeModelPack, MediaTypeEmptyJSON, []byte("{}"),
		desc(b, MediaTypeModelPackWeightTar, archive, map[string]string{AnnotationTitle: "weights.tar"}))
	m, err = ParseModel(ctx, man, b.fetch)
	if err != nil || m.Weights[0].Archive != ArchiveTar || m.Weights[0].Filename != "" {
		t.Fatalf("tar modelpack: %+v, %v", m, err)
	}
	// Written back as ModelPack, an archived layer gets no title.
	m.Weights[0].Filename = "tiny.gguf"
	written, _, err := BuildManifest(*m, FormatModelPack, BuildOptions{})
	if err != nil || strings.Contains(string(written), AnnotationTitle) || !strings.Contains(string(written), MediaTypeModelPackWeightTar) {
		t.Fatalf("archived weights written as %s (%v)", written, err)
	}
	r, _, err := OpenArchived(bytes.NewReader(archive), ArchiveTar, m.Weights[0].Filename)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); string(got) != "GGUF in tar" {
		t.Fatalf("unpacked %q", got)
	}
}

func tarOf(t testing.TB, gz bool, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	tw.WriteHeader(&tar.Header{Name: "link.gguf", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

func TestParseKitOps(t *testing.T) {
	b := blobs{}
	kit := []byte(`{"manifestVersion":"1.0.0","package":{"name":"tiny-kit","description":"d","license":"MIT"},"model":{"name":"tiny","path":"./models/tiny.gguf","framework":"llama.cpp","parts":[{"path":"./models/mmproj-tiny.gguf","type":"projector"},{"path":"tokenizer.json"}]},"docs":[{"path":"README.md"}]}`)
	archive := tarOf(t, true, map[string]string{"models/tiny.gguf": "GGUF kit"})
	man := manifestOf(t, b, MediaTypeOCIManifest, ArtifactTypeKitOps, MediaTypeKitOpsConfig, kit,
		desc(b, MediaTypeKitOpsModelTarGzip, archive, nil),
		desc(b, MediaTypeKitOpsModelPartTar, tarOf(t, false, map[string]string{"models/mmproj-tiny.gguf": "GGUF proj"}), nil),
		desc(b, MediaTypeKitOpsModelPartTar, tarOf(t, false, map[string]string{"tokenizer.json": "{}"}), nil),
		desc(b, MediaTypeKitOpsDocsTar, tarOf(t, false, map[string]string{"README.md": "# hi"}), nil),
	)
	m, err := ParseModel(context.Background(), man, b.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != FormatKitOps || m.Config.Name != "tiny-kit" || m.Config.Format != "gguf" || !reflect.DeepEqual(m.Config.Licenses, []string{"MIT"}) {
		t.Fatalf("config: %+v", m.Config)
	}
	w := m.Weights[0]
	if w.Archive != ArchiveTarGzip || w.Filename != "models/tiny.gguf" || len(m.Projectors) != 1 || len(m.Other) != 2 {
		t.Fatalf("layers: %+v", m)
	}
	r, n, err := OpenArchived(bytes.NewReader(b[w.Digest]), w.Archive, w.Filename)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "GGUF kit" || n != int64(len(got)) {
		t.Fatalf("unpacked %q (%d)", got, n)
	}
	// A folder path finds the GGUF inside; a wrong name finds nothing.
	if _, _, err := OpenArchived(bytes.NewReader(b[w.Digest]), w.Archive, "models"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenArchived(bytes.NewReader(b[w.Digest]), w.Archive, "link.gguf"); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("symlink entry must not be returned: %v", err)
	}
	// A Kitfile that names a folder of a llama.cpp model: the GGUF inside.
	kit = []byte(`{"manifestVersion":"1.0.0","model":{"path":"./models","framework":"llama.cpp"}}`)
	man = manifestOf(t, b, MediaTypeOCIManifest, ArtifactTypeKitOps, MediaTypeKitOpsConfig, kit, desc(b, MediaTypeKitOpsModelTarGzip, archive, nil))
	if m, err = ParseModel(context.Background(), man, b.fetch); err != nil || m.Weights[0].Filename != "models" || m.Config.Format != "gguf" {
		t.Fatalf("llama.cpp folder kit: %+v, %v", m, err)
	}
	// A ModelKit packing PyTorch weights is refused with a clear error.
	kit = []byte(`{"manifestVersion":"1.0.0","model":{"path":"model.pt","framework":"pytorch"}}`)
	man = manifestOf(t, b, MediaTypeOCIManifest, ArtifactTypeKitOps, MediaTypeKitOpsConfig, kit,
		desc(b, MediaTypeKitOpsModelTar, tarOf(t, false, map[string]string{"model.pt": "x"}), nil))
	if _, err := ParseModel(context.Background(), man, b.fetch); !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), "model.pt") {
		t.Fatalf("pytorch kit: %v", err)
	}
}

func TestParseModelErrors(t *testing.T) {
	b := blobs{}
	good := desc(b, MediaTypeModelPackWeightRaw, []byte("GGUF"), map[string]string{AnnotationTitle: "m.gguf"})
	mp := func(layers ...ocispec.Descriptor) []byte {
		return manifestOf(t, b, MediaTypeOCIManifest, ArtifactTypeModelPack, MediaTypeEmptyJSON, []byte("{}"), layers...)
	}
	withDigest := func(d ocispec.Descriptor, dg string) ocispec.Descriptor { d.Digest = digest.Digest(dg); return d }
	withSize := func(d ocispec.Descriptor, n int64) ocispec.Descriptor { d.Size = n; return d }
	withName := func(d ocispec.Descriptor, n string) ocispec.Descriptor {
		d.Annotations = map[string]string{AnnotationModelPackFilepath: n}
		return d
	}
	params := desc(b, MediaTypeOllamaParams, []byte("{not json"), nil)
	b[digest.SHA256.FromString("lie")] = []byte("other bytes") // a blob whose bytes do not match
	tests := []struct {
		name     string
		manifest []byte
		want     error
		fragment string
	}{
		{"not json", []byte("{"), ErrInvalidManifest, "JSON"},
		{"too large", bytes.Repeat([]byte(" "), MaxManifestSize+1), ErrTooLarge, "limit"},
		{"schema 1", []byte(`{"schemaVersion":1}`), ErrInvalidManifest, "schemaVersion"},
		{"index", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), ErrUnsupportedFormat, "index"},
		{"container image", manifestOf(t, b, MediaTypeOCIManifest, "", ocispec.MediaTypeImageConfig, []byte(`{}`),
			desc(b, ocispec.MediaTypeImageLayerGzip, []byte("tgz"), nil)), ErrUnsupportedFormat, "application/vnd.oci.image.layer.v1.tar+gzip"},
		{"traversal digest", mp(withDigest(good, "sha256:../../x")), ErrInvalidDigest, "sha256:../../x"},
		{"negative size", mp(withSize(good, -1)), ErrInvalidManifest, "negative"},
		{"escaping path", mp(withName(good, "../../etc/m.gguf")), ErrInvalidManifest, "escapes"},
		{"absolute path", mp(withName(good, "/m.gguf")), ErrInvalidManifest, "absolute"},
		{"no weights", mp(desc(b, MediaTypeModelPackDocRaw, []byte("doc"), nil)), ErrUnsupportedFormat, "no GGUF weights"},
		{"safetensors", mp(withName(good, "model.safetensors")), ErrUnsupportedFormat, "not a GGUF"},
		{"params not json", mp(good, params), ErrInvalidManifest, "not valid JSON"},
		{"wrong bytes", mp(good, ocispec.Descriptor{MediaType: MediaTypeOllamaSystem, Digest: digest.SHA256.FromString("lie"), Size: 11}), ErrInvalidManifest, "digest"},
		{"wrong size", mp(good, withSize(desc(b, MediaTypeOllamaSystem, []byte("sys"), nil), 2)), ErrInvalidManifest, "bytes"},
		{"huge small layer", mp(good, withSize(desc(b, MediaTypeOllamaSystem, []byte("sys"), nil), MaxSmallLayerSize+1)), ErrTooLarge, "limit"},
		{"docker safetensors", manifestOf(t, b, MediaTypeOCIManifest, "", MediaTypeDockerModelConfigV02, []byte(`{"config":{"format":"safetensors"}}`),
			desc(b, MediaTypeDockerSafetensors, []byte("st"), nil)), ErrUnsupportedFormat, "safetensors"},
		{"served as another type", nil, ErrInvalidManifest, "served"},
		{"case variant key", []byte(`{"schemaVersion":2,"Layers":[],"layers":[]}`), ErrInvalidManifest, "spelled"},
		{"duplicate key", []byte(`{"schemaVersion":2,"layers":[{"digest":"a","digest":"b"}]}`), ErrInvalidManifest, "twice"},
		{"trailing data", []byte(`{"schemaVersion":2} {}`), ErrInvalidManifest, "after"},
		{"deep nesting", []byte(`{"annotations":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`), ErrInvalidManifest, "deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.manifest == nil {
				_, err = DetectFormat(mp(good), MediaTypeDockerManifest)
			} else {
				_, err = ParseModel(context.Background(), tt.manifest, b.fetch)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.fragment) {
				t.Fatalf("error %q lacks %q", err, tt.fragment)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatModelPack, "modelpack": FormatModelPack, "Ollama": FormatOllama, "docker": FormatDocker} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"kitops", "docker-v0.1", "gguf"} {
		if _, err := ParseFormat(in); !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("ParseFormat(%q) = %v", in, err)
		}
	}
}

func FuzzParseModel(f *testing.F) {
	m, b := fixture()
	for _, format := range WritableFormats {
		manifest, config, err := BuildManifest(m, format, BuildOptions{Created: ReproducibleTime})
		if err != nil {
			f.Fatal(err)
		}
		b.add(config)
		f.Add(manifest)
	}
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.kitops.modelkit.config.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},"layers":[{"mediaType":"application/vnd.kitops.modelkit.model.v1.tar","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":1,"annotations":{"org.cncf.model.filepath":"../x"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
	f.Fuzz(func(t *testing.T, manifest []byte) {
		format, derr := DetectFormat(manifest, "")
		m, err := ParseModel(context.Background(), manifest, b.fetch)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) && !errors.Is(err, ErrUnsupportedFormat) && !errors.Is(err, ErrTooLarge) &&
				!strings.Contains(err.Error(), "not found") {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if derr != nil || format != m.Format {
			t.Fatalf("ParseModel read %q but DetectFormat says %q, %v", m.Format, format, derr)
		}
		if len(m.Weights) == 0 {
			t.Fatal("parsed model without weights")
		}
		for _, l := range m.Layers() {
			if ValidateDigest(l.Digest) != nil || l.Size < 0 {
				t.Fatalf("invalid layer accepted: %+v", l)
			}
			if l.Filename != "" {
				if c, err := cleanFilename(l.Filename); err != nil || c != l.Filename || strings.HasPrefix(l.Filename, "/") {
					t.Fatalf("unsafe file name accepted: %q", l.Filename)
				}
			}
			if l.Data != nil && digest.SHA256.FromBytes(l.Data) != l.Digest {
				t.Fatalf("data does not match digest")
			}
		}
	})
}

func FuzzOpenArchived(f *testing.F) {
	f.Add(tarOf(f, false, map[string]string{"m.gguf": "GGUF"}), "m.gguf")
	f.Add(tarOf(f, false, map[string]string{"a/../../m.gguf": "GGUF"}), "")
	f.Fuzz(func(t *testing.T, archive []byte, name string) {
		r, n, err := OpenArchived(bytes.NewReader(archive), ArchiveTar, name)
		if err != nil {
			return
		}
		got, _ := io.ReadAll(io.LimitReader(r, 1<<20))
		if n < 0 || int64(len(got)) > n {
			t.Fatalf("read %d bytes of an entry of %d", len(got), n)
		}
	})
}

func ExampleParseModel() {
	// A manifest as Ollama pushes it, read without fetching any blob.
	manifest := []byte(`{
	  "schemaVersion": 2,
	  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
	  "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:34bb5ab01051a11372a91f95f3fbbc51173eed8e7f13ec395b9ae9b8bd0e242b", "size": 561},
	  "layers": [
	    {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff", "size": 2019377376},
	    {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396", "size": 1429}
	  ]
	}`)
	m, err := ParseModel(context.Background(), manifest, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Format, len(m.Weights), m.Weights[0].Size, m.Template != nil)
	// Output: ollama 1 2019377376 true
}

// TestRequires: Config.Requires travels in Ollama's config field and in a
// manifest annotation elsewhere, and a value that is not a version is
// refused both when writing and when reading.
func TestRequires(t *testing.T) {
	for _, f := range WritableFormats {
		t.Run(string(f), func(t *testing.T) {
			m, b := fixture()
			m.Config.Requires = "0.12.3-rc1"
			manifest, config, err := BuildManifest(m, f, BuildOptions{Created: m.Config.Created})
			if err != nil {
				t.Fatal(err)
			}
			var raw struct {
				Annotations map[string]string `json:"annotations"`
			}
			json.Unmarshal(manifest, &raw)
			inConfig := strings.Contains(string(config), `"requires":"0.12.3-rc1"`)
			if f == FormatOllama {
				if !inConfig || raw.Annotations != nil {
					t.Fatalf("Ollama: config %s, annotations %v", config, raw.Annotations)
				}
			} else if inConfig || raw.Annotations[AnnotationRequires] != "0.12.3-rc1" {
				t.Fatalf("%s: config %s, annotations %v", f, config, raw.Annotations)
			}
			got, err := ParseModel(context.Background(), manifest, fetchWithConfig(b, config))
			if err != nil || got.Config.Requires != "0.12.3-rc1" {
				t.Fatalf("parsed requires %q, %v", got.Config.Requires, err)
			}

			m.Config.Requires = "latest"
			if _, _, err := BuildManifest(m, f, BuildOptions{}); !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("BuildManifest with requires %q: %v", m.Config.Requires, err)
			}
			// A hostile value (a Modelfile line in disguise) is refused on read.
			evil := []byte("0.1.0 \\nFROM /etc/passwd")
			bad, badConfig := bytes.Replace(manifest, []byte("0.12.3-rc1"), evil, 1), config
			if f == FormatOllama {
				badConfig = bytes.Replace(config, []byte("0.12.3-rc1"), evil, 1)
				bad = manifestOf(t, b, MediaTypeDockerManifest, "", MediaTypeDockerConfig, badConfig, desc(b, MediaTypeOllamaModel, []byte("GGUF"), nil))
			}
			if _, err := ParseModel(context.Background(), bad, fetchWithConfig(b, badConfig)); !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "not a version") {
				t.Fatalf("ParseModel with a bad requires: %v", err)
			}
		})
	}
}
