package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
)

// Options configure a Server. Engine and Models are required; a nil
// Builder or Transfers makes their endpoints answer 501.
type Options struct {
	Engine    Engine
	Models    Models
	Builder   Builder
	Transfers Transfers

	// Version is reported by GET /api/version.
	Version string
	// Addr is the address the server listens on (host:port). Requests
	// must name this host, localhost or a loopback address in their Host
	// header; when Addr's host is empty, 0.0.0.0 or ::, any Host is
	// accepted.
	Addr string
	// Origins are the browser origins allowed by CORS ("*" for any;
	// patterns may end in "*", like "http://localhost:*"). Empty: no CORS
	// headers are sent.
	Origins []string
	// APIKey, when set, is required as "Authorization: Bearer <APIKey>" on
	// every request except GET and HEAD /.
	APIKey string
	// Logger receives one line per request error; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now (tests fix it).
	Now func() time.Time
}

// Server serves olm's API. Make one with New.
type Server struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	router *httprouter.Router
}

// New returns a Server with every route registered.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil || opts.Models == nil {
		return nil, fmt.Errorf("server: Options.Engine and Options.Models are required")
	}
	s := &Server{opts: opts, log: opts.Logger, now: opts.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.router = s.routes()
	return s, nil
}

// ServeHTTP applies the Host check, CORS and API-key middleware, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r.Host) {
		s.writeError(w, r, fmt.Errorf("%w: host %q is not allowed (set OLM_HOST to the address clients use, or bind 0.0.0.0)", ErrForbidden, r.Host))
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && s.originAllowed(origin) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, X-Stainless-Lang, X-Stainless-Package-Version, X-Stainless-Os, X-Stainless-Arch, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Retry-Count, X-Stainless-Timeout")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if s.opts.APIKey != "" && !(r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead)) && r.Method != http.MethodOptions {
		if !s.keyOK(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="olm"`)
			s.writeError(w, r, fmt.Errorf("%w: this server needs an API key: send \"Authorization: Bearer <OLM_API_KEY>\"", ErrUnauthorized))
			return
		}
	}
	s.router.ServeHTTP(w, r)
}

func (s *Server) routes() *httprouter.Router {
	rt := httprouter.New()
	rt.HandleMethodNotAllowed = true
	rt.HandleOPTIONS = true
	rt.RedirectTrailingSlash = false
	rt.RedirectFixedPath = false
	rt.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("%w: no route %s %s", ErrNotFound, r.Method, r.URL.Path))
	})
	rt.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)})
	})
	rt.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
		s.writeError(w, r, fmt.Errorf("internal error: %v", v))
	}

	health := func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("Ollama is running"))
		}
	}
	rt.GET("/", health)
	rt.HEAD("/", health)

	rt.POST("/api/generate", s.handle(s.handleGenerate))
	rt.POST("/api/chat", s.handle(s.handleChat))
	rt.POST("/api/create", s.handle(s.handleCreate))
	rt.GET("/api/tags", s.handle(s.handleTags))
	rt.HEAD("/api/tags", s.handle(s.handleTags))
	rt.POST("/api/show", s.handle(s.handleShow))
	rt.POST("/api/copy", s.handle(s.handleCopy))
	rt.DELETE("/api/delete", s.handle(s.handleDelete))
	rt.POST("/api/pull", s.handle(s.handlePull))
	rt.POST("/api/push", s.handle(s.handlePush))
	rt.POST("/api/embed", s.handle(s.handleEmbed))
	rt.POST("/api/embeddings", s.handle(s.handleEmbeddings))
	rt.GET("/api/ps", s.handle(s.handlePs))
	rt.GET("/api/version", s.handle(s.handleVersion))
	rt.HEAD("/api/version", s.handle(s.handleVersion))
	rt.HEAD("/api/blobs/:digest", s.handle(s.handleHeadBlob))
	rt.POST("/api/blobs/:digest", s.handle(s.handlePostBlob))

	rt.POST("/v1/chat/completions", s.handleOpenAI(s.handleChatCompletions))
	rt.POST("/v1/completions", s.handleOpenAI(s.handleCompletions))
	rt.POST("/v1/embeddings", s.handleOpenAI(s.handleOpenAIEmbeddings))
	rt.GET("/v1/models", s.handleOpenAI(s.handleModels))
	rt.GET("/v1/models/*model", s.handleOpenAI(s.handleModel))
	return rt
}

// hostAllowed is the DNS-rebinding check: a browser tricked into calling
// us through an attacker's domain sends that domain as Host.
func (s *Server) hostAllowed(hostport string) bool {
	if hostport == "" {
		return true
	}
	bound, _, err := net.SplitHostPort(s.opts.Addr)
	if err != nil {
		bound = s.opts.Addr
	}
	bound = strings.Trim(bound, "[]")
	if bound == "" || bound == "0.0.0.0" || bound == "::" {
		return true
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.EqualFold(host, bound) {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	return false
}

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.opts.Origins {
		o = strings.TrimSpace(o)
		switch {
		case o == "*" || o == origin:
			return true
		case strings.HasSuffix(o, "*") && strings.HasPrefix(origin, strings.TrimSuffix(o, "*")):
			return true
		}
	}
	return false
}
