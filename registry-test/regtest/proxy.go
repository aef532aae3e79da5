package regtest

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Proxy is a plain-HTTP reverse proxy on 127.0.0.1 in front of a Registry,
// for failure tests: it can cut blob downloads after N bytes and corrupt
// blob bodies, and it records the requests it sees. The registry's
// Location headers name the proxy, so uploads through it work too. Its
// methods are safe for concurrent use.
type Proxy struct {
	// URL is "http://127.0.0.1:PORT"; Host is "127.0.0.1:PORT". Being on
	// loopback, olm talks plain HTTP to it without --insecure.
	URL, Host string

	mu        sync.Mutex
	dropAfter int64
	drops     int // blob GETs still to cut; <0 means all
	corrupts  int
	requests  []Request
	overrides map[string]http.Handler
	redirect  bool
	cdnURL    string
	cdnReqs   []CDNRequest
}

// CDNRequest is one request the proxy's CDN server received.
type CDNRequest struct {
	Path string
	// Authorization is the request's Authorization header: a client that
	// follows a redirect to another host must not send one.
	Authorization string
	// Range is the request's Range header ("" if none).
	Range string
}

// Request is one request the proxy saw.
type Request struct {
	Method string
	Path   string
	// Range is the request's Range header ("" if none).
	Range string
	// Status is the registry's response status, or -1 for a request the
	// proxy answered itself (Handle, ServeManifest, RedirectBlobs).
	Status int
	// Cut reports whether the proxy cut or corrupted the response body.
	Cut bool
}

var blobPathRE = regexp.MustCompile(`^/v2/.+/blobs/sha256:[0-9a-f]{64}$`)

