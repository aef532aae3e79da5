package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{`"5m"`, 5 * time.Minute, false},
		{`"1h30m"`, 90 * time.Minute, false},
		{`"0"`, 0, false},
		{`0`, 0, false},
		{`300`, 300 * time.Second, false},
		{`1.5`, 1500 * time.Millisecond, false},
		{`-1`, Forever, false},
		{`"-1"`, Forever, false},
		{`"-5m"`, Forever, false},
		{`"300"`, 300 * time.Second, false},
		{`"soon"`, 0, true},
		{`true`, 0, true},
		{`1e400`, 0, true},
	}
	for _, tt := range tests {
		var d Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if tt.err {
			if !errors.Is(err, ErrInvalidDuration) {
				t.Errorf("%s: err = %v, want ErrInvalidDuration", tt.in, err)
			}
			continue
		}
		if err != nil || d.Duration != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.in, d.Duration, err, tt.want)
		}
	}
	for _, tt := range []struct {
		d    *Duration
		want string
	}{{NewDuration(5 * time.Minute), `"5m0s"`}, {NewDuration(-1), `-1`}, {NewDuration(0), `"0s"`}} {
		b, _ := json.Marshal(tt.d)
		if string(b) != tt.want {
			t.Errorf("marshal %v = %s, want %s", tt.d.Duration, b, tt.want)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back.Duration != tt.d.Duration {
			t.Errorf("round trip %s = %v, %v", b, back.Duration, err)
		}
	}
}

func TestOptions(t *testing.T) {
	base := Options{Temperature: Ptr[float32](0.5), NumCtx: Ptr(1024), Stop: []string{"a"}}
	over := Options{Temperature: Ptr[float32](0), TopK: Ptr(3)}
	m := base.Merge(over)
	if *m.Temperature != 0 || *m.TopK != 3 || *m.NumCtx != 1024 || m.Stop[0] != "a" {
		t.Errorf("merge = %+v", m.Map())
	}
	if *base.Temperature != 0.5 || base.TopK != nil {
		t.Errorf("merge modified its input")
	}
	if !(Options{}).IsZero() || m.IsZero() {
		t.Errorf("IsZero wrong")
	}
	o, err := OptionsFromMap(map[string]any{"temperature": 0.7, "stop": "</s>", "num_ctx": 2048.0, "use_mmap": false})
	if err != nil || *o.Temperature != 0.7 || o.Stop[0] != "</s>" || *o.NumCtx != 2048 || *o.UseMMap {
		t.Errorf("from map = %+v, %v", o.Map(), err)
	}
	if _, err := OptionsFromMap(map[string]any{"nonsense": 1}); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("unknown parameter err = %v", err)
	}
	if _, err := OptionsFromMap(map[string]any{"num_ctx": "big"}); err == nil || !strings.Contains(err.Error(), "num_ctx") {
		t.Errorf("mistyped parameter err = %v", err)
	}
	// Every documented option of the API reference decodes.
	doc := `{"num_keep":5,"seed":42,"num_predict":100,"top_k":20,"top_p":0.9,"min_p":0.0,"typical_p":0.7,"repeat_last_n":33,
	"temperature":0.8,"repeat_penalty":1.2,"presence_penalty":1.5,"frequency_penalty":1.0,"penalize_newline":true,"stop":["\n","user:"],
	"numa":false,"num_ctx":1024,"num_batch":2,"num_gpu":1,"main_gpu":0,"use_mmap":true,"num_thread":8}`
	var all Options
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&all); err != nil {
		t.Fatalf("documented options: %v", err)
	}
	var back map[string]any
	b, _ := json.Marshal(all)
	json.Unmarshal(b, &back)
	if len(back) != 21 {
		t.Errorf("round trip kept %d of 21 options: %s", len(back), b)
	}
}

