package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/registry-test/regtest"
)

// fetcher reads blobs of repo from the registry, bounded by their size.
func fetcher(reg *regtest.Registry, repo string) oci.Fetcher {
	return func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
		resp, err := reg.Do(ctx, http.MethodGet, "/v2/"+repo+"/blobs/"+d.Digest.String(), nil, nil)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET blob %s: %s", d.Digest, resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, d.Size+1))
	}
}

func fileDigest(t *testing.T, path string) (digest.Digest, int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return digest.Digest("sha256:" + hex.EncodeToString(sum[:])), int64(len(data))
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOrasPushedModelPack: a ModelPack artifact made and pushed by the oras
// CLI alone (a real ModelPack config, GGUF weights, a template layer) is
// read by oci.ParseModel.
func TestOrasPushedModelPack(t *testing.T) {
	for _, opts := range []regtest.Options{{}, {TLS: true, Auth: true}} {
		t.Run(fmt.Sprintf("tls=%v", opts.TLS), func(t *testing.T) {
			reg := regtest.Start(t, opts)
			dir := t.TempDir()
			copyFile(t, testmodel.Tiny(t), filepath.Join(dir, "tiny.gguf"))
			config := `{"descriptor":{"name":"tiny","family":"llama","licenses":["MIT"]},"modelfs":{"type":"layers","diffIds":[]},"config":{"architecture":"llama","format":"gguf","paramSize":"0.5M","quantization":"F16","capabilities":{"inputTypes":["text"],"outputTypes":["text"]}}}`
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644)
			os.WriteFile(filepath.Join(dir, "template"), []byte("{{ .Prompt }}"), 0o644)
			reg.Tool(t, dir, "oras", "push",
				"--artifact-type", oci.ArtifactTypeModelPack,
				"--config", "config.json:"+oci.MediaTypeModelPackConfig,
				reg.Ref("team/tiny", "v1"),
				"tiny.gguf:"+oci.MediaTypeModelPackWeightRaw,
				"template:"+oci.MediaTypeOllamaTemplate)

			ctx := context.Background()
			manifest, mt, err := reg.GetManifest(ctx, "team/tiny", "v1")
			if err != nil {
				t.Fatal(err)
			}
			if f, err := oci.DetectFormat(manifest, mt); err != nil || f != oci.FormatModelPack {
				t.Fatalf("DetectFormat = %q, %v", f, err)
			}
			m, err := oci.ParseModel(ctx, manifest, fetcher(reg, "team/tiny"))
			if err != nil {
				t.Fatal(err)
			}
			d, n := fileDigest(t, filepath.Join(dir, "tiny.gguf"))
			if len(m.Weights) != 1 || m.Weights[0].Filename != "tiny.gguf" || m.Weights[0].Digest != d || m.Weights[0].Size != n {
				t.Fatalf("weights: %+v", m.Weights)
			}
			if m.Template == nil || string(m.Template.Data) != "{{ .Prompt }}" {
				t.Fatalf("template: %+v", m.Template)
			}
			want := oci.Config{Name: "tiny", Family: "llama", Architecture: "llama", Format: "gguf", ParamSize: "0.5M",
				Quantization: "F16", Capabilities: []string{"completion"}, Licenses: []string{"MIT"}}
			want.Created = m.Config.Created // oras stamps its own time
			if !reflect.DeepEqual(m.Config, want) {
				t.Fatalf("config %+v, want %+v", m.Config, want)
			}
		})
	}
}

// model builds the view of the tiny GGUF plus Modelfile layers, pushing the
// blobs to repo.
func model(t *testing.T, reg *regtest.Registry, repo string) (oci.Model, string) {
	t.Helper()
	ctx := context.Background()
	path := testmodel.Tiny(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	push := func(name string, b []byte) oci.Layer {
		d, err := reg.PushBlob(ctx, repo, b)
		if err != nil {
			t.Fatal(err)
		}
		return oci.Layer{Digest: d, Size: int64(len(b)), Filename: name}
	}
	small := func(name, text string) *oci.Layer {
		l := push(name, []byte(text))
		l.Data = []byte(text)
		return &l
	}
	m := oci.Model{
		Config: oci.Config{
			Name: "tiny", Family: "llama", Architecture: "llama", Format: "gguf", ParamSize: "0.5M",
			Quantization: "F16", Capabilities: []string{"completion"}, Created: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		},
		Weights:  []oci.Layer{push("tiny.gguf", data)},
		Template: small("template", "{{ .Prompt }}"),
		System:   small("system", "Be brief."),
		Params:   small("params.json", `{"temperature":0.1}`),
		Licenses: []oci.Layer{*small("LICENSE", "MIT License")},
	}
	return m, path
}

// TestOlmManifestsThroughCraneAndOras: manifests of every format olm writes
// are accepted by the registry, read back byte for byte by crane, copied by
// crane to another repository unchanged, parsed back by oci.ParseModel, and
// `oras pull` writes the GGUF out under its file name.
func TestOlmManifestsThroughCraneAndOras(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{TLS: true, Auth: true})
	ctx := context.Background()
	for _, f := range oci.WritableFormats {
		t.Run(string(f), func(t *testing.T) {
			repo := "olm/" + string(f)
			m, ggufPath := model(t, reg, repo)
			manifest, config, err := oci.BuildManifest(m, f, oci.BuildOptions{Created: m.Config.Created})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.PushBlob(ctx, repo, config); err != nil {
				t.Fatal(err)
			}
			md, err := reg.PushManifest(ctx, repo, "v1", f.ManifestMediaType(), manifest)
			if err != nil {
				t.Fatal(err)
			}

			// crane reads exactly what olm wrote.
			dir := t.TempDir()
			got := reg.Tool(t, dir, "crane", "manifest", reg.Ref(repo, "v1"))
			if got != string(manifest) {
				t.Fatalf("crane manifest differs:\n%s\n%s", got, manifest)
			}
			if d := strings.TrimSpace(reg.Tool(t, dir, "crane", "digest", reg.Ref(repo, "v1"))); d != md.String() {
				t.Fatalf("crane digest %s, want %s", d, md)
			}
			// crane copies it to another repository unchanged.
			reg.Tool(t, dir, "crane", "copy", reg.Ref(repo, "v1"), reg.Ref(repo+"-copy", "v1"))
			copied, _, err := reg.GetManifest(ctx, repo+"-copy", "v1")
			if err != nil || !bytes.Equal(copied, manifest) {
				t.Fatalf("crane copy changed the manifest (%v):\n%s", err, copied)
			}
			back, err := oci.ParseModel(ctx, copied, fetcher(reg, repo+"-copy"))
			if err != nil {
				t.Fatal(err)
			}
			if back.Format != f || back.Weights[0].Digest != m.Weights[0].Digest || string(back.System.Data) != "Be brief." ||
				back.Config.Quantization != "F16" || len(back.Licenses) != 1 {
				t.Fatalf("parsed back: %+v", back)
			}

			// oras pull writes titled layers out; the GGUF arrives intact
			// under its name (Ollama manifests carry no names: nothing to write).
			reg.Tool(t, dir, "oras", "pull", "-o", "out", reg.Ref(repo, "v1"))
			pulled := filepath.Join(dir, "out", "tiny.gguf")
			if f == oci.FormatOllama {
				if _, err := os.Stat(pulled); err == nil {
					t.Fatal("oras wrote a file for an Ollama manifest without titles")
				}
				return
			}
			pd, _ := fileDigest(t, pulled)
			wd, _ := fileDigest(t, ggufPath)
			if pd != wd {
				t.Fatalf("oras pulled %s, want %s", pd, wd)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "out", "params.json")); err != nil || string(b) != `{"temperature":0.1}` {
				t.Fatalf("params.json: %q, %v", b, err)
			}
		})
	}
}

