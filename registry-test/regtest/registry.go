package regtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/olmhq/olm/internal/testenv"
)

// Options chooses the kind of registry Start runs. The zero value is a plain
// HTTP registry without authentication.
type Options struct {
	// TLS serves HTTPS with a server certificate signed by a CA generated for
	// this registry (see Registry.CAPEM, CertPool, CAFile).
	TLS bool

	// Auth requires htpasswd basic authentication (bcrypt). The credentials
	// are Username and Password.
	Auth bool

	// Token requires bearer tokens (Docker's token flow) from a token
	// service started beside the registry: the registry answers 401 with a
	// Bearer challenge naming the service, the client asks the service for
	// a token (with basic Username/Password), and retries with it. It
	// excludes Auth.
	Token bool

	// AnonymousPull lets clients without credentials get pull-only tokens
	// (with Token; without it, anonymous token requests get 401).
	AnonymousPull bool

	// TokenTTL is the lifetime of issued tokens; zero means 5 minutes.
	TokenTTL time.Duration

	// Username and Password are the credentials when Auth or Token is set.
	// Empty means "olm" and a random password.
	Username, Password string

	// StartTimeout bounds the wait until /v2/ answers; zero means 30s.
	StartTimeout time.Duration
}

// Registry is a running distribution registry process on 127.0.0.1.
type Registry struct {
	// URL is the base URL: "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
	URL string
	// Host is "127.0.0.1:PORT", the registry part of references
	// ("localhost:PORT" with Options.Token).
	Host string
	// TLS, Auth and Token repeat the options the registry runs with.
	TLS, Auth, Token bool
	// Username and Password are the credentials (empty without Auth or Token).
	Username, Password string
	// TokenURL is the token service's realm (empty without Token).
	TokenURL string
	// CAPEM is the PEM of the CA that signed the server certificate (nil without TLS).
	CAPEM []byte
	// CAFile is a file holding CAPEM, for `oras --ca-file` and SSL_CERT_FILE
	// (empty without TLS).
	CAFile string
	// DockerConfig is a folder whose config.json holds the credentials for
	// Host (an empty "auths" without Auth), for DOCKER_CONFIG.
	DockerConfig string
	// StorageDir is the registry's filesystem storage root.
	StorageDir string
	// LogFile receives the registry's output.
	LogFile string

	pool  *x509.CertPool
	token *tokenServer
	cmd   *exec.Cmd
	done  chan struct{}
	once  sync.Once
}

