package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/runner"
	"github.com/olmhq/olm/runtime/sched"
	"github.com/olmhq/olm/server"
	"github.com/olmhq/olm/server/backend"
)

// ServeCmd runs the API server: Ollama's REST API and the OpenAI-compatible
// API over the local store, loading models into `olm runner` children.
type ServeCmd struct {
	KeepAlive   string   `name:"keep-alive" env:"OLM_KEEP_ALIVE" help:"How long an idle model stays loaded (duration or seconds; negative: forever; default 5m)." placeholder:"DURATION"`
	NumParallel int      `name:"num-parallel" env:"OLM_NUM_PARALLEL" help:"Requests each loaded model serves at once (default 1)." placeholder:"N"`
	MaxLoaded   int      `name:"max-loaded-models" env:"OLM_MAX_LOADED_MODELS" help:"Most models loaded at once (default 3)." placeholder:"N"`
	MaxQueue    int      `name:"max-queue" env:"OLM_MAX_QUEUE" help:"Most requests waiting per model before 503 (default 512)." placeholder:"N"`
	Origins     []string `name:"origins" env:"OLM_ORIGINS" sep:"," help:"Browser origins allowed by CORS (comma-separated; * for any)." placeholder:"ORIGIN"`
	APIKey      string   `name:"api-key" env:"OLM_API_KEY" help:"Require this bearer token on every request."`
	Debug       bool     `name:"debug" env:"OLM_DEBUG" help:"Log requests that fail with client errors, and runner output."`
}

// bindAddress turns OLM_HOST into a listen address (default 127.0.0.1:11434).
func bindAddress(host string) (string, error) {
	h := strings.TrimSpace(host)
	if h == "" {
		return api.DefaultHost, nil
	}
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	h = strings.TrimRight(h, "/")
	if _, _, err := net.SplitHostPort(h); err != nil {
		h = net.JoinHostPort(strings.Trim(h, "[]"), "11434")
	}
	if _, _, err := net.SplitHostPort(h); err != nil {
		return "", fmt.Errorf("OLM_HOST %q: %w", host, err)
	}
	return h, nil
}

// Run serves until the context ends (Ctrl-C, SIGTERM).
func (c *ServeCmd) Run(ctx context.Context, g *Globals) error {
	addr, err := bindAddress(g.Host)
	if err != nil {
		return exitError{2, err}
	}
	level := slog.LevelInfo
	if c.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	store, home, err := openLocalStore(g)
	if err != nil {
		return err
	}
	b, err := newBuilder(g)
	if err != nil {
		return err
	}
	b.Puller = registryPuller{store: store}
	remote, err := registryOptions(false)
	if err != nil {
		return err
	}

	so := sched.Options{NumParallel: c.NumParallel, MaxLoaded: c.MaxLoaded, MaxQueue: c.MaxQueue}
	if c.KeepAlive != "" {
		d, err := api.ParseDuration(c.KeepAlive)
		if err != nil {
			return exitError{2, fmt.Errorf("OLM_KEEP_ALIVE: %w", err)}
		}
		if d == api.Forever {
			d = -1
		}
		so.KeepAlive = &d
	}
	start := runner.StartOptions{SocketDir: filepath.Join(home, "run")}
	if c.Debug {
		start.Stderr = os.Stderr
	}
	if err := os.MkdirAll(start.SocketDir, 0o700); err != nil {
		return err
	}
	so.Start = sched.ProcessStarter(start)
	sc := sched.New(so)
	defer sc.Close()

	naming := modelNaming()
	srv, err := server.New(server.Options{
		Engine:    &backend.Engine{Sched: sc},
		Models:    &backend.Models{Store: store, Naming: naming, TempDir: filepath.Join(home, "tmp")},
		Builder:   &backend.Builder{Builder: b, Home: userHome()},
		Transfers: &backend.Transfers{Store: store, Naming: naming, Remote: remote},
		Version:   version,
		Addr:      addr,
		Origins:   c.Origins,
		APIKey:    c.APIKey,
		Logger:    log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set OLM_HOST to use another address): %w", addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	log.Info("olm is serving", "address", ln.Addr().String(), "version", version, "store", store.Root())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func userHome() string {
	h, _ := os.UserHomeDir()
	return h
}
