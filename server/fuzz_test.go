package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzEndpoints sends arbitrary bodies to every POST endpoint: the server
// must answer with a status below 500 and a JSON body (or a JSON stream),
// never panic.
func FuzzEndpoints(f *testing.F) {
	seeds := []string{
		`{"model":"tiny","prompt":"hi"}`,
		`{"model":"mario","prompt":"hi","stream":false,"options":{"temperature":0.2},"format":"json"}`,
		`{"model":"tiny","messages":[{"role":"user","content":"x","images":["aGk="]}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
		`{"model":"tiny","input":["a","b"],"dimensions":2}`,
		`{"model":"tiny","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"stream":true}`,
		`{"model":"tiny","template":"{{ .Prompt }}{{ range .Messages }}{{ end }}","prompt":"x","stream":false}`,
		`{"source":"tiny","destination":"x"}`, `{"model":"x","files":{"a":"sha256:00"}}`,
		`{}`, `[]`, `null`, ``, `{"model":`,
	}
	for _, s := range seeds {
		f.Add(uint8(0), s)
	}
	paths := []string{"/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/show", "/api/copy", "/api/create",
		"/api/pull", "/api/push", "/v1/chat/completions", "/v1/completions", "/v1/embeddings"}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		e := newEnv(t)
		path := paths[int(which)%len(paths)]
		w := e.do("POST", path, body)
		if w.Code >= 500 {
			t.Fatalf("POST %s %q: status %d: %s", path, body, w.Code, w.Body)
		}
		b := w.Body.String()
		if strings.HasPrefix(path, "/v1/") && strings.HasPrefix(b, "data: ") {
			return
		}
		dec := json.NewDecoder(strings.NewReader(b))
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("POST %s %q: body is not JSON: %v: %q", path, body, err, b)
			}
		}
	})
}
