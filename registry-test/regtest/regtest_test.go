package regtest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olmhq/olm/internal/testenv"
)

func get(t *testing.T, c *http.Client, url, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPlainHTTP(t *testing.T) {
	reg := Start(t, Options{})
	if !strings.HasPrefix(reg.URL, "http://127.0.0.1:") || reg.CAPEM != nil || reg.Auth {
		t.Fatalf("unexpected registry %+v", reg)
	}
	if code := get(t, reg.Client(), reg.URL+"/v2/", "", ""); code != http.StatusOK {
		t.Fatalf("GET /v2/ = %d", code)
	}
	ctx := context.Background()
	d, err := reg.PushBlob(ctx, "team/model", []byte("GGUF blob"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := reg.Do(ctx, http.MethodGet, "/v2/team/model/blobs/"+d.String(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "GGUF blob" {
		t.Fatalf("blob = %q", body)
	}
	// Stop is idempotent and really ends the process.
	reg.Stop()
	reg.Stop()
	if _, err := reg.Client().Get(reg.URL + "/v2/"); err == nil {
		t.Fatal("registry still answers after Stop")
	}
}

func TestTLSAndAuth(t *testing.T) {
	reg := Start(t, Options{TLS: true, Auth: true})
	if !strings.HasPrefix(reg.URL, "https://") || reg.Username == "" || reg.Password == "" {
		t.Fatalf("unexpected registry %+v", reg)
	}
	c := reg.Client()
	if code := get(t, c, reg.URL+"/v2/", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous GET /v2/ = %d, want 401", code)
	}
	if code := get(t, c, reg.URL+"/v2/", reg.Username, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("GET /v2/ with a bad password = %d, want 401", code)
	}
	if code := get(t, c, reg.URL+"/v2/", "nobody", reg.Password); code != http.StatusUnauthorized {
		t.Fatalf("GET /v2/ with a bad user = %d, want 401", code)
	}
	if code := get(t, c, reg.URL+"/v2/", reg.Username, reg.Password); code != http.StatusOK {
		t.Fatalf("GET /v2/ with the credentials = %d, want 200", code)
	}
	// A client that does not trust the test CA is refused.
	if _, err := http.Get(reg.URL + "/v2/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted client: %v", err)
	}
	// localhost is in the certificate too.
	local := strings.Replace(reg.URL, "127.0.0.1", "localhost", 1)
	if code := get(t, c, local+"/v2/", reg.Username, reg.Password); code != http.StatusOK {
		t.Fatalf("GET via localhost = %d", code)
	}
	data, err := os.ReadFile(filepath.Join(reg.DockerConfig, "config.json"))
	if err != nil || !strings.Contains(string(data), reg.Host) {
		t.Fatalf("docker config: %s, %v", data, err)
	}
}

// TestOrasAndCrane checks that the CLIs work against the TLS+auth registry
// with nothing but Env: oras pushes with the DOCKER_CONFIG credentials and
// the CA, crane reads the manifest back.
func TestOrasAndCrane(t *testing.T) {
	oras := testenv.Tool(t, "oras")
	crane := testenv.Tool(t, "crane")
	reg := Start(t, Options{TLS: true, Auth: true})
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), reg.Env()...)
		cmd.Dir = t.TempDir()
		if err := os.WriteFile(filepath.Join(cmd.Dir, "model.gguf"), []byte("GGUF tiny"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
		}
		return string(out)
	}
	if out := run(oras, "version"); !strings.Contains(out, "1.3") {
		t.Fatalf("oras version: %s", out)
	}
	run(oras, "push", "--artifact-type", "application/vnd.cncf.model.manifest.v1+json",
		reg.Ref("team/model", "v1"), "model.gguf:application/vnd.cncf.model.weight.v1.raw")
	manifest := run(crane, "manifest", reg.Ref("team/model", "v1"))
	if !strings.Contains(manifest, "application/vnd.cncf.model.weight.v1.raw") || !strings.Contains(manifest, `"model.gguf"`) {
		t.Fatalf("crane manifest: %s", manifest)
	}
	// Without the credentials oras is refused.
	cmd := exec.Command(oras, "manifest", "fetch", "--ca-file", reg.CAFile, reg.Ref("team/model", "v1"))
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("oras without credentials succeeded: %s", out)
	}
}

func TestProxyCutsAndCorruptsBlobs(t *testing.T) {
	reg := Start(t, Options{TLS: true, Auth: true})
	ctx := context.Background()
	blob := []byte(strings.Repeat("0123456789abcdef", 64<<10)) // 1 MiB
	d, err := reg.PushBlob(ctx, "m", blob)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, reg)
	fetch := func() ([]byte, error) {
		req, _ := http.NewRequest(http.MethodGet, p.URL+"/v2/m/blobs/"+d.String(), nil)
		reg.SetAuth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %s", resp.Status)
		}
		return io.ReadAll(resp.Body)
	}

	p.DropBlobsAfter(1000, 1)
	got, err := fetch()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 1000 {
		t.Fatalf("cut fetch: %d bytes, %v; want 1000 bytes and unexpected EOF", len(got), err)
	}
	// Only one was to be cut: the next is whole.
	got, err = fetch()
	if err != nil || sha256.Sum256(got) != sha256.Sum256(blob) {
		t.Fatalf("second fetch: %d bytes, %v", len(got), err)
	}
	p.CorruptBlobs(1)
	got, err = fetch()
	if err != nil || len(got) != len(blob) || string(got) == string(blob) {
		t.Fatalf("corrupt fetch: %d bytes, %v, equal %v", len(got), err, string(got) == string(blob))
	}
	reqs := p.Requests()
	if len(reqs) != 3 || !reqs[0].Cut || reqs[1].Cut || !reqs[2].Cut {
		t.Fatalf("requests: %+v", reqs)
	}

	// Uploads through the proxy work: the registry's Location points at it.
	viaProxy := &Registry{URL: p.URL, Host: p.Host, Auth: true, Username: reg.Username, Password: reg.Password}
	if _, err := viaProxy.PushBlob(ctx, "m", []byte("through the proxy")); err != nil {
		t.Fatal(err)
	}
}

