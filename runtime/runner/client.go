package runner

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
	"time"
	"unicode/utf8"
)

// Client talks to one runner over its unix socket. It is safe for
// concurrent use; each method call is one HTTP request, and cancelling its
// context closes the connection, which makes the runner stop the request
// and free its slot.
type Client struct {
	socket string
	hc     *http.Client
	// exited, when set (by Process), reports why the runner process is
	// gone, or nil while it runs; transport errors are replaced by it.
	exited func(wait time.Duration) error
}

// Dial returns a Client for the runner serving on the unix socket at path.
// It does not connect until the first request.
func Dial(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Client{socket: path, hc: &http.Client{Transport: tr}}
}

// Socket returns the path of the runner's socket.
func (c *Client) Socket() string { return c.socket }

// CloseIdle closes idle connections to the runner.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// Health checks that the runner is up and its model loaded.
func (c *Client) Health(ctx context.Context) error {
	var h HealthResponse
	if err := c.do(ctx, http.MethodGet, "/health", nil, &h); err != nil {
		return err
	}
	if h.Status != "ok" {
		return fmt.Errorf("%w: status %q", ErrLoading, h.Status)
	}
	return nil
}

// Info returns the loaded model's metadata and the runner's configuration.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var i Info
	if err := c.do(ctx, http.MethodGet, "/info", nil, &i); err != nil {
		return nil, err
	}
	return &i, nil
}

// Tokenize returns the tokens of a text.
func (c *Client) Tokenize(ctx context.Context, req TokenizeRequest) ([]int32, error) {
	var r TokenizeResponse
	if err := c.do(ctx, http.MethodPost, "/tokenize", req, &r); err != nil {
		return nil, err
	}
	return r.Tokens, nil
}

// Detokenize returns the text of tokens.
func (c *Client) Detokenize(ctx context.Context, req DetokenizeRequest) (string, error) {
	var r DetokenizeResponse
	if err := c.do(ctx, http.MethodPost, "/detokenize", req, &r); err != nil {
		return "", err
	}
	return r.Content, nil
}

