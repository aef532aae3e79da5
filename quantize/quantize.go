package quantize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/olmhq/olm/internal/gguf"
)

// Progress reports how far a quantization is: Completed bytes of the output
// written so far, out of an estimated Total (bytes). Completed never
// exceeds Total, and the last report has Completed == Total.
type Progress struct {
	Completed int64
	Total     int64
}

// Options configure one quantization.
type Options struct {
	// Type is the target type, such as "q4_K_M" or "Q8_0" (case-insensitive).
	// Required.
	Type string
	// Threads is the number of threads the worker uses; ≤ 0 uses all cores.
	Threads int
	// Progress, if set, is called from another goroutine about every
	// PollInterval while the worker runs, and once at the end. Calls do not
	// overlap.
	Progress func(Progress)
}

// Quantizer runs quantizations in worker processes. The zero value has no
// worker (Quantize returns ErrNoWorker). A Quantizer is safe for concurrent
// use; each Quantize call runs its own worker.
type Quantizer struct {
	// Command is the worker's command line before the worker arguments, for
	// example {"/usr/local/bin/olm", "quantize-worker"}. Required.
	Command []string
	// Env is the worker's environment; nil inherits the parent's.
	Env []string
	// Types lists the target types the worker supports (runtime/llama's
	// FileTypes). When empty, any type is passed to the worker, which
	// rejects unknown ones itself.
	Types []string
	// PollInterval is how often the output size is sampled for progress;
	// ≤ 0 means 200ms.
	PollInterval time.Duration
}

// Check reads the GGUF header of the file at path and returns it, or an
// error wrapping ErrInput (not a file, not GGUF, truncated, tensor data past
// the end) or ErrAlreadyQuantized (weights already quantized).
func Check(path string) (*gguf.File, error) {
	f, err := gguf.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if q := quantizedType(f); q != "" {
		return nil, fmt.Errorf("%w: %s is %s; quantize from an F32, F16 or BF16 model", ErrAlreadyQuantized, filepath.Base(path), q)
	}
	return f, nil
}

// quantizedType returns the quantization of f's weights, or "" when they
// are F32, F16 or BF16.
func quantizedType(f *gguf.File) string {
	if ft, ok := f.FileType(); ok {
		switch ft {
		case gguf.FileTypeF32, gguf.FileTypeF16, gguf.FileTypeBF16:
			return ""
		}
		return ft.String()
	}
	for _, t := range f.Tensors {
		if len(t.Dims) >= 2 && t.Type.Quantized() {
			return f.Quantization()
		}
	}
	return ""
}

// CheckType returns the canonical (upper-case) name of typ, or an error
// wrapping ErrUnknownType that lists the supported types.
func (q *Quantizer) CheckType(typ string) (string, error) {
	up := strings.ToUpper(strings.TrimSpace(typ))
	if up == "" {
		return "", fmt.Errorf("%w: no type given", ErrUnknownType)
	}
	if len(q.Types) == 0 {
		return up, nil
	}
	for _, t := range q.Types {
		if strings.ToUpper(t) == up {
			return up, nil
		}
	}
	return "", fmt.Errorf("%w %q; supported types: %s", ErrUnknownType, typ, strings.Join(q.Types, ", "))
}

// Quantize writes a copy of the GGUF model in, quantized to opts.Type, to
// out. It checks the input first (see Check), runs the worker, verifies the
// result and renames it to out; on any error out is left untouched and no
// temporary file remains. Cancelling ctx kills the worker.
func (q *Quantizer) Quantize(ctx context.Context, in, out string, opts Options) error {
	if len(q.Command) == 0 {
		return ErrNoWorker
	}
	typ, err := q.CheckType(opts.Type)
	if err != nil {
		return err
	}
	src, err := Check(in)
	if err != nil {
		return err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), ".quantize-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpDir)
	tmpOut := filepath.Join(tmpDir, "out.gguf")

	total := EstimateSize(src, typ)
	args := append(slices.Clone(q.Command[1:]), WorkerArgs(in, tmpOut, typ, opts.Threads)...)
	cmd := exec.CommandContext(ctx, q.Command[0], args...)
	cmd.Env = q.Env
	var stderr tail
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: start %s: %w", ErrWorker, q.Command[0], err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	if opts.Progress != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.watch(tmpDir, total, opts.Progress, stop)
		}()
	}
	werr := cmd.Wait()
	close(stop)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if werr != nil {
		return workerError(werr, stderr.String())
	}
	f, err := gguf.ReadFile(tmpOut)
	if err != nil {
		return fmt.Errorf("%w: the output is not a valid GGUF: %w", ErrWorker, err)
	}
	if ft, ok := f.FileType(); ok && !strings.EqualFold(ft.String(), typ) && !aliasOf(ft.String(), typ) {
		return fmt.Errorf("%w: the output is %s, not %s", ErrWorker, ft, typ)
	}
	if err := os.Rename(tmpOut, out); err != nil {
		return err
	}
	if opts.Progress != nil {
		opts.Progress(Progress{Completed: total, Total: total})
	}
	return nil
}

