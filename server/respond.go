package server

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// maxBodyBytes bounds a JSON request body. Images in chat requests are
// base64 inside the JSON, so the bound is generous; blobs are streamed
// and not bounded by it.
const maxBodyBytes = 256 << 20

// handlerFunc is an API handler: it returns the value to encode as JSON
// (nil when it wrote the answer itself, or for an empty 200) or an error
// for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (any, error)

// statusOnly is a handler result that is just a status code, no body.
type statusOnly int

// trackingWriter remembers whether the answer has started.
type trackingWriter struct {
	http.ResponseWriter
	started bool
}

func (t *trackingWriter) WriteHeader(code int) { t.started = true; t.ResponseWriter.WriteHeader(code) }
func (t *trackingWriter) Write(b []byte) (int, error) {
	t.started = true
	return t.ResponseWriter.Write(b)
}
func (t *trackingWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// handle adapts a handlerFunc to httprouter: it encodes the value or
// writes the error, as a last stream object if the answer has started.
func (s *Server) handle(h handlerFunc) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		tw := &trackingWriter{ResponseWriter: w}
		v, err := h(tw, r, ps)
		switch {
		case err != nil && tw.started:
			s.logError(r, err)
			b, _ := json.Marshal(map[string]string{"error": err.Error()})
			_, _ = tw.Write(append(b, '\n'))
			tw.Flush()
		case err != nil:
			s.writeError(tw, r, err)
		case v == nil:
			if !tw.started {
				tw.WriteHeader(http.StatusOK)
			}
		default:
			if code, ok := v.(statusOnly); ok {
				tw.WriteHeader(int(code))
				return
			}
			if r.Method == http.MethodHead {
				tw.Header().Set("Content-Type", "application/json; charset=utf-8")
				tw.WriteHeader(http.StatusOK)
				return
			}
			writeJSON(tw, http.StatusOK, v)
		}
	}
}

// writeError writes err as {"error": "..."} with its status. It is the one
// place errors of the Ollama API are written.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	s.logError(r, err)
	if r.Method == http.MethodHead {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (s *Server) logError(r *http.Request, err error) {
	if statusOf(err) >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// keyOK checks an Authorization header against the API key in constant time.
func (s *Server) keyOK(auth string) bool {
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.opts.APIKey)) == 1
}

// decode reads a JSON request body into v. Errors wrap ErrBadRequest and
// name the offending field.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("%w: read request body: %v", ErrBadRequest, err)
	}
	if len(body) > maxBodyBytes {
		return fmt.Errorf("%w: request body larger than %d bytes", ErrBadRequest, maxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: missing request body", ErrBadRequest)
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return fmt.Errorf("%w: field %q: cannot use %s as %s", ErrBadRequest, te.Field, te.Value, te.Type)
		case errors.As(err, &se):
			return fmt.Errorf("%w: invalid JSON at byte %d: %v", ErrBadRequest, se.Offset, se)
		}
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}

// ndjson writes a newline-delimited JSON stream, flushing each object.
type ndjson struct {
	w       http.ResponseWriter
	started bool
}

func (n *ndjson) send(v any) error {
	if !n.started {
		n.w.Header().Set("Content-Type", "application/x-ndjson")
		n.w.WriteHeader(http.StatusOK)
		n.started = true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := n.w.Write(append(b, '\n')); err != nil {
		return err
	}
	if f, ok := n.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// streaming reports whether a request asked for a stream (nil means yes).
func streaming(p *bool) bool { return p == nil || *p }
