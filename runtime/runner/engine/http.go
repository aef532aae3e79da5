package engine

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/olmhq/olm/runtime/llama"
	"github.com/olmhq/olm/runtime/runner"
)

// maxRequestBody bounds a request body (prompts, images, messages).
const maxRequestBody = 256 << 20

// Handler returns the HTTP handler serving runner's protocol.
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, runner.HealthResponse{Status: "ok"})
	})
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.info)
	})
	mux.HandleFunc("POST /tokenize", e.handleTokenize)
	mux.HandleFunc("POST /detokenize", e.handleDetokenize)
	mux.HandleFunc("POST /embed", e.handleEmbed)
	mux.HandleFunc("POST /completion", e.handleCompletion)
	mux.HandleFunc("POST /chat", e.handleChat)
	mux.HandleFunc("POST /render", e.handleRender)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // client gone
}

func writeError(w http.ResponseWriter, err error) {
	code := runner.CodeOf(err)
	status := http.StatusInternalServerError
	switch code {
	case runner.CodeBadRequest, runner.CodeContextLength:
		status = http.StatusBadRequest
	case runner.CodeUnsupported:
		status = http.StatusNotImplemented
	case runner.CodeLoading:
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, runner.ErrorResponse{Error: wireMessage(err), Code: code})
}

// wireMessage is err's text without the sentinel's text in front: the code
// carries it, and the client puts it back (once).
func wireMessage(err error) string {
	msg := err.Error()
	for _, s := range []error{runner.ErrBadRequest, runner.ErrContextLength, runner.ErrUnsupported, runner.ErrLoading} {
		if errors.Is(err, s) {
			return strings.TrimPrefix(msg, s.Error()+": ")
		}
	}
	return msg
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: decode request: %v", runner.ErrBadRequest, err)
	}
	return nil
}

func (e *Engine) handleTokenize(w http.ResponseWriter, r *http.Request) {
	var req runner.TokenizeRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	toks, err := e.model.Tokenize(req.Content, req.AddSpecial, req.ParseSpecial)
	if err != nil {
		writeError(w, fmt.Errorf("%w: %v", runner.ErrBadRequest, err))
		return
	}
	writeJSON(w, http.StatusOK, runner.TokenizeResponse{Tokens: fromTokens(toks)})
}

func (e *Engine) handleDetokenize(w http.ResponseWriter, r *http.Request) {
	var req runner.DetokenizeRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	toks := toTokens(req.Tokens)
	for _, t := range toks {
		if t < 0 || int(t) >= e.model.NumVocab() {
			writeError(w, fmt.Errorf("%w: token %d is outside the vocabulary", runner.ErrBadRequest, t))
			return
		}
	}
	s, err := e.model.Detokenize(toks, false, req.Special)
	if err != nil {
		writeError(w, fmt.Errorf("%w: %v", runner.ErrBadRequest, err))
		return
	}
	writeJSON(w, http.StatusOK, runner.DetokenizeResponse{Content: s})
}

// grammarFor turns a format value ("json" or a schema) into a grammar.
func grammarFor(format json.RawMessage) (string, error) {
	if len(format) == 0 || string(format) == "null" || string(format) == `""` {
		return "", nil
	}
	var s string
	if json.Unmarshal(format, &s) == nil {
		if s != "json" {
			return "", fmt.Errorf("%w: format must be \"json\" or a JSON schema object, not %q", runner.ErrBadRequest, s)
		}
		g, err := llama.JSONGrammar()
		if err != nil {
			return "", err
		}
		return g, nil
	}
	g, err := llama.JSONSchemaToGrammar(format)
	if err != nil {
		return "", fmt.Errorf("%w: format: %v", runner.ErrBadRequest, err)
	}
	return g, nil
}

// newTask builds a generation task from prompt tokens and options.
func (e *Engine) newTask(ctx context.Context, prompt []llama.Token, opts *runner.Sampling, grammar string, extraStops []string) *task {
	s := runner.DefaultSampling()
	if opts != nil {
		s = *opts
	}
	sp := e.samplerParams(s)
	sp.Grammar = grammar
	stops := append(append([]string(nil), s.Stop...), extraStops...)
	return &task{
		ctx:        ctx,
		prompt:     prompt,
		sp:         sp,
		numPredict: s.NumPredict,
		numKeep:    s.NumKeep,
		stops:      stops,
		out:        newOutbox[genEvent](),
	}
}