// aliasOf accepts llama.cpp's short names (Q4_K is Q4_K_M).
func aliasOf(got, want string) bool {
	switch want {
	case "Q3_K":
		return got == "Q3_K_M"
	case "Q4_K":
		return got == "Q4_K_M"
	case "Q5_K":
		return got == "Q5_K_M"
	}
	return false
}

func workerError(err error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() == ExitAlreadyQuantized {
			return fmt.Errorf("%w: %s", ErrAlreadyQuantized, lastLine(msg))
		}
		if ee.ExitCode() == ExitUnknownType {
			return fmt.Errorf("%w: %s", ErrUnknownType, lastLine(msg))
		}
	}
	if msg == "" {
		return fmt.Errorf("%w: %w", ErrWorker, err)
	}
	return fmt.Errorf("%w: %w: %s", ErrWorker, err, msg)
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// watch samples the size of the files in dir (the worker writes its
// temporary output there) and reports it until stop closes.
func (q *Quantizer) watch(dir string, total int64, report func(Progress), stop <-chan struct{}) {
	every := q.PollInterval
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64 = -1
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var n int64
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
				n += fi.Size()
			}
		}
		n = min(n, total)
		if n != last {
			last = n
			report(Progress{Completed: n, Total: total})
		}
	}
}

// bitsPerWeight approximates each type's storage per weight, for progress
// totals only.
var bitsPerWeight = map[string]float64{
	"F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8.5, "Q6_K": 6.5625,
	"Q5_0": 5.5, "Q5_1": 6, "Q5_K_S": 5.5, "Q5_K_M": 5.7, "Q5_K": 5.7,
	"Q4_0": 4.5, "Q4_1": 5, "Q4_K_S": 4.58, "Q4_K_M": 4.85, "Q4_K": 4.85,
	"Q3_K_S": 3.5, "Q3_K_M": 3.9, "Q3_K": 3.9, "Q3_K_L": 4.27, "Q2_K": 3.35,
	"IQ4_NL": 4.5, "IQ4_XS": 4.25, "IQ3_S": 3.44, "IQ3_M": 3.66, "IQ3_XXS": 3.06,
	"TQ1_0": 1.69, "TQ2_0": 2.06,
}

// EstimateSize estimates the size in bytes of f quantized to typ: the
// header plus each weight at typ's bits per weight (one-dimensional tensors
// stay as they are). It is only a progress total.
func EstimateSize(f *gguf.File, typ string) int64 {
	bpw, ok := bitsPerWeight[strings.ToUpper(typ)]
	if !ok {
		bpw = 5
	}
	n := f.DataOffset
	for _, t := range f.Tensors {
		if len(t.Dims) >= 2 {
			n += int64(float64(t.Elements()) * bpw / 8)
		} else {
			n += t.Size()
		}
	}
	return max(n, 1)
}

// tail keeps the last 8 KiB written to it: the worker's diagnostics.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 8<<10; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.buf, nil))
}

// Exit codes of the worker that the Quantizer maps back to sentinel errors.
const (
	ExitUnknownType      = 3
	ExitAlreadyQuantized = 4
)

// WorkerArgs returns the worker's arguments after its command name:
// --type TYPE --threads N IN OUT.
func WorkerArgs(in, out, typ string, threads int) []string {
	return []string{"--type", typ, "--threads", strconv.Itoa(threads), in, out}
}
