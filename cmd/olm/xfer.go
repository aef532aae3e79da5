package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/term"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/oci/transfer"
)

// Exit codes of the model commands (pull, push, cp, rm, ls, tag, login,
// logout, inspect, save, load), stable for CI pipelines:
//
//	0    success
//	1    any other failure (file system, unexpected registry answer)
//	2    bad usage: an invalid model name or flag, or a local model that does not exist
//	3    the registry has no such model (or blob)
//	4    authentication failed or access denied
//	5    content failed verification (digest or size mismatch, corrupt archive)
//	6    the registry could not be reached or kept failing after retries
//	130  interrupted (Ctrl-C, SIGTERM)
const (
	exitFailure     = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitAuth        = 4
	exitVerify      = 5
	exitNetwork     = 6
	exitInterrupted = 130
)

// classify gives err the exit code a pipeline can act on.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var ee exitError
	if errors.As(err, &ee) {
		return err
	}
	code := exitFailure
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		code = exitInterrupted
	case errors.Is(err, oci.ErrInvalidReference):
		code = exitUsage
	case errors.Is(err, transfer.ErrUnauthorized):
		code = exitAuth
	case errors.Is(err, transfer.ErrVerify), errors.Is(err, blobstore.ErrDigestMismatch), errors.Is(err, blobstore.ErrSizeMismatch),
		errors.Is(err, transfer.ErrArchive), errors.Is(err, oci.ErrInvalidManifest), errors.Is(err, blobstore.ErrIncomplete),
		errors.Is(err, oci.ErrInvalidDigest), errors.Is(err, oci.ErrTooLarge), errors.Is(err, oci.ErrUnsupportedFormat):
		code = exitVerify
	case errors.Is(err, transfer.ErrNotFound):
		code = exitNotFound
	case isNetwork(err):
		code = exitNetwork
	}
	return exitError{code, err}
}

func isNetwork(err error) bool {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "no such host", "i/o timeout", "unexpected EOF", "EOF", "tls:", "x509:", "network is unreachable"} {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

// TransferFlags are the flags of commands that talk to registries.
type TransferFlags struct {
	Insecure bool `name:"insecure" env:"OLM_INSECURE" help:"Allow plain HTTP and unverified (self-signed) TLS for registries that are not on loopback."`
	Quiet    bool `short:"q" name:"quiet" help:"Print nothing but errors."`
}

// registryPrefix marks a registry reference in cp and inspect.
const registryPrefix = "registry://"

// errNoLocalModel means a name is not in the local store.
var errNoLocalModel = errors.New("not found in the local store")

// localModel resolves a name in the store, mapping a missing model to exit code 2.
func localModel(ctx context.Context, s *blobstore.Store, name string) (oci.Reference, string, error) {
	ref, err := modelNaming().Parse(name)
	if err != nil {
		return ref, "", exitError{exitUsage, err}
	}
	key := ref.String()
	if ref.Digest != "" && ref.Tag == "" {
		key = ref.Digest.String()
	}
	if _, err := s.Resolve(ctx, key); err != nil {
		if errors.Is(err, blobstore.ErrNotFound) {
			return ref, "", exitError{exitUsage, fmt.Errorf("model %s %w; pull or create it first", name, errNoLocalModel)}
		}
		return ref, "", err
	}
	return ref, key, nil
}

// remoteRepo parses name and opens its repository.
func remoteRepo(ctx context.Context, name string, insecure bool) (oci.Reference, transferRepo, error) {
	ref, err := modelNaming().Parse(name)
	if err != nil {
		return ref, nil, exitError{exitUsage, err}
	}
	opts, err := registryOptions(insecure)
	if err != nil {
		return ref, nil, err
	}
	repo, err := transfer.NewRepository(ctx, ref, opts)
	if err != nil {
		return ref, nil, err
	}
	return ref, repo, nil
}

// progress prints transfer events: bars on a terminal, plain lines otherwise.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	quiet  bool
	verb   string
	order  []string
	state  map[string]transfer.Event
	start  map[string]time.Time
	lines  int
	lastLn map[string]time.Time
}