func TestProxyServesManifestsTheRegistryRefuses(t *testing.T) {
	reg := Start(t, Options{})
	p := NewProxy(t, reg)
	bad := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"sha256:../../x","size":1}]}`)
	p.ServeManifest("m", "evil", "application/vnd.oci.image.manifest.v1+json", bad)
	via := &Registry{URL: p.URL, Host: p.Host}
	got, mt, err := via.GetManifest(context.Background(), "m", "evil")
	if err != nil || string(got) != string(bad) || mt != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("got %q %q %v", got, mt, err)
	}
	// Other paths still reach the registry.
	if _, _, err := via.GetManifest(context.Background(), "m", "missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing manifest: %v", err)
	}
	reqs := p.Requests()
	if len(reqs) != 2 || reqs[0].Status != -1 || reqs[1].Status != http.StatusNotFound {
		t.Fatalf("requests %+v", reqs)
	}
	// The registry itself refuses such a manifest.
	if _, err := reg.PushManifest(context.Background(), "m", "evil", "application/vnd.oci.image.manifest.v1+json", bad); err == nil {
		t.Fatal("the registry accepted a manifest with a traversal digest")
	}
}

func TestTokenAuth(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			reg := Start(t, Options{TLS: tlsOn, Token: true, AnonymousPull: true})
			ctx := context.Background()
			c := reg.Client()
			resp, err := c.Get(reg.URL + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer ") ||
				!strings.Contains(challenge, `realm="`+reg.TokenURL+`"`) || !strings.Contains(challenge, `service="olm-test-registry"`) {
				t.Fatalf("GET /v2/: %d %q", resp.StatusCode, challenge)
			}
			// Basic credentials are not accepted by the registry itself.
			if code := get(t, c, reg.URL+"/v2/", reg.Username, reg.Password); code != http.StatusUnauthorized {
				t.Fatalf("basic auth on a token registry: %d", code)
			}
			// The helpers get tokens: push and read back.
			d, err := reg.PushBlob(ctx, "team/m", []byte("GGUF token"))
			if err != nil {
				t.Fatal(err)
			}
			if n := reg.TokensIssued(); n < 2 {
				t.Fatalf("%d tokens issued", n)
			}
			// A wrong password gets no token.
			bad := &Registry{URL: reg.URL, Host: reg.Host, Token: true, TokenURL: reg.TokenURL, Username: reg.Username, Password: "wrong", pool: reg.pool}
			if _, err := bad.BearerToken(ctx, "repository:team/m:pull"); err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("token with a bad password: %v", err)
			}
			// Anonymous clients get pull-only tokens: reading works, writing does not.
			req, _ := http.NewRequest(http.MethodGet, reg.TokenURL+"?service=olm-test-registry&scope=repository:team/m:pull,push", nil)
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var tok struct{ Token string }
			json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			for _, tc := range []struct {
				method, path string
				want         int
			}{
				{http.MethodGet, "/v2/team/m/blobs/" + d.String(), http.StatusOK},
				{http.MethodPost, "/v2/team/m/blobs/uploads/", http.StatusUnauthorized},
			} {
				req, _ := http.NewRequest(tc.method, reg.URL+tc.path, nil)
				req.Header.Set("Authorization", "Bearer "+tok.Token)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("anonymous %s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
				}
			}
			// A token signed by someone else is refused.
			forged, _, _ := newTokenServer("x", "y", true, 0)
			ftok, _ := forged.sign(map[string]any{"iss": tokenIssuer, "aud": tokenService, "exp": 9999999999,
				"access": []accessClaim{{Type: "repository", Name: "team/m", Actions: []string{"pull"}}}})
			req, _ = http.NewRequest(http.MethodGet, reg.URL+"/v2/team/m/blobs/"+d.String(), nil)
			req.Header.Set("Authorization", "Bearer "+ftok)
			if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("forged token: %v %v", resp.StatusCode, err)
			}

			// oras and crane do the token flow with the DOCKER_CONFIG credentials.
			oras, crane := testenv.Tool(t, "oras"), testenv.Tool(t, "crane")
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "model.gguf"), []byte("GGUF"), 0o644)
			for _, args := range [][]string{
				append([]string{oras, "push", reg.Ref("team/m", "v1"), "model.gguf"}, reg.ToolFlags("oras")...),
				append([]string{crane, "manifest", reg.Ref("team/m", "v1")}, reg.ToolFlags("crane")...),
			} {
				cmd := exec.Command(args[0], args[1:]...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), reg.Env()...)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
			}
			if !strings.Contains(strings.Join(reg.TokenScopes(), " "), "repository:team/m:") {
				t.Fatalf("scopes: %v", reg.TokenScopes())
			}
		})
	}
}

func TestProxyRedirectsBlobsToCDN(t *testing.T) {
	reg := Start(t, Options{Auth: true})
	ctx := context.Background()
	blob := []byte(strings.Repeat("cdn!", 1000))
	d, err := reg.PushBlob(ctx, "m", blob)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, reg)
	p.RedirectBlobs(true)
	for _, rg := range []string{"", "bytes=100-199"} {
		req, _ := http.NewRequest(http.MethodGet, p.URL+"/v2/m/blobs/"+d.String(), nil)
		reg.SetAuth(req)
		if rg != "" {
			req.Header.Set("Range", rg)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want, code := blob, http.StatusOK
		if rg != "" {
			want, code = blob[100:200], http.StatusPartialContent
		}
		if resp.StatusCode != code || string(body) != string(want) || !strings.HasPrefix(resp.Request.URL.Host, "localhost:") {
			t.Fatalf("range %q: %s, %d bytes from %s", rg, resp.Status, len(body), resp.Request.URL)
		}
	}
	cdn := p.CDNRequests()
	if len(cdn) != 2 || cdn[0].Authorization != "" || cdn[1].Range != "bytes=100-199" {
		t.Fatalf("CDN requests %+v", cdn)
	}
	// A client that leaks credentials across hosts would be seen.
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/v2/m/blobs/"+d.String(), nil)
	leaky := &http.Client{CheckRedirect: func(r *http.Request, via []*http.Request) error {
		r.Header.Set("Authorization", via[0].Header.Get("Authorization"))
		return nil
	}}
	reg.SetAuth(req)
	resp, err := leaky.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cdn := p.CDNRequests(); cdn[2].Authorization == "" {
		t.Fatal("the CDN did not record the leaked Authorization header")
	}
}
