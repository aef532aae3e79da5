package engine

import (
	"testing"

	"github.com/olmhq/olm/runtime/llama"
)

func seq(n int) []llama.Token {
	out := make([]llama.Token, n)
	for i := range out {
		out[i] = llama.Token(i)
	}
	return out
}

func TestTruncatePrompt(t *testing.T) {
	tests := []struct {
		name          string
		n, nCtx, keep int
		wantLen       int
		wantKept      int // leading tokens kept from the start
		trunc         bool
	}{
		{"fits", 100, 256, 4, 100, 100, false},
		{"one short of full fits", 255, 256, 4, 255, 255, false},
		{"full is cut", 256, 256, 4, 192, 4, true},
		{"long", 1000, 256, 4, 192, 4, true},
		{"keep 0", 1000, 256, 0, 192, 0, true},
		{"keep -1 means half", 1000, 256, -1, 192, 128, true},
		{"keep capped at half", 1000, 256, 500, 192, 128, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, trunc := truncatePrompt(seq(tt.n), tt.nCtx, tt.keep)
			if len(got) != tt.wantLen || trunc != tt.trunc {
				t.Fatalf("len %d trunc %v, want %d %v", len(got), trunc, tt.wantLen, tt.trunc)
			}
			for i := 0; i < tt.wantKept; i++ {
				if got[i] != llama.Token(i) {
					t.Fatalf("token %d = %d, want the prompt's start kept", i, got[i])
				}
			}
			// The rest is the end of the prompt.
			tail := got[tt.wantKept:]
			for i, tok := range tail {
				if want := llama.Token(tt.n - len(tail) + i); tok != want {
					t.Fatalf("tail token %d = %d, want %d", i, tok, want)
				}
			}
		})
	}
}
