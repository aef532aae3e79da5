package build_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/quantize"
	"github.com/olmhq/olm/runtime/llama"
)

// workerEnv makes the test binary act as `olm quantize-worker`.
const workerEnv = "OLM_TEST_QUANTIZE_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(worker(os.Args[1:]))
	}
	if os.Getenv(unpackEnv) != "" {
		os.Exit(unpackHelper(os.Getenv(unpackEnv)))
	}
	os.Exit(m.Run())
}

func worker(args []string) int {
	fs := flag.NewFlagSet("quantize-worker", flag.ContinueOnError)
	typ := fs.String("type", "", "")
	threads := fs.Int("threads", 0, "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		return 2
	}
	err := llama.Quantize(context.Background(), fs.Arg(0), fs.Arg(1), llama.QuantizeParams{FileType: *typ, Threads: *threads})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, llama.ErrAlreadyQuantized) {
			return quantize.ExitAlreadyQuantized
		}
		return 1
	}
	return 0
}

// realQuantizer runs the test binary as the quantize worker.
func realQuantizer(t testing.TB) *quantize.Quantizer {
	t.Helper()
	if os.Getenv("OLM_BENCH_LLAMA_QUANTIZE") == "" {
		testenv.LlamaDir(t)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &quantize.Quantizer{Command: []string{exe}, Env: append(os.Environ(), workerEnv+"=1"), Types: llama.FileTypes()}
}
