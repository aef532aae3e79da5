package runner

import (
	"encoding/json"
	"testing"
)

// FuzzPlainPiece checks the fast path of stream against encoding/json: a
// line plainPiece accepts decodes, with json.Unmarshal, to exactly that key
// and value.
func FuzzPlainPiece(f *testing.F) {
	for _, s := range []string{`{"content":"hello"}`, `{"content":""}` + "\n", `{"thinking":"a b"}` + "\r\n", `{"content":"}`,
		`{"content":"a\"b"}`, `{"content":"a\\nb"}`, `{"Content":"x"}`, `{"done":true}`, `{"content":"x","done":true}`,
		`{"content":"héllo 世界"}`, "{\"content\":\"\xff\"}", "{\"content\":\"\x01\"}", `{"content":"a"}{"content":"b"}`,
		`{"":"x"}`, `{"content" :"x"}`, `{"content":"x"} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		key, val, ok := plainPiece(line)
		if !ok {
			return
		}
		var m map[string]string
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%q: plainPiece gave %q=%q, json.Unmarshal fails: %v", line, key, val, err)
		}
		if len(m) != 1 || m[key] != val {
			t.Fatalf("%q: plainPiece gave %q=%q, json.Unmarshal %v", line, key, val, m)
		}
		if key == "content" {
			var ev CompletionEvent
			if err := json.Unmarshal(line, &ev); err != nil || ev.Content != val {
				t.Fatalf("%q: as an event %+v %v", line, ev, err)
			}
		}
	})
}