func newProgress(verb string, quiet bool) *progress {
	return &progress{
		w: os.Stderr, tty: term.IsTerminal(int(os.Stderr.Fd())), quiet: quiet, verb: verb,
		state: map[string]transfer.Event{}, start: map[string]time.Time{}, lastLn: map[string]time.Time{},
	}
}

// event is a transfer.Options.Progress callback.
func (p *progress) event(e transfer.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Digest == "" {
		if e.Status == transfer.StatusRetry && e.Err != nil {
			fmt.Fprintf(p.w, "retrying: %v\n", e.Err)
		}
		return
	}
	key := e.Digest.Encoded()[:12]
	if _, ok := p.state[key]; !ok {
		p.order = append(p.order, key)
		p.start[key] = time.Now()
	}
	p.state[key] = e
	if p.tty {
		p.redraw()
		return
	}
	switch e.Status {
	case transfer.StatusProgress:
		if time.Since(p.lastLn[key]) < 5*time.Second {
			return
		}
		p.lastLn[key] = time.Now()
		fmt.Fprintf(p.w, "%s %s: %s/%s (%d%%)\n", p.verb, key, humanSize(e.Completed), humanSize(e.Total), percent(e))
	case transfer.StatusRetry:
		fmt.Fprintf(p.w, "%s %s: retrying after %s: %v\n", p.verb, key, humanSize(e.Completed), e.Err)
	case transfer.StatusStart:
		fmt.Fprintf(p.w, "%s %s: %s\n", p.verb, key, humanSize(e.Total))
	default:
		fmt.Fprintf(p.w, "%s %s: %s %s\n", p.verb, key, e.Status, humanSize(e.Completed))
	}
}

func percent(e transfer.Event) int64 {
	if e.Total <= 0 {
		return 100
	}
	return e.Completed * 100 / e.Total
}

// redraw rewrites the bars in place.
func (p *progress) redraw() {
	if p.lines > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.lines)
	}
	width := 25
	for _, k := range p.order {
		e := p.state[k]
		done := e.Completed
		if e.Status == transfer.StatusExists || e.Status == transfer.StatusMounted {
			done = e.Total
		}
		pct, fill := int64(100), width
		if e.Total > 0 {
			pct, fill = done*100/e.Total, int(done*int64(width)/e.Total)
		}
		rate := ""
		if el := time.Since(p.start[k]).Seconds(); el > 0.5 && e.Status != transfer.StatusExists {
			rate = humanSize(int64(float64(done)/el)) + "/s"
		}
		label := ""
		if e.Status == transfer.StatusExists || e.Status == transfer.StatusMounted {
			label = string(e.Status)
		}
		fmt.Fprintf(p.w, "\x1b[2K%s %s: %3d%% ▕%s%s▏ %s/%s %s %s\n", p.verb, k, pct,
			strings.Repeat("█", fill), strings.Repeat(" ", width-fill), humanSize(done), humanSize(e.Total), rate, label)
	}
	p.lines = len(p.order)
}

// line prints a status line unless quiet.
func (p *progress) line(format string, args ...any) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// humanSize formats bytes in decimal units as ollama list does ("4.7 GB").
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KB", "MB", "GB", "TB", "PB"} {
		f /= unit
		if f < unit {
			if f < 10 {
				return fmt.Sprintf("%.1f %s", f, u)
			}
			return fmt.Sprintf("%.0f %s", f, u)
		}
	}
	return fmt.Sprintf("%.0f EB", f/unit)
}

// transferRepo is a remote repository as transfer.Copy takes it.
type transferRepo = *remote.Repository

func digestBytes(b []byte) digest.Digest { return digest.FromBytes(b) }
