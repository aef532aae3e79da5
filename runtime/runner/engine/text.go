package engine

import (
	"strings"
	"unicode/utf8"
)

// stopper decides which generated text may be streamed. It holds back text
// that could still become one of the stop strings, and bytes of an
// incomplete UTF-8 sequence.
type stopper struct {
	stops []string
	held  []byte // generated text not yet released
}

// push adds a piece of generated text. It returns the text that can be
// released now, and whether a stop string was found; in that case the
// text up to the stop string is released and the rest dropped.
func (s *stopper) push(piece string) (out string, stopped bool) {
	s.held = append(s.held, piece...)
	h := string(s.held)
	first, at := -1, len(h)
	for _, st := range s.stops {
		if st == "" {
			continue
		}
		if i := strings.Index(h, st); i >= 0 && i < at {
			first, at = i, i
		}
	}
	if first >= 0 {
		s.held = s.held[:0]
		return h[:at], true
	}
	keep := 0
	for _, st := range s.stops {
		if k := overlap(h, st); k > keep {
			keep = k
		}
	}
	cut := len(h) - keep
	cut = utf8Boundary(h, cut)
	out = h[:cut]
	s.held = append(s.held[:0], h[cut:]...)
	return out, false
}

// flush releases everything held back (at the end of generation).
func (s *stopper) flush() string {
	h := string(s.held)
	s.held = s.held[:0]
	return h
}

// overlap returns the length of the longest proper suffix of h that is a
// prefix of stop.
func overlap(h, stop string) int {
	n := len(stop) - 1
	if n > len(h) {
		n = len(h)
	}
	for k := n; k > 0; k-- {
		if strings.HasPrefix(stop, h[len(h)-k:]) {
			return k
		}
	}
	return 0
}

// utf8Boundary moves cut back so that h[:cut] does not end inside an
// incomplete UTF-8 sequence.
func utf8Boundary(h string, cut int) int {
	for back := 1; back <= 3 && cut-back >= 0; back++ {
		b := h[cut-back]
		if b < 0x80 {
			return cut // ASCII: complete
		}
		if utf8.RuneStart(b) {
			if !utf8.FullRuneInString(h[cut-back : cut]) {
				return cut - back
			}
			return cut
		}
	}
	return cut
}