// Embed returns one normalized embedding per input.
func (c *Client) Embed(ctx context.Context, req EmbedRequest) (*EmbedResponse, error) {
	var r EmbedResponse
	if err := c.do(ctx, http.MethodPost, "/embed", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Render returns the prompt (and grammar) that Chat would use for req,
// without generating.
func (c *Client) Render(ctx context.Context, req ChatRequest) (*RenderResponse, error) {
	var r RenderResponse
	if err := c.do(ctx, http.MethodPost, "/render", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Completion generates text for req, calling fn with every event as it
// arrives, the final one (Done set) included, and returns the final event.
// If fn returns an error, the request is cancelled and that error returned.
// fn may be nil to just wait for the result.
func (c *Client) Completion(ctx context.Context, req CompletionRequest, fn func(CompletionEvent) error) (*CompletionEvent, error) {
	return stream(ctx, c, "/completion", req, fn, func(ev *CompletionEvent) eventEnd {
		return eventEnd{ev.Done, ev.Code, ev.Error}
	}, func(ev *CompletionEvent, key []byte, val string) bool {
		if string(key) != "content" {
			return false
		}
		ev.Content = val
		return true
	})
}

// Chat generates the next assistant message for req, calling fn with every
// event as it arrives (the final one with the parsed message included), and
// returns the final event. If fn returns an error, the request is cancelled
// and that error returned. fn may be nil.
func (c *Client) Chat(ctx context.Context, req ChatRequest, fn func(ChatEvent) error) (*ChatEvent, error) {
	return stream(ctx, c, "/chat", req, fn, func(ev *ChatEvent) eventEnd {
		return eventEnd{ev.Done, ev.Code, ev.Error}
	}, func(ev *ChatEvent, key []byte, val string) bool {
		switch string(key) {
		case "content":
			ev.Content = val
		case "thinking":
			ev.Thinking = val
		default:
			return false
		}
		return true
	})
}

// wireError turns an error code and message from the runner into an error
// wrapping the matching sentinel.
func wireError(code, msg string) error {
	if s := codeErr(code); s != nil {
		return fmt.Errorf("%w: %s", s, msg)
	}
	return fmt.Errorf("runner: %s", msg)
}

// eventEnd is what stream needs to know of a streamed event: whether it is
// the final one, and the error (with its code) it carries, if any.
type eventEnd struct {
	done      bool
	code, err string
}

// stream posts body to path and decodes the NDJSON answer as events of type
// E until the final one, which it returns. An error event ends the stream
// with that error; every other event, the final one included, is passed to
// fn (if not nil) first, and an error from fn ends the stream with it.
// A line that is a plain piece of text ({"content":"..."}, see plainPiece)
// is decoded by set, without reflection; any other line by encoding/json.
func stream[E any](ctx context.Context, c *Client, path string, body any, fn func(E) error, end func(*E) eventEnd, set func(ev *E, key []byte, val string) bool) (*E, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // closes the connection if we stop early
	resp, err := c.send(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	var long []byte // a line longer than rd's buffer
	for {
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = rd.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(bytes.TrimSpace(line)) == 0 {
			if err != nil {
				return nil, c.transportErr(ctx, err, true)
			}
			continue
		}
		// A last line without its newline is still a whole event.
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, c.transportErr(ctx, err, true)
		}
		var ev E
		if key, val, ok := plainPiece(line); !ok || !set(&ev, key, val) {
			if err := json.Unmarshal(line, &ev); err != nil {
				return nil, c.transportErr(ctx, err, true)
			}
		}
		e := end(&ev)
		if e.err != "" {
			return nil, wireError(e.code, e.err)
		}
		if fn != nil {
			if err := fn(ev); err != nil {
				return nil, err
			}
		}
		if e.done {
			return &ev, nil
		}
	}
}

// plainPiece recognizes an event line of the form {"KEY":"VALUE"} (KEY in
// lower case letters and _, returned as a slice of line) whose
// value needs no unescaping: printable ASCII or valid UTF-8 without
// quotes, backslashes or control characters. Those are most streamed
// pieces; json.Unmarshal would give the same key and value.
func plainPiece(line []byte) (key []byte, val string, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	rest, ok := bytes.CutPrefix(line, []byte(`{"`))
	if !ok {
		return nil, "", false
	}
	k := bytes.IndexByte(rest, '"')
	if k <= 0 || !bytes.HasPrefix(rest[k:], []byte(`":"`)) || !bytes.HasSuffix(rest, []byte(`"}`)) || len(rest) < k+5 {
		return nil, "", false
	}
	for _, c := range rest[:k] {
		if c < 'a' || c > 'z' {
			if c != '_' {
				return nil, "", false
			}
		}
	}
	v := rest[k+3 : len(rest)-2]
	for _, c := range v {
		if c < 0x20 || c == '"' || c == '\\' {
			return nil, "", false
		}
	}
	if !utf8.Valid(v) {
		return nil, "", false
	}
	return rest[:k], string(v), true
}

// do sends one request and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return c.transportErr(ctx, err, true)
	}
	return nil
}

// send performs the request and turns non-2xx answers into errors.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%w: encode request: %v", ErrBadRequest, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://runner"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportErr(ctx, err, false)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e ErrorResponse
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, wireError(e.Code, e.Error)
		}
		return nil, fmt.Errorf("%w: HTTP %d: %s", ErrProtocol, resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp, nil
}

// transportErr explains a failed exchange: the caller's own cancellation
// stays as is; if the runner process died, its exit error replaces the
// transport error; a malformed answer is a protocol error.
func (c *Client) transportErr(ctx context.Context, err error, midStream bool) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if c.exited != nil {
		// The process watcher may need a moment to reap the child after the
		// connection broke.
		if perr := c.exited(2 * time.Second); perr != nil {
			return perr
		}
	}
	var syn *json.SyntaxError
	var ute *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &ute) {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if midStream && errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("runner %s: %w", c.socket, err)
}