// NewProxy starts a proxy in front of reg and stops it on cleanup.
func NewProxy(t testing.TB, reg *Registry) *Proxy {
	t.Helper()
	target, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Host: l.Addr().String()}
	p.URL = "http://" + p.Host
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = reg.TLSConfig()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// The registry builds Location URLs from Host and
			// X-Forwarded-Proto: make them point back at the proxy.
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set("X-Forwarded-Proto", "http")
		},
		Transport: tr,
		ModifyResponse: func(resp *http.Response) error {
			req := resp.Request
			rec := Request{Method: req.Method, Path: req.URL.Path, Range: req.Header.Get("Range"), Status: resp.StatusCode}
			if req.Method == http.MethodGet && blobPathRE.MatchString(req.URL.Path) &&
				(resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent) {
				p.mu.Lock()
				switch {
				case p.drops != 0:
					if p.drops > 0 {
						p.drops--
					}
					resp.Body = &cutBody{r: resp.Body, left: p.dropAfter}
					rec.Cut = true
				case p.corrupts != 0:
					if p.corrupts > 0 {
						p.corrupts--
					}
					resp.Body = &flipBody{r: resp.Body}
					rec.Cut = true
				}
				p.mu.Unlock()
			}
			p.mu.Lock()
			p.requests = append(p.requests, rec)
			p.mu.Unlock()
			return nil
		},
		// Flush every write, so a cut body has really sent its first n bytes.
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.startCDN(t, reg)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		h := p.overrides[r.URL.Path]
		if h == nil && p.redirect && (r.Method == http.MethodGet || r.Method == http.MethodHead) && blobPathRE.MatchString(r.URL.Path) {
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, p.cdnURL+"/cdn"+r.URL.Path+"?sig="+randomHex(8), http.StatusTemporaryRedirect)
			})
		}
		if h != nil {
			p.requests = append(p.requests, Request{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), Status: -1})
		}
		p.mu.Unlock()
		if h != nil {
			h.ServeHTTP(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// DropBlobsAfter makes the next count blob GETs (count < 0: all of them)
// end after n bytes of body: the connection is closed while the client
// still expects the rest (Content-Length is the full size).
func (p *Proxy) DropBlobsAfter(n int64, count int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropAfter, p.drops = n, count
}

// CorruptBlobs makes the next count blob GETs (count < 0: all) return
// bodies of the right length with one byte changed, so their digest no
// longer matches.
func (p *Proxy) CorruptBlobs(count int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.corrupts = count
}

// Requests returns the requests forwarded so far.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// Ref returns "HOST/repo:tag" for the proxy (or "HOST/repo@digest").
func (p *Proxy) Ref(repo, tag string) string {
	return (&Registry{Host: p.Host}).Ref(repo, tag)
}

// cutBody reads left bytes and then fails, so the proxy aborts the
// connection mid-body.
type cutBody struct {
	r    io.ReadCloser
	left int64
}

func (c *cutBody) Read(b []byte) (int, error) {
	if c.left <= 0 {
		// ReverseProxy panics with http.ErrAbortHandler on a body read
		// error after the headers went out, which closes the connection.
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= int64(n)
	return n, err
}

func (c *cutBody) Close() error { return c.r.Close() }

// flipBody changes the first byte of a body.
type flipBody struct {
	r       io.ReadCloser
	flipped bool
}

func (f *flipBody) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if n > 0 && !f.flipped {
		b[0] ^= 0xff
		f.flipped = true
	}
	return n, err
}

func (f *flipBody) Close() error { return f.r.Close() }

// Handle answers requests for exactly this URL path (such as
// "/v2/team/m/manifests/v1") with h instead of the registry, for responses
// a real registry would never give. h == nil removes the override.
func (p *Proxy) Handle(path string, h http.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.overrides == nil {
		p.overrides = map[string]http.Handler{}
	}
	if h == nil {
		delete(p.overrides, path)
		return
	}
	p.overrides[path] = h
}

// ServeManifest makes GET and HEAD of repo's manifest ref (a tag or digest)
// answer with body as mediaType, with a Docker-Content-Digest of body. The
// registry never sees it, so the manifest may be one it would refuse (a
// layer digest such as "sha256:../../x", sizes that lie).
func (p *Proxy) ServeManifest(repo, ref, mediaType string, body []byte) {
	d := digest.SHA256.FromBytes(body)
	p.Handle("/v2/"+repo+"/manifests/"+ref, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "regtest proxy: read-only manifest", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", mediaType)
		w.Header().Set("Docker-Content-Digest", d.String())
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	}))
}

// RedirectBlobs makes blob GETs and HEADs through the proxy answer 307
// Temporary Redirect to a CDN server on another host name ("localhost" for
// a proxy on 127.0.0.1), which serves the blob (and Range requests) from the
// registry. Clients must follow the redirect without sending their
// registry credentials; CDNRequests shows what they sent.
func (p *Proxy) RedirectBlobs(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirect = on
}

// CDNRequests returns the requests the CDN server has received.
func (p *Proxy) CDNRequests() []CDNRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]CDNRequest(nil), p.cdnReqs...)
}

// startCDN runs the CDN server of RedirectBlobs. It reads blobs from the
// registry with the registry's own credentials, so what it serves is real.
func (p *Proxy) startCDN(t testing.TB, reg *Registry) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.cdnURL = fmt.Sprintf("http://localhost:%d", l.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.cdnReqs = append(p.cdnReqs, CDNRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Range: r.Header.Get("Range")})
		p.mu.Unlock()
		path, ok := strings.CutPrefix(r.URL.Path, "/cdn")
		if !ok || !blobPathRE.MatchString(path) || r.URL.Query().Get("sig") == "" {
			http.NotFound(w, r)
			return
		}
		h := http.Header{}
		if rg := r.Header.Get("Range"); rg != "" {
			h.Set("Range", rg)
		}
		resp, err := reg.Do(r.Context(), r.Method, path, nil, h)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for _, k := range []string{"Content-Length", "Content-Range", "Content-Type", "Accept-Ranges", "Docker-Content-Digest", "Etag"} {
			if v := resp.Header.Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}