// TestThirdPartyFormatsFromRegistry pushes manifests shaped like Ollama's,
// Docker Model Runner's (v0.1) and a KitOps ModelKit, with their real media
// types and config fields, and reads them back from the registry.
func TestThirdPartyFormatsFromRegistry(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	ctx := context.Background()
	gguf, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	push := func(repo, mediaType string, b []byte, ann map[string]string) ocispec.Descriptor {
		d, err := reg.PushBlob(ctx, repo, b)
		if err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b)), Annotations: ann}
	}
	manifestOf := func(repo, mediaType, artifactType string, config ocispec.Descriptor, layers ...ocispec.Descriptor) []byte {
		m := map[string]any{"schemaVersion": 2, "mediaType": mediaType, "config": config, "layers": layers}
		if artifactType != "" {
			m["artifactType"] = artifactType
		}
		b, _ := json.Marshal(m)
		if _, err := reg.PushManifest(ctx, repo, "latest", mediaType, b); err != nil {
			t.Fatal(err)
		}
		got, _, err := reg.GetManifest(ctx, repo, "latest")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// Ollama, as registry.ollama.ai serves it.
	cfg := push("library/tiny", oci.MediaTypeDockerConfig, []byte(`{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"0.5M","file_type":"F16","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), nil)
	man := manifestOf("library/tiny", oci.MediaTypeDockerManifest, "", cfg,
		push("library/tiny", oci.MediaTypeOllamaModel, gguf, nil),
		push("library/tiny", oci.MediaTypeOllamaParams, []byte(`{"stop":["</s>"]}`), nil))
	m, err := oci.ParseModel(ctx, man, fetcher(reg, "library/tiny"))
	if err != nil || m.Format != oci.FormatOllama || m.Config.ParamSize != "0.5M" || string(m.Params.Data) != `{"stop":["</s>"]}` {
		t.Fatalf("ollama: %+v, %v", m, err)
	}

	// Docker Model Runner v0.1.
	cfg = push("ai/tiny", oci.MediaTypeDockerModelConfigV01, []byte(`{"config":{"format":"gguf","quantization":"F16","parameters":"0.5M","architecture":"llama","size":"1.67MiB"},"descriptor":{"created":"2025-04-01T10:00:00Z"},"rootfs":{"type":"rootfs","diff_ids":[]}}`), nil)
	man = manifestOf("ai/tiny", oci.MediaTypeOCIManifest, "", cfg,
		push("ai/tiny", oci.MediaTypeDockerGGUF, gguf, nil),
		push("ai/tiny", oci.MediaTypeDockerLicense, []byte("MIT"), nil))
	m, err = oci.ParseModel(ctx, man, fetcher(reg, "ai/tiny"))
	if err != nil || m.Format != oci.FormatDockerV01 || m.Config.Architecture != "llama" || string(m.Licenses[0].Data) != "MIT" {
		t.Fatalf("docker: %+v, %v", m, err)
	}

	// A plain container image is refused with the media types named.
	cfg = push("busybox", ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), nil)
	man = manifestOf("busybox", oci.MediaTypeOCIManifest, "", cfg, push("busybox", ocispec.MediaTypeImageLayerGzip, []byte("not really gzip"), nil))
	if _, err := oci.ParseModel(ctx, man, fetcher(reg, "busybox")); err == nil || !strings.Contains(err.Error(), ocispec.MediaTypeImageLayerGzip) {
		t.Fatalf("container image: %v", err)
	}
}
