package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/convert"
	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/modelfile"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/quantize"
)

// CreateCmd builds a model from a Modelfile into the local store, as
// `ollama create` does.
type CreateCmd struct {
	Name     string `arg:"" help:"Name of the model to create (llama3.2, ns/model:tag or a full reference)."`
	File     string `short:"f" name:"file" help:"Modelfile to read (default ./Modelfile)." placeholder:"PATH"`
	Quantize string `short:"q" name:"quantize" help:"Quantize F32/F16/BF16 weights to TYPE (q4_K_M, q4_K_S, q5_K_M, q8_0, ...)." placeholder:"TYPE"`
	Link     bool   `name:"link" env:"OLM_LINK_FILES" help:"Hardlink GGUF files into the store when the file system cannot reflink, instead of copying (never edit them afterwards)."`
}

// Run builds the model and prints progress to stderr.
func (c *CreateCmd) Run(ctx context.Context, g *Globals) error {
	file := c.File
	if file == "" {
		file = "Modelfile"
	}
	mf, dir, err := readModelfile(file)
	if err != nil {
		return err
	}
	b, err := newBuilder(g)
	if err != nil {
		return err
	}
	b.LinkFiles = c.Link
	b.Puller = registryPuller{store: b.Store.(*blobstore.Store)}
	home, _ := os.UserHomeDir()
	p := newStatusPrinter(os.Stderr)
	_, err = b.Build(ctx, build.Request{
		Modelfile: mf,
		Dir:       dir,
		Home:      home,
		Tags:      []string{c.Name},
		Quantize:  c.Quantize,
		Created:   sourceDateEpoch(),
	}, p.event)
	p.done()
	return buildError(err)
}

// readModelfile parses the Modelfile at path and returns it with the folder
// its relative paths resolve against.
func readModelfile(path string) (*modelfile.Modelfile, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	mf, err := modelfile.ParseFile(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", exitError{2, fmt.Errorf("no Modelfile at %s (use -f PATH)", path)}
		}
		return nil, "", exitError{2, err}
	}
	return mf, filepath.Dir(abs), nil
}

// olmHomeDir returns OLM_HOME (through --home) or ~/.olm.
func olmHomeDir(g *Globals) (string, error) {
	if g.Home != "" {
		return g.Home, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home folder; set OLM_HOME: %w", err)
	}
	return filepath.Join(home, ".olm"), nil
}

// openLocalStore opens the local store under the olm home folder.
func openLocalStore(g *Globals) (*blobstore.Store, string, error) {
	home, err := olmHomeDir(g)
	if err != nil {
		return nil, "", err
	}
	s, err := blobstore.Open(filepath.Join(home, "store"), blobstore.Options{})
	if err != nil {
		return nil, "", err
	}
	return s, home, nil
}

// modelNaming completes short names with OLM_DEFAULT_REGISTRY.
func modelNaming() oci.Naming {
	return oci.Naming{Registry: os.Getenv("OLM_DEFAULT_REGISTRY")}
}

// newBuilder returns a builder over the local store with the quantize
// worker and the safetensors converter.
func newBuilder(g *Globals) (*build.Builder, error) {
	s, home, err := openLocalStore(g)
	if err != nil {
		return nil, err
	}
	q, err := newQuantizer()
	if err != nil {
		return nil, err
	}
	return &build.Builder{
		Store:     s,
		Naming:    modelNaming(),
		Quantizer: q,
		Converter: build.SafetensorsConverter{},
		TempDir:   filepath.Join(home, "tmp"),
	}, nil
}

// sourceDateEpoch returns SOURCE_DATE_EPOCH as the build time, or the zero
// time (the builder's fixed, reproducible time).
func sourceDateEpoch() time.Time {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}
	}
	t, _ := parseCreated(v)
	return t
}

// parseCreated reads a build time: "now", Unix seconds, or RFC 3339.
func parseCreated(v string) (time.Time, error) {
	if v == "now" {
		return time.Now().UTC(), nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, exitError{2, fmt.Errorf("created time %q: expected now, Unix seconds or RFC 3339 (2006-01-02T15:04:05Z)", v)}
	}
	return t, nil
}

// buildError marks errors caused by the input (exit code 2) apart from
// failures of olm or the system (exit code 1).
func buildError(err error) error {
	if err == nil {
		return nil
	}
	var pe *modelfile.Error
	for _, input := range []error{build.ErrInvalidRequest, build.ErrNotFound, build.ErrInvalidWeights, build.ErrUnsupported,
		quantize.ErrAlreadyQuantized, quantize.ErrUnknownType, quantize.ErrInput, gguf.ErrNotGGUF, gguf.ErrTruncated,
		convert.ErrInvalid, convert.ErrUnsupported, convert.ErrNotFound} {
		if errors.Is(err, input) {
			return exitError{2, err}
		}
	}
	if errors.As(err, &pe) {
		return exitError{2, err}
	}
	return err
}

// statusPrinter prints build events as plain lines, one per status, with
// progress as a percentage at most every 10%.
type statusPrinter struct {
	w      io.Writer
	last   string
	lastPc int
}

func newStatusPrinter(w io.Writer) *statusPrinter { return &statusPrinter{w: w, lastPc: -1} }

func (p *statusPrinter) event(e build.Event) {
	if e.Total <= 0 {
		if e.Status != p.last {
			fmt.Fprintln(p.w, e.Status)
			p.last, p.lastPc = e.Status, -1
		}
		return
	}
	pc := int(e.Completed * 100 / e.Total)
	if e.Status != p.last {
		p.last, p.lastPc = e.Status, -1
	}
	if p.lastPc < 0 || pc >= p.lastPc+10 || (pc == 100 && p.lastPc != 100) {
		fmt.Fprintf(p.w, "%s %3d%% (%s/%s)\n", e.Status, pc, humanBytes(e.Completed), humanBytes(e.Total))
		p.lastPc = pc
	}
}

func (p *statusPrinter) done() {}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// trimLines trims trailing newlines for printing.
func trimLines(s string) string { return strings.TrimRight(s, "\n") }
