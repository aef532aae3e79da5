package engine

import (
	"encoding/json"
	"unicode/utf8"
)

// pieceEvent is a streamed piece of text on the wire: the form of a
// runner.CompletionEvent or runner.ChatEvent that carries only Content
// and Thinking. It is encoded by hand (appendEvent), without reflection,
// as encoding/json would encode those events.
type pieceEvent struct {
	content, thinking string
}

// appendEvent appends v as one NDJSON line.
func appendEvent(b []byte, v any) ([]byte, error) {
	if p, ok := v.(pieceEvent); ok {
		b = append(b, '{')
		if p.content != "" {
			b = append(b, `"content":`...)
			b = appendJSONString(b, p.content)
		}
		if p.thinking != "" {
			if p.content != "" {
				b = append(b, ',')
			}
			b = append(b, `"thinking":`...)
			b = appendJSONString(b, p.thinking)
		}
		return append(b, '}', '\n'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(append(b, j...), '\n'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Like encoding/json it
// writes invalid UTF-8 as U+FFFD and escapes control characters, U+2028
// and U+2029; unlike it, it leaves <, > and & as they are (the stream is
// not HTML).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