func TestFlexibleFields(t *testing.T) {
	var e EmbedRequest
	if err := json.Unmarshal([]byte(`{"model":"m","input":"one"}`), &e); err != nil || len(e.Input) != 1 {
		t.Errorf("string input: %v %v", e.Input, err)
	}
	if err := json.Unmarshal([]byte(`{"model":"m","input":["a","b"]}`), &e); err != nil || len(e.Input) != 2 {
		t.Errorf("list input: %v %v", e.Input, err)
	}
	if err := json.Unmarshal([]byte(`{"model":"m","input":5}`), &e); err == nil {
		t.Errorf("number input accepted")
	}
	var g GenerateRequest
	for _, tt := range []struct {
		in string
		on bool
	}{{`true`, true}, {`false`, false}, {`"high"`, true}, {`"low"`, true}} {
		if err := json.Unmarshal([]byte(`{"think":`+tt.in+`}`), &g); err != nil || g.Think.Enabled() != tt.on {
			t.Errorf("think %s: %v %v", tt.in, g.Think, err)
		}
	}
	if err := json.Unmarshal([]byte(`{"think":"max"}`), &g); err == nil {
		t.Errorf("think max accepted")
	}
	var c CreateRequest
	if err := json.Unmarshal([]byte(`{"license":"MIT"}`), &c); err != nil || c.License[0] != "MIT" {
		t.Errorf("license string: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"license":["MIT","Apache"]}`), &c); err != nil || len(c.License) != 2 {
		t.Errorf("license list: %v", err)
	}
	// Images are base64 on the wire.
	b, _ := json.Marshal(Message{Role: "user", Images: []ImageData{[]byte("hi")}})
	if !strings.Contains(string(b), `"images":["aGk="]`) {
		t.Errorf("images = %s", b)
	}
}

func TestParseHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "http://127.0.0.1:11434"},
		{"127.0.0.1:11434", "http://127.0.0.1:11434"},
		{"0.0.0.0", "http://127.0.0.1:11434"},
		{"0.0.0.0:8080", "http://127.0.0.1:8080"},
		{":9000", "http://127.0.0.1:9000"},
		{"example.com", "http://example.com:11434"},
		{"http://example.com", "http://example.com:80"},
		{"https://example.com", "https://example.com:443"},
		{"https://example.com:8443/olm/", "https://example.com:8443/olm"},
		{"[::1]:11434", "http://[::1]:11434"},
		{"::", "http://[::1]:11434"},
	}
	for _, tt := range tests {
		u, err := ParseHost(tt.in)
		if err != nil || u.String() != tt.want {
			t.Errorf("ParseHost(%q) = %v, %v; want %s", tt.in, u, err, tt.want)
		}
	}
	for _, bad := range []string{"ftp://x", "host:99999", "host:abc"} {
		if _, err := ParseHost(bad); err == nil {
			t.Errorf("ParseHost(%q) accepted", bad)
		}
	}
}

func TestClient(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/generate", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"need key"}`)
			return
		}
		var req GenerateRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Model == "missing" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":"model \"missing\" not found"}`)
			return
		}
		if req.Model == "midway" {
			fmt.Fprintln(w, `{"model":"midway","response":"a","done":false}`)
			fmt.Fprintln(w, `{"error":"runner crashed"}`)
			return
		}
		fmt.Fprintln(w, `{"model":"m","response":"Hel","done":false}`)
		fmt.Fprintln(w, `{"model":"m","response":"lo","done":false}`)
		fmt.Fprintln(w, `{"model":"m","response":"","done":true,"eval_count":2,"eval_duration":1000}`)
	})
	mux.HandleFunc("GET /api/tags", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"models":[{"name":"a:latest","model":"a:latest","size":3}]}`)
	})
	mux.HandleFunc("HEAD /api/blobs/{d}", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.PathValue("d"), "0") {
			w.WriteHeader(200)
			return
		}
		w.WriteHeader(404)
	})
	mux.HandleFunc("POST /api/blobs/{d}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != "data" {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(201)
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	u, _ := ParseHost(ts.URL)
	c := NewClient(u, ClientOptions{APIKey: "k"})
	ctx := context.Background()

	var got strings.Builder
	var final GenerateResponse
	err := c.Generate(ctx, &GenerateRequest{Model: "m", Prompt: "hi"}, func(r GenerateResponse) error {
		got.WriteString(r.Response)
		if r.Done {
			final = r
		}
		return nil
	})
	if err != nil || got.String() != "Hello" || final.EvalCount != 2 || final.EvalDuration != 1000 {
		t.Errorf("generate = %q %+v %v", got.String(), final, err)
	}
	err = c.Generate(ctx, &GenerateRequest{Model: "missing"}, func(GenerateResponse) error { return nil })
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || !strings.Contains(se.ErrorMessage, "not found") {
		t.Errorf("404 = %v", err)
	}
	err = c.Generate(ctx, &GenerateRequest{Model: "midway"}, func(GenerateResponse) error { return nil })
	if !errors.As(err, &se) || se.ErrorMessage != "runner crashed" {
		t.Errorf("mid-stream error = %v", err)
	}
	stop := errors.New("stop")
	if err := c.Generate(ctx, &GenerateRequest{Model: "m"}, func(GenerateResponse) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error = %v", err)
	}
	nokey := NewClient(u, ClientOptions{})
	if err := nokey.Generate(ctx, &GenerateRequest{Model: "m"}, func(GenerateResponse) error { return nil }); !errors.As(err, &se) || se.StatusCode != 401 {
		t.Errorf("no key = %v", err)
	}
	l, err := c.List(ctx)
	if err != nil || len(l.Models) != 1 || l.Models[0].Size != 3 {
		t.Errorf("list = %+v %v", l, err)
	}
	if ok, err := c.HasBlob(ctx, "sha256:0"); !ok || err != nil {
		t.Errorf("HasBlob present = %v %v", ok, err)
	}
	if ok, err := c.HasBlob(ctx, "sha256:1"); ok || err != nil {
		t.Errorf("HasBlob absent = %v %v", ok, err)
	}
	if err := c.CreateBlob(ctx, "sha256:0", strings.NewReader("data")); err != nil {
		t.Errorf("CreateBlob = %v", err)
	}
	if err := c.CreateBlob(ctx, "sha256:0", strings.NewReader("bad")); !errors.As(err, &se) || se.StatusCode != 400 {
		t.Errorf("CreateBlob mismatch = %v", err)
	}
}
