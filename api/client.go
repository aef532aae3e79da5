package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultHost is the server address used when none is given: Ollama's port
// on the loopback interface.
const DefaultHost = "127.0.0.1:11434"

// maxStreamLine bounds one object of a stream (a streamed chunk, a final
// object with a long context array). A bigger line is an error, not an
// allocation the server chooses.
const maxStreamLine = 64 << 20

// Client talks to an olm (or Ollama) server. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	http   *http.Client
	apiKey string
}

// ParseHost turns an OLM_HOST/OLLAMA_HOST style value into the server's
// base URL: "host", "host:port", ":port", "scheme://host[:port][/path]".
// Without a scheme the URL is http on port 11434; with an explicit scheme
// and no port, the scheme's port (80 or 443). An empty host or a wildcard
// bind address (0.0.0.0, ::) is reached on the loopback address.
func ParseHost(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = DefaultHost
	}
	scheme, rest := "http", s
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = strings.ToLower(s[:i]), s[i+3:]
	}
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("host %q: scheme must be http or https", s)
	}
	path := ""
	if i := strings.Index(rest, "/"); i >= 0 {
		rest, path = rest[:i], strings.TrimRight(rest[i:], "/")
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		host, port = strings.Trim(rest, "[]"), ""
		if port == "" {
			port = "11434"
			if strings.Contains(s, "://") {
				if scheme == "https" {
					port = "443"
				} else {
					port = "80"
				}
			}
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("host %q: invalid port %q", s, port)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: path}, nil
}

// ClientOptions configure NewClient. The zero value uses
// http.DefaultClient and no API key.
type ClientOptions struct {
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// APIKey, when set, is sent as "Authorization: Bearer <APIKey>".
	APIKey string
}

// NewClient returns a client for the server at base (see ParseHost).
func NewClient(base *url.URL, opts ClientOptions) *Client {
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	u := *base
	return &Client{base: &u, http: hc, apiKey: opts.APIKey}
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() *url.URL { u := *c.base; return &u }

func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		if rd, ok := body.(io.Reader); ok {
			r = rd
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			r = bytes.NewReader(b)
		}
	}
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		if _, ok := body.(io.Reader); ok {
			req.Header.Set("Content-Type", "application/octet-stream")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	req.Header.Set("Accept", "application/json, application/x-ndjson")
	req.Header.Set("User-Agent", "olm-go-client")
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	return req, nil
}

// send sends a request and turns an answer with a status of 300 or more
// into a *StatusError. The caller closes the body of the response it gets.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if err := checkResponse(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// do sends a request and decodes a single JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

func checkResponse(resp *http.Response) error {
	if resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	se := &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	var er ErrorResponse
	if json.Unmarshal(body, &er) == nil && er.Error != "" {
		se.ErrorMessage = er.Error
	} else {
		se.ErrorMessage = strings.TrimSpace(string(body))
	}
	return se
}

// stream sends a request and calls fn for every newline-delimited JSON
// object of the answer. An object with an "error" field ends the stream
// with that error.
func stream[T any](ctx context.Context, c *Client, path string, in any, fn func(T) error) error {
	resp, err := c.send(ctx, http.MethodPost, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var er ErrorResponse
		if json.Unmarshal(line, &er) == nil && er.Error != "" {
			return &StatusError{ErrorMessage: er.Error}
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("decode %s stream: %w", path, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s: stream object larger than %d bytes", path, maxStreamLine)
		}
		return err
	}
	return nil
}

// GenerateResponseFunc receives each object of a /api/generate stream;
// returning an error stops the request (and generation on the server).
type GenerateResponseFunc func(GenerateResponse) error

// Generate runs POST /api/generate, calling fn for every object (once
// when req.Stream is false).
func (c *Client) Generate(ctx context.Context, req *GenerateRequest, fn GenerateResponseFunc) error {
	return stream(ctx, c, "/api/generate", req, fn)
}

// ChatResponseFunc receives each object of a /api/chat stream.
type ChatResponseFunc func(ChatResponse) error

// Chat runs POST /api/chat, calling fn for every object.
func (c *Client) Chat(ctx context.Context, req *ChatRequest, fn ChatResponseFunc) error {
	return stream(ctx, c, "/api/chat", req, fn)
}

// ProgressFunc receives each status object of create, pull and push.
type ProgressFunc func(ProgressResponse) error

// Create runs POST /api/create.
func (c *Client) Create(ctx context.Context, req *CreateRequest, fn ProgressFunc) error {
	return stream(ctx, c, "/api/create", req, fn)
}

// Pull runs POST /api/pull.
func (c *Client) Pull(ctx context.Context, req *PullRequest, fn ProgressFunc) error {
	return stream(ctx, c, "/api/pull", req, fn)
}

// Push runs POST /api/push.
func (c *Client) Push(ctx context.Context, req *PushRequest, fn ProgressFunc) error {
	return stream(ctx, c, "/api/push", req, fn)
}

// List runs GET /api/tags.
func (c *Client) List(ctx context.Context) (*ListResponse, error) {
	var out ListResponse
	return &out, c.do(ctx, http.MethodGet, "/api/tags", nil, &out)
}

// ListRunning runs GET /api/ps.
func (c *Client) ListRunning(ctx context.Context) (*ProcessResponse, error) {
	var out ProcessResponse
	return &out, c.do(ctx, http.MethodGet, "/api/ps", nil, &out)
}

// Show runs POST /api/show.
func (c *Client) Show(ctx context.Context, req *ShowRequest) (*ShowResponse, error) {
	var out ShowResponse
	return &out, c.do(ctx, http.MethodPost, "/api/show", req, &out)
}

// Copy runs POST /api/copy.
func (c *Client) Copy(ctx context.Context, req *CopyRequest) error {
	return c.do(ctx, http.MethodPost, "/api/copy", req, nil)
}

// Delete runs DELETE /api/delete.
func (c *Client) Delete(ctx context.Context, req *DeleteRequest) error {
	return c.do(ctx, http.MethodDelete, "/api/delete", req, nil)
}

// Embed runs POST /api/embed.
func (c *Client) Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	var out EmbedResponse
	return &out, c.do(ctx, http.MethodPost, "/api/embed", req, &out)
}

// Embeddings runs the legacy POST /api/embeddings.
func (c *Client) Embeddings(ctx context.Context, req *EmbeddingRequest) (*EmbeddingResponse, error) {
	var out EmbeddingResponse
	return &out, c.do(ctx, http.MethodPost, "/api/embeddings", req, &out)
}

// Version runs GET /api/version.
func (c *Client) Version(ctx context.Context) (string, error) {
	var out VersionResponse
	err := c.do(ctx, http.MethodGet, "/api/version", nil, &out)
	return out.Version, err
}

// Heartbeat checks that the server answers HEAD /.
func (c *Client) Heartbeat(ctx context.Context) error {
	return c.do(ctx, http.MethodHead, "/", nil, nil)
}

// HasBlob reports whether the server has the blob (HEAD /api/blobs/:digest).
func (c *Client) HasBlob(ctx context.Context, digest string) (bool, error) {
	err := c.do(ctx, http.MethodHead, "/api/blobs/"+digest, nil, nil)
	var se *StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// CreateBlob uploads r as the blob with the given digest
// (POST /api/blobs/:digest); the server rejects content that does not
// match the digest.
func (c *Client) CreateBlob(ctx context.Context, digest string, r io.Reader) error {
	return c.do(ctx, http.MethodPost, "/api/blobs/"+digest, r, nil)
}
