package engine

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/olmhq/olm/runtime/runner"
)

// FuzzPieceEvent checks the hand-written encoding of streamed pieces
// against encoding/json: both decode to the same event.
func FuzzPieceEvent(f *testing.F) {
	for _, s := range []string{"", "a", `"quoted" \ back`, "tab\tnl\ncr\r\x00\x1f", "<b>&amp;</b>", "héllo 世界 🙂",
		"\xff\xfe bad", "\xe4\xb8", "line\u2028sep\u2029", "\x7f"} {
		f.Add(s, "")
		f.Add(s, "think "+s)
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, content, thinking string) {
		if content == "" && thinking == "" {
			return
		}
		line, err := appendEvent(nil, pieceEvent{content: content, thinking: thinking})
		if err != nil {
			t.Fatal(err)
		}
		if len(line) == 0 || line[len(line)-1] != '\n' || !json.Valid(line[:len(line)-1]) {
			t.Fatalf("%q: invalid line %q", content, line)
		}
		var got runner.ChatEvent
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(runner.ChatEvent{Content: content, Thinking: thinking})
		var w runner.ChatEvent
		json.Unmarshal(want, &w)
		if got != w {
			t.Fatalf("content %q thinking %q: decoded %+v, encoding/json's line decodes to %+v", content, thinking, got, w)
		}
		if thinking == "" {
			var c runner.CompletionEvent
			if err := json.Unmarshal(line, &c); err != nil || c.Content != w.Content {
				t.Fatalf("as a completion event: %+v %v", c, err)
			}
		}
	})
}

// BenchmarkPieceEncode measures writing one streamed piece: appendEvent
// against the encoding/json Encoder the runner used before.
func BenchmarkPieceEncode(b *testing.B) {
	b.Run("appendEvent", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; i < b.N; i++ {
			buf, _ = appendEvent(buf[:0], pieceEvent{content: " word\n"})
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for i := 0; i < b.N; i++ {
			buf.Reset()
			enc.Encode(runner.CompletionEvent{Content: " word\n"})
		}
	})
}
