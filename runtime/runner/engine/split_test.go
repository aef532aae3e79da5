package engine_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/runtime/runner"
)

// TestSplitModel runs a model split into three GGUF parts named by their
// digests, as the blob store keeps them: the runner gets the first part as
// --model and the others as --model-part, and generates what the whole
// model generates.
func TestSplitModel(t *testing.T) {
	needLlama(t)
	src := smallModel(t)
	dir := t.TempDir()
	parts, err := testmodel.Split(src, 3, func(i int) string { return filepath.Join(dir, "part"+strconv.Itoa(i)) })
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		parts[i] = filepath.Join(dir, "sha256-"+hex.EncodeToString(sum[:]))
		if err := os.Rename(p, parts[i]); err != nil {
			t.Fatal(err)
		}
	}
	req := runner.CompletionRequest{Prompt: "Once upon a time", Options: greedy(24)}
	whole := start(t, runner.LoadOptions{Model: src, NumCtx: 256})
	want, _ := complete(t, whole.Client(), req)

	split := start(t, runner.LoadOptions{Model: parts[0], Parts: parts[1:], NumCtx: 256})
	if got, want := split.Info().Params, whole.Info().Params; got != want {
		t.Errorf("split model has %d params, whole %d", got, want)
	}
	got, last := complete(t, split.Client(), req)
	if got != want || last.EvalCount != 24 {
		t.Errorf("split model generated %q (%d tokens), whole model %q", got, last.EvalCount, want)
	}

	// The first part alone cannot find its siblings by name: the runner
	// exits with llama.cpp's reason.
	_, err = runner.Start(t.Context(), startOpts(t, runner.LoadOptions{Model: parts[0], NumCtx: 256}))
	if !errors.Is(err, runner.ErrRunnerExited) {
		t.Fatalf("first part only: err = %v, want ErrRunnerExited", err)
	}
	t.Logf("first part only: %v", err)
}
