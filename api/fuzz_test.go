package api

import (
	"encoding/json"
	"testing"
)

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5m", "0", "-1", "1h30m", "300", "1.5", "", "soon", "9999999999999999999", "-0", "1e308", "NaN", "Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Errorf("ParseDuration(%q) = %v: negative values must become Forever", s, d)
		}
		var jd Duration
		b, _ := json.Marshal(s)
		if err := json.Unmarshal(b, &jd); err == nil {
			if jd.Duration < 0 {
				t.Errorf("JSON %s decoded to negative %v", b, jd.Duration)
			}
			out, err := json.Marshal(jd)
			if err != nil {
				t.Fatal(err)
			}
			var back Duration
			if err := json.Unmarshal(out, &back); err != nil || back.Duration != jd.Duration {
				t.Errorf("round trip of %q: %s -> %v, %v", s, out, back.Duration, err)
			}
		}
	})
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"", "127.0.0.1:11434", "0.0.0.0", ":1", "http://x", "https://x:1/p", "[::1]:2", "::", "a:b:c", "http://", "ftp://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseHost(s)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Errorf("ParseHost(%q) scheme %q", s, u.Scheme)
		}
		if u.Host == "" {
			t.Errorf("ParseHost(%q) has no host", s)
		}
	})
}

func FuzzRequestJSON(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","prompt":"p","keep_alive":"5m","options":{"temperature":0.1,"stop":["a"]},"think":"high","format":{"type":"object"}}`,
		`{"model":"m","input":["a","b"],"truncate":false}`,
		`{"model":"m","input":"a"}`,
		`{"license":["a"],"parameters":{"stop":"x"}}`,
		`{"keep_alive":-1}`, `{"think":true}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var g GenerateRequest
		_ = json.Unmarshal(b, &g)
		var c ChatRequest
		_ = json.Unmarshal(b, &c)
		var e EmbedRequest
		_ = json.Unmarshal(b, &e)
		var cr CreateRequest
		if json.Unmarshal(b, &cr) == nil && cr.Parameters != nil {
			_, _ = OptionsFromMap(cr.Parameters)
		}
	})
}
