package quantize_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/quantize"
	"github.com/olmhq/olm/runtime/llama"
)

// workerEnv makes the test binary act as `olm quantize-worker`, the way
// cmd/olm does: the same arguments, the same llama.Quantize call and exit codes.
const workerEnv = "OLM_TEST_QUANTIZE_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(worker(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func worker(args []string) int {
	fs := flag.NewFlagSet("quantize-worker", flag.ContinueOnError)
	typ := fs.String("type", "", "")
	threads := fs.Int("threads", 0, "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: quantize-worker --type T --threads N IN OUT")
		return 2
	}
	err := llama.Quantize(context.Background(), fs.Arg(0), fs.Arg(1), llama.QuantizeParams{FileType: *typ, Threads: *threads})
	switch {
	case err == nil:
		return 0
	case errors.Is(err, llama.ErrUnknownFileType):
		fmt.Fprintln(os.Stderr, err)
		return quantize.ExitUnknownType
	case errors.Is(err, llama.ErrAlreadyQuantized):
		fmt.Fprintln(os.Stderr, err)
		return quantize.ExitAlreadyQuantized
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

func selfQuantizer(t testing.TB) *quantize.Quantizer {
	t.Helper()
	testenv.LlamaDir(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &quantize.Quantizer{
		Command:      []string{exe},
		Env:          append(os.Environ(), workerEnv+"=1"),
		Types:        llama.FileTypes(),
		PollInterval: 5 * time.Millisecond,
	}
}

// writeGGUF writes a one-tensor GGUF with the given file type and tensor type.
func writeGGUF(t *testing.T, path string, ft gguf.FileType, tt gguf.TensorType) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti := gguf.TensorInfo{Name: "w", Dims: []uint64{256, 2}, Type: tt}
	w, err := gguf.NewWriter(f, gguf.Header{
		KV:      []gguf.KV{{Key: "general.architecture", Value: gguf.String("llama")}, {Key: "general.file_type", Value: gguf.Uint32(uint32(ft))}},
		Tensors: []gguf.TensorInfo{ti},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, ti.Size())); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	q8 := filepath.Join(dir, "q8.gguf")
	writeGGUF(t, q8, gguf.FileTypeQ8_0, gguf.TensorQ8_0)
	f16 := filepath.Join(dir, "f16.gguf")
	writeGGUF(t, f16, gguf.FileTypeF16, gguf.TensorF16)
	text := filepath.Join(dir, "text.gguf")
	os.WriteFile(text, []byte("not a model"), 0o644)
	b, _ := os.ReadFile(f16)
	trunc := filepath.Join(dir, "trunc.gguf")
	os.WriteFile(trunc, b[:len(b)-10], 0o644)

	tests := []struct {
		path string
		err  error
		msg  string
	}{
		{f16, nil, ""},
		{q8, quantize.ErrAlreadyQuantized, "q8.gguf is Q8_0; quantize from an F32, F16 or BF16 model"},
		{text, quantize.ErrInput, "not a GGUF"},
		{trunc, quantize.ErrInput, "truncated"},
		{filepath.Join(dir, "none.gguf"), quantize.ErrInput, "no such file"},
	}
	for _, tt := range tests {
		_, err := quantize.Check(tt.path)
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("Check(%s) = %v, want %v", filepath.Base(tt.path), err, tt.err)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Check(%s) = %q, want it to mention %q", filepath.Base(tt.path), err, tt.msg)
		}
	}
}