// Start runs a registry for the test and stops it on cleanup. It fails the
// test if the registry does not answer in time; without the registry binary
// it skips the test (fails it under CI=true), see testenv.Tool.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	if opts.Auth && opts.Token {
		t.Fatal("regtest: Options.Auth and Options.Token exclude each other")
	}
	bin := testenv.Tool(t, "registry")
	var lastErr error
	// The port is picked by closing a listener and handing the number to the
	// registry; another process may take it meanwhile, so try again then.
	for attempt := 0; attempt < 3; attempt++ {
		r, err := start(t, bin, opts)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("regtest: %v", lastErr)
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(t testing.TB, bin string, opts Options) (*Registry, error) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Registry{
		Host:         fmt.Sprintf("127.0.0.1:%d", port),
		TLS:          opts.TLS,
		Auth:         opts.Auth,
		Token:        opts.Token,
		StorageDir:   filepath.Join(dir, "storage"),
		DockerConfig: filepath.Join(dir, "docker"),
		LogFile:      filepath.Join(dir, "registry.log"),
		done:         make(chan struct{}),
	}
	scheme := "http"
	var tlsConfig string
	var c *certs
	if opts.TLS {
		scheme = "https"
		if c, err = newCerts(); err != nil {
			return nil, err
		}
		r.CAPEM = c.caPEM
		r.CAFile = filepath.Join(dir, "ca.pem")
		r.pool = x509.NewCertPool()
		r.pool.AppendCertsFromPEM(c.caPEM)
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		for name, data := range map[string][]byte{r.CAFile: c.caPEM, certFile: c.certPEM, keyFile: c.keyPEM} {
			if err := os.WriteFile(name, data, 0o600); err != nil {
				return nil, err
			}
		}
		tlsConfig = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", certFile, keyFile)
	}
	if opts.Token {
		// With token auth the registry is named "localhost:PORT", like the
		// token service's realm (on another port): oras and crane accept a
		// loopback realm only on the registry's own host name.
		r.Host = fmt.Sprintf("localhost:%d", port)
	}
	r.URL = scheme + "://" + r.Host

	var authConfig string
	auths := map[string]any{}
	if opts.Auth || opts.Token {
		r.Username, r.Password = opts.Username, opts.Password
		if r.Username == "" {
			r.Username = "olm"
		}
		if r.Password == "" {
			r.Password = randomHex(12)
		}
		auths[r.Host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))}
	}
	switch {
	case opts.Auth:
		// bcrypt.MinCost keeps each authenticated request fast.
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(r.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		authConfig = fmt.Sprintf("auth:\n  htpasswd:\n    realm: olm-test\n    path: %s\n", htpasswd)
	case opts.Token:
		ts, bundle, err := newTokenServer(r.Username, r.Password, opts.AnonymousPull, opts.TokenTTL)
		if err != nil {
			return nil, err
		}
		var certPEM, keyPEM []byte
		if c != nil {
			certPEM, keyPEM = c.certPEM, c.keyPEM
		}
		tokenURL, stop, err := ts.serve(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		t.Cleanup(stop)
		r.token, r.TokenURL = ts, tokenURL
		bundleFile := filepath.Join(dir, "token-signer.pem")
		if err := os.WriteFile(bundleFile, bundle, 0o600); err != nil {
			return nil, err
		}
		authConfig = fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			tokenURL, tokenService, tokenIssuer, bundleFile)
	}
	if err := os.MkdirAll(r.DockerConfig, 0o700); err != nil {
		return nil, err
	}
	dockerConfig, _ := json.Marshal(map[string]any{"auths": auths})
	if err := os.WriteFile(filepath.Join(r.DockerConfig, "config.json"), dockerConfig, 0o600); err != nil {
		return nil, err
	}

	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  draintimeout: 1s
  headers:
    X-Content-Type-Options: [nosniff]
%s%s`, r.StorageDir, fmt.Sprintf("127.0.0.1:%d", port), randomHex(16), tlsConfig, authConfig)
	configFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		return nil, err
	}

	logf, err := os.Create(r.LogFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", configFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Tracing is off so the registry sends nothing to an OTLP collector.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	r.cmd = cmd
	go func() {
		cmd.Wait()
		logf.Close()
		close(r.done)
	}()
	t.Cleanup(r.Stop)

	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if err := r.waitReady(timeout); err != nil {
		r.Stop()
		return nil, fmt.Errorf("%w\nregistry log:\n%s", err, r.Logs())
	}
	return r, nil
}

// waitReady polls /v2/ until it answers 200 (401 with Auth).
func (r *Registry) waitReady(timeout time.Duration) error {
	client := r.Client()
	client.Timeout = 2 * time.Second
	deadline := time.Now().Add(timeout)
	want := http.StatusOK
	if r.Auth || r.Token {
		want = http.StatusUnauthorized
	}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return fmt.Errorf("registry exited before it answered: %v", r.cmd.ProcessState)
		default:
		}
		resp, err := client.Get(r.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = fmt.Errorf("GET /v2/: %s", resp.Status)
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("registry at %s did not answer within %v: %v", r.URL, timeout, last)
}

// Stop ends the registry process (SIGTERM, then SIGKILL after 5s). It is
// idempotent and runs on test cleanup.
func (r *Registry) Stop() {
	r.once.Do(func() {
		if r.cmd == nil || r.cmd.Process == nil {
			return
		}
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
	})
}

// Logs returns what the registry has written so far.
func (r *Registry) Logs() string {
	data, _ := os.ReadFile(r.LogFile)
	return string(data)
}

// CertPool returns a pool holding the test CA, or nil without TLS.
func (r *Registry) CertPool() *x509.CertPool { return r.pool }

// TLSConfig returns a client TLS config trusting the test CA, or nil
// without TLS.
func (r *Registry) TLSConfig() *tls.Config {
	if r.pool == nil {
		return nil
	}
	return &tls.Config{RootCAs: r.pool, MinVersion: tls.VersionTLS12}
}

// Client returns a new HTTP client that trusts the test CA. It sends no
// credentials by itself: use SetAuth or a registry client's auth.
func (r *Registry) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = r.TLSConfig()
	return &http.Client{Transport: tr}
}

// SetAuth adds the registry's credentials to req: basic auth with Auth; with
// Token, a bearer token from the token service for the repository in the
// request's path (pull and push), or for the catalog. Without either it
// adds nothing; if getting a token fails, it adds nothing either and the
// registry answers 401.
func (r *Registry) SetAuth(req *http.Request) {
	switch {
	case r.Auth:
		req.SetBasicAuth(r.Username, r.Password)
	case r.Token:
		scope := "registry:catalog:*"
		if name, ok := repoOf(req.URL.Path); ok {
			scope = "repository:" + name + ":pull,push"
		}
		if tok, err := r.BearerToken(req.Context(), scope); err == nil {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
}

// repoOf finds the repository name in a /v2/<name>/{blobs,manifests,tags}/… path.
func repoOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", false
	}
	for _, sep := range []string{"/blobs/", "/manifests/", "/tags/"} {
		if i := strings.LastIndex(rest, sep); i > 0 {
			return rest[:i], true
		}
	}
	return "", false
}

// BearerToken asks the token service for a token with the registry's
// credentials for scope (such as "repository:team/m:pull"). It fails
// without Token.
func (r *Registry) BearerToken(ctx context.Context, scope string) (string, error) {
	if !r.Token {
		return "", errors.New("regtest: the registry does not use token auth")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.TokenURL+"?service="+tokenService+"&scope="+url.QueryEscape(scope), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(r.Username, r.Password)
	resp, err := r.Client().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("regtest: token service: %s", resp.Status)
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.Token, nil
}

// TokensIssued returns how many tokens the token service has issued (0
// without Token), to check that clients reuse tokens.
func (r *Registry) TokensIssued() int64 {
	if r.token == nil {
		return 0
	}
	return r.token.issued.Load()
}

// TokenScopes returns the scope parameters of the token requests so far.
func (r *Registry) TokenScopes() []string {
	if r.token == nil {
		return nil
	}
	r.token.mu.Lock()
	defer r.token.mu.Unlock()
	return append([]string(nil), r.token.scopes...)
}

// Ref returns the reference "HOST/repo:tag" (or "HOST/repo@digest" when tag
// starts with "sha256:").
func (r *Registry) Ref(repo, tag string) string {
	if strings.HasPrefix(tag, "sha256:") {
		return r.Host + "/" + repo + "@" + tag
	}
	return r.Host + "/" + repo + ":" + tag
}

// Env returns environment entries that make oras, crane and olm use this
// registry's credentials and trust its CA: DOCKER_CONFIG, and SSL_CERT_FILE
// with TLS (Go programs on Linux then trust only that CA).
func (r *Registry) Env() []string {
	env := []string{"DOCKER_CONFIG=" + r.DockerConfig}
	if r.CAFile != "" {
		env = append(env, "SSL_CERT_FILE="+r.CAFile)
	}
	return env
}

// Do sends a request with the registry's credentials and returns the
// response, for tests that talk to the registry API directly.
func (r *Registry) Do(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	r.SetAuth(req)
	return r.Client().Do(req)
}

// ErrUpload is returned by PushBlob when the registry refuses an upload.
var ErrUpload = errors.New("regtest: blob upload failed")

// ToolFlags returns the flags the oras or crane CLI needs for this
// registry, to append to its arguments: for oras "--plain-http" or, with
// TLS, "--plain-http=false" (oras talks plain HTTP to localhost unless told
// otherwise); for crane "--insecure" for a plain-HTTP registry. Env's
// SSL_CERT_FILE makes both trust the test CA.
func (r *Registry) ToolFlags(tool string) []string {
	switch tool {
	case "oras":
		if r.TLS {
			return []string{"--plain-http=false"}
		}
		return []string{"--plain-http"}
	case "crane":
		if !r.TLS {
			return []string{"--insecure"}
		}
	}
	return nil
}

// Tool runs the oras or crane CLI (testenv.Tool finds it) in dir with args
// and this registry's ToolFlags, in an environment with Env added, and
// returns its combined output; it fails the test, with that output, if the
// CLI fails.
func (r *Registry) Tool(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	args = append(args, r.ToolFlags(name)...)
	cmd := exec.Command(testenv.Tool(t, name), args...)
	cmd.Env = append(os.Environ(), r.Env()...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
