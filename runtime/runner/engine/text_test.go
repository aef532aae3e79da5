package engine

import (
	"strings"
	"testing"
)

func TestStopperHoldsBackStopStrings(t *testing.T) {
	tests := []struct {
		name    string
		stops   []string
		pieces  []string
		want    string // released text, concatenated
		stopped bool
	}{
		{"no stops", nil, []string{"hel", "lo"}, "hello", false},
		{"stop in one piece", []string{"END"}, []string{"abc", "END", "x"}, "abc", true},
		{"stop across pieces", []string{"<|end|>"}, []string{"hi <|", "en", "d|> more"}, "hi ", true},
		{"false start released", []string{"<|end|>"}, []string{"a <|e", "x"}, "a <|ex", false},
		{"earliest of several", []string{"bb", "a"}, []string{"xxbba"}, "xx", true},
		{"stop mid piece", []string{"\n\n"}, []string{"one\n", "\ntwo"}, "one", true},
		{"utf8 split", nil, []string{"caf\xc3", "\xa9!"}, "café!", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &stopper{stops: tt.stops}
			var got strings.Builder
			stopped := false
			for _, p := range tt.pieces {
				out, st := s.push(p)
				got.WriteString(out)
				for _, stop := range tt.stops {
					if strings.Contains(got.String(), stop) {
						t.Fatalf("released text %q contains stop %q", got.String(), stop)
					}
				}
				if st {
					stopped = true
					break
				}
			}
			if !stopped {
				got.WriteString(s.flush())
			}
			if got.String() != tt.want || stopped != tt.stopped {
				t.Fatalf("got %q stopped=%v, want %q stopped=%v", got.String(), stopped, tt.want, tt.stopped)
			}
		})
	}
}

func TestStopperUTF8Holdback(t *testing.T) {
	s := &stopper{}
	out, _ := s.push("a\xe2\x82")
	if out != "a" {
		t.Fatalf("released %q, want %q (incomplete rune held)", out, "a")
	}
	out, _ = s.push("\xac")
	if out != "€" {
		t.Fatalf("released %q, want €", out)
	}
}

func FuzzStopper(f *testing.F) {
	f.Add("hello <|end|> world", "<|end|>", 3)
	f.Add("ab\xc3\xa9cd", "cd", 1)
	f.Fuzz(func(t *testing.T, text, stop string, chunk int) {
		if chunk <= 0 || chunk > 64 {
			chunk = 1
		}
		s := &stopper{stops: []string{stop}}
		var got strings.Builder
		stopped := false
		for i := 0; i < len(text) && !stopped; i += chunk {
			j := i + chunk
			if j > len(text) {
				j = len(text)
			}
			out, st := s.push(text[i:j])
			got.WriteString(out)
			stopped = st
		}
		if !stopped {
			got.WriteString(s.flush())
		}
		want := text
		if stop != "" {
			if i := strings.Index(text, stop); i >= 0 {
				want = text[:i]
			}
		}
		if got.String() != want {
			t.Fatalf("text %q stop %q chunk %d: got %q want %q", text, stop, chunk, got.String(), want)
		}
	})
}