func TestQuantizeRefusesBeforeStarting(t *testing.T) {
	dir := t.TempDir()
	q8 := filepath.Join(dir, "q8.gguf")
	writeGGUF(t, q8, gguf.FileTypeQ8_0, gguf.TensorQ8_0)
	f16 := filepath.Join(dir, "f16.gguf")
	writeGGUF(t, f16, gguf.FileTypeF16, gguf.TensorF16)
	// A worker that would fail loudly if it were ever started.
	q := &quantize.Quantizer{Command: []string{"/bin/false"}, Types: []string{"Q4_K_M", "Q8_0"}}
	out := filepath.Join(dir, "out.gguf")
	if err := q.Quantize(context.Background(), q8, out, quantize.Options{Type: "q4_K_M"}); !errors.Is(err, quantize.ErrAlreadyQuantized) {
		t.Errorf("already quantized: %v", err)
	}
	if err := q.Quantize(context.Background(), f16, out, quantize.Options{Type: "q4_zz"}); !errors.Is(err, quantize.ErrUnknownType) || !strings.Contains(err.Error(), "Q4_K_M, Q8_0") {
		t.Errorf("unknown type: %v", err)
	}
	if err := (&quantize.Quantizer{}).Quantize(context.Background(), f16, out, quantize.Options{Type: "q8_0"}); !errors.Is(err, quantize.ErrNoWorker) {
		t.Errorf("no worker: %v", err)
	}
	assertOnly(t, dir, "f16.gguf", "q8.gguf")
}

func TestWorkerCrashAndCancel(t *testing.T) {
	dir := t.TempDir()
	f16 := filepath.Join(dir, "f16.gguf")
	writeGGUF(t, f16, gguf.FileTypeF16, gguf.TensorF16)
	out := filepath.Join(dir, "out.gguf")

	// The worker writes part of its output and dies of SIGSEGV, as a crash in C would.
	crash := &quantize.Quantizer{Command: []string{"/bin/sh", "-c", `echo "ggml: bad tensor" >&2; echo partial > "$(dirname "$6")/x.tmp"; kill -SEGV $$`, "sh"}}
	err := crash.Quantize(context.Background(), f16, out, quantize.Options{Type: "q8_0"})
	if !errors.Is(err, quantize.ErrWorker) || !strings.Contains(err.Error(), "segmentation fault") || !strings.Contains(err.Error(), "ggml: bad tensor") {
		t.Errorf("crash: %v", err)
	}
	assertOnly(t, dir, "f16.gguf")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	slow := &quantize.Quantizer{Command: []string{"/bin/sh", "-c", `exec sleep 30`, "sh"}}
	start := time.Now()
	err = slow.Quantize(ctx, f16, out, quantize.Options{Type: "q8_0"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("cancel: %v after %v", err, time.Since(start))
	}
	assertOnly(t, dir, "f16.gguf")

	// A worker that exits 0 without a valid output is a failure too.
	liar := &quantize.Quantizer{Command: []string{"/bin/sh", "-c", `echo junk > "$6"`, "sh"}}
	if err := liar.Quantize(context.Background(), f16, out, quantize.Options{Type: "q8_0"}); !errors.Is(err, quantize.ErrWorker) {
		t.Errorf("bad output: %v", err)
	}
	assertOnly(t, dir, "f16.gguf")
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("files in %s: %v, want %v", dir, got, names)
	}
}

func TestQuantizeTiny(t *testing.T) {
	q := selfQuantizer(t)
	in := testmodel.Tiny(t)
	dir := t.TempDir()
	for _, typ := range []string{"q8_0", "Q4_K_M"} {
		out := filepath.Join(dir, typ+".gguf")
		var calls, last atomic.Int64
		err := q.Quantize(context.Background(), in, out, quantize.Options{Type: typ, Progress: func(p quantize.Progress) {
			calls.Add(1)
			if p.Completed > p.Total {
				t.Errorf("progress %d > total %d", p.Completed, p.Total)
			}
			last.Store(p.Completed)
		}})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		f, err := gguf.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Quantization(); !strings.EqualFold(got, typ) {
			t.Errorf("quantized to %s: file type %s", typ, got)
		}
		src, _ := gguf.ReadFile(in)
		if f.ParameterCount() != src.ParameterCount() {
			t.Errorf("parameter count changed: %d → %d", src.ParameterCount(), f.ParameterCount())
		}
		if calls.Load() == 0 {
			t.Error("no progress reported")
		}
		// Quantizing the result again is refused.
		if err := q.Quantize(context.Background(), out, out+".2", quantize.Options{Type: "q4_K_S"}); !errors.Is(err, quantize.ErrAlreadyQuantized) {
			t.Errorf("requantize: %v", err)
		}
	}
}
