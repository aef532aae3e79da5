package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
		if len(m) != 1 || m[string(key)] != val {
			t.Fatalf("%q: plainPiece gave %q=%q, json.Unmarshal %v", line, key, val, m)
		}
		if string(key) == "content" {
			var ev CompletionEvent
			if err := json.Unmarshal(line, &ev); err != nil || ev.Content != val {
				t.Fatalf("%q: as an event %+v %v", line, ev, err)
			}
		}
	})
}

// BenchmarkStreamDecode measures the client's cost per streamed event:
// a runner answer of 256 pieces and a final event, read by
// Client.Completion, against decoding the same bytes with encoding/json's
// Decoder (what Client did before).
func BenchmarkStreamDecode(b *testing.B) {
	const n = 256
	var body bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&body, "{\"content\":\" word%d\"}\n", i)
	}
	final, _ := json.Marshal(CompletionEvent{Done: true, DoneReason: DoneLength, Timings: Timings{EvalCount: n}, Context: make([]int32, 300)})
	body.Write(append(final, '\n'))
	data := body.Bytes()

	b.Run("client", func(b *testing.B) {
		c := fakeRunner(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			k := 0
			if _, err := c.Completion(context.Background(), CompletionRequest{Prompt: "x"}, func(CompletionEvent) error { k++; return nil }); err != nil || k != n+1 {
				b.Fatal(k, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n+1)), "ns/event")
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			dec := json.NewDecoder(bytes.NewReader(data))
			for k := 0; k <= n; k++ {
				var ev CompletionEvent
				if err := dec.Decode(&ev); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n+1)), "ns/event")
	})
	b.Run("plainPiece", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			rest := data
			for len(rest) > 0 {
				j := bytes.IndexByte(rest, '\n')
				var ev CompletionEvent
				if _, v, ok := plainPiece(rest[:j+1]); ok {
					ev.Content = v
				} else if err := json.Unmarshal(rest[:j+1], &ev); err != nil {
					b.Fatal(err)
				}
				rest = rest[j+1:]
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n+1)), "ns/event")
	})
}
