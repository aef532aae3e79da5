//go:build !cgo

package llama_test

import (
	"context"
	"errors"
	"testing"

	"github.com/olmhq/olm/runtime/llama"
)

func TestNoCGO(t *testing.T) {
	if llama.Available() {
		t.Fatal("Available() in a build without cgo")
	}
	if _, err := llama.LoadModel(context.Background(), "x.gguf", llama.DefaultModelParams()); !errors.Is(err, llama.ErrNoCGO) {
		t.Errorf("LoadModel: %v, want ErrNoCGO", err)
	}
	if err := llama.Quantize(context.Background(), "a", "b", llama.QuantizeParams{FileType: "q8_0"}); !errors.Is(err, llama.ErrNoCGO) {
		t.Errorf("Quantize: %v", err)
	}
	if _, err := llama.ParseChat("x", false, llama.ChatParseParams{}); !errors.Is(err, llama.ErrNoCGO) {
		t.Errorf("ParseChat: %v", err)
	}
}