func (e *Engine) handleCompletion(w http.ResponseWriter, r *http.Request) {
	var req runner.CompletionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var prompt []llama.Token
	var images []imageSpan
	var chunks *llama.Chunks
	switch {
	case len(req.Images) > 0 && len(req.Tokens) > 0:
		writeError(w, fmt.Errorf("%w: images go with a text prompt, not with tokens", runner.ErrBadRequest))
		return
	case len(req.Tokens) > 0:
		prompt = toTokens(req.Tokens)
	default:
		var err error
		if prompt, images, chunks, err = e.tokenize(req.Prompt, req.Images); err != nil {
			writeError(w, err)
			return
		}
	}
	defer func() { // unless a task took them
		if chunks != nil {
			chunks.Close()
		}
	}()
	grammar := req.Grammar
	if len(req.JSONSchema) > 0 {
		if grammar != "" {
			writeError(w, fmt.Errorf("%w: grammar and json_schema are exclusive", runner.ErrBadRequest))
			return
		}
		g, err := grammarFor(req.JSONSchema)
		if err != nil {
			writeError(w, err)
			return
		}
		grammar = g
	}
	t := e.newTask(r.Context(), prompt, req.Options, grammar, nil)
	t.images, t.chunks = images, chunks
	t.noStream = req.NoStream
	if err := e.generate(t); err != nil {
		writeError(w, err)
		return
	}
	chunks = nil // the decode loop frees them
	stream(w, r, t, func(ev genEvent) any {
		if !ev.done {
			if ev.piece == "" {
				return nil
			}
			return pieceEvent{content: ev.piece}
		}
		if ev.err != nil {
			return runner.CompletionEvent{Done: true, Error: wireMessage(ev.err), Code: runner.CodeOf(ev.err)}
		}
		return runner.CompletionEvent{Content: ev.piece, Done: true, DoneReason: ev.reason, Timings: ev.timings,
			Context: fromTokens(ev.context), Truncated: ev.truncated}
	})
}

// flushInterval is the shortest time between two writes of a stream's
// pieces. Text that comes faster (small models make thousands of tokens a
// second) goes out in fewer, larger events, so that relaying it to the
// server and on to the client costs less CPU than the decode it competes
// with; text that comes slower is sent as soon as each token is ready.
// The first piece and the final event are never held back.
const flushInterval = 2 * time.Millisecond

// stream writes t's events as NDJSON until the final one or until the
// client goes away. conv turns an event into its wire form (nil: skip);
// consecutive pieces ready at once reach it as one event. Each write is
// flushed; after one, the next waits for flushInterval to pass (or the
// final event) so that pieces coming faster pile up.
func stream(w http.ResponseWriter, r *http.Request, t *task, conv func(genEvent) any) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	var (
		buf   []byte
		tm    *time.Timer
		wrote time.Time // when pieces were last written; zero before the first
		text  strings.Builder
	)
	for {
		if !wrote.IsZero() {
			if d := flushInterval - time.Since(wrote); d > 0 {
				t.out.linger(r.Context(), d, &tm)
			}
		}
		evs, done, err := t.out.next(r.Context())
		if err != nil {
			return // client gone; the loop drops the task
		}
		buf = buf[:0]
		for i := 0; i < len(evs); i++ {
			ev := evs[i]
			if !ev.done && i+1 < len(evs) && !evs[i+1].done {
				text.Reset()
				for ; i < len(evs) && !evs[i].done; i++ {
					text.WriteString(evs[i].piece)
				}
				i--
				ev = genEvent{piece: text.String()}
			}
			if v := conv(ev); v != nil {
				if buf, err = appendEvent(buf, v); err != nil {
					return
				}
			}
		}
		if len(buf) > 0 {
			if _, err := w.Write(buf); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
			wrote = time.Now()
		}
		if done {
			return
		}
	}
}

func toTokens(in []int32) []llama.Token {
	out := make([]llama.Token, len(in))
	for i, t := range in {
		out[i] = llama.Token(t)
	}
	return out
}

func fromTokens(in []llama.Token) []int32 {
	out := make([]int32, len(in))
	for i, t := range in {
		out[i] = int32(t)
	}
	return out
}

// Options configure Serve.
type Options struct {
	// Load says which model to load and how.
	Load runner.LoadOptions
	// Socket is the unix socket path to listen on (created; removed at exit).
	Socket string
	// Log receives the runner's messages (nil: discarded).
	Log io.Writer
}

// Serve loads the model, then serves the protocol on o.Socket until ctx
// ends. The socket exists only once the model is loaded, so a client that
// reaches /health talks to a ready runner.
func Serve(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = io.Discard
	}
	e, err := Load(ctx, o.Load, o.Log)
	if err != nil {
		return err
	}
	defer e.Close()
	os.Remove(o.Socket)
	ln, err := net.Listen("unix", o.Socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Socket, err)
	}
	defer os.Remove(o.Socket)
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		srv.Shutdown(sctx) //nolint:errcheck // closing anyway
		cancel()
		srv.Close()
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Main is `olm runner`: it parses args (see runner.ParseArgs), then Serve.
// Messages go to log.
func Main(ctx context.Context, args []string, log io.Writer) error {
	o, sock, err := runner.ParseArgs(args, log)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.NumBatch > 0 && o.Parallel > o.NumBatch {
		return fmt.Errorf("olm runner: --parallel %d exceeds --batch-size %d", o.Parallel, o.NumBatch)
	}
	if o.Verbose {
		llama.SetLogLevel(llama.LogWarn)
	} else {
		llama.SetLogLevel(llama.LogError)
	}
	return Serve(ctx, Options{Load: o, Socket: sock, Log: log})
}
