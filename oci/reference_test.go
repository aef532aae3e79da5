package oci

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const (
	hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dgA  = "sha256:" + hexA
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		in   string
		want Reference
	}{
		{"llama3.2", Reference{"registry.ollama.ai", "library/llama3.2", "latest", ""}},
		{"llama3.2:1b", Reference{"registry.ollama.ai", "library/llama3.2", "1b", ""}},
		{"llama3.2:3b-instruct-q4_K_M", Reference{"registry.ollama.ai", "library/llama3.2", "3b-instruct-q4_K_M", ""}},
		{"jmorgan/mixtral:v1.0", Reference{"registry.ollama.ai", "jmorgan/mixtral", "v1.0", ""}},
		{"a/b/c", Reference{"registry.ollama.ai", "a/b/c", "latest", ""}},
		{"ghcr.io/org/team/model:tag", Reference{"ghcr.io", "org/team/model", "tag", ""}},
		{"ghcr.io/org/model", Reference{"ghcr.io", "org/model", "latest", ""}},
		{"ghcr.io/model", Reference{"ghcr.io", "model", "latest", ""}},
		{"localhost/model", Reference{"localhost", "model", "latest", ""}},
		{"localhost:5000/model:v1", Reference{"localhost:5000", "model", "v1", ""}},
		{"127.0.0.1:5000/a/b:c", Reference{"127.0.0.1:5000", "a/b", "c", ""}},
		{"[::1]:5000/m", Reference{"[::1]:5000", "m", "latest", ""}},
		{"[::1]/m", Reference{"[::1]", "m", "latest", ""}},
		{"host.example:443/ns/m@" + dgA, Reference{"host.example:443", "ns/m", "", dgA}},
		{"ghcr.io/ns/m:v2@" + dgA, Reference{"ghcr.io", "ns/m", "v2", dgA}},
		{"llama3.2@" + dgA, Reference{"registry.ollama.ai", "library/llama3.2", "", dgA}},
		{"llama3.2:1b@" + dgA, Reference{"registry.ollama.ai", "library/llama3.2", "1b", dgA}},
		{"registry.ollama.ai/llama3.2", Reference{"registry.ollama.ai", "library/llama3.2", "latest", ""}},
		{"docker.io/ai/smollm2:360M-Q4_K_M", Reference{"docker.io", "ai/smollm2", "360M-Q4_K_M", ""}},
		{"docker.io/ubuntu", Reference{"docker.io", "library/ubuntu", "latest", ""}},
		{"my-org__x/model.name_v-1", Reference{"registry.ollama.ai", "my-org__x/model.name_v-1", "latest", ""}},
		{"Host.Example/m", Reference{"host.example", "m", "latest", ""}},
		{"Registry.Ollama.AI/a/b", Reference{"registry.ollama.ai", "a/b", "latest", ""}},
		{"m:" + strings.Repeat("t", 128), Reference{"registry.ollama.ai", "library/m", strings.Repeat("t", 128), ""}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseReference(tt.in)
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseReference(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate(%v): %v", got, err)
			}
			again, err := ParseReference(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip of %q: %#v, %v; want %#v", got.String(), again, err, got)
			}
			short, err := ParseReference(got.Short())
			if err != nil || short != got {
				t.Fatalf("round trip of short %q: %#v, %v; want %#v", got.Short(), short, err, got)
			}
		})
	}
}

func TestParseReferenceErrors(t *testing.T) {
	tests := []struct {
		in      string
		want    error
		message string // a fragment the error must contain
	}{
		{"", ErrInvalidReference, "empty"},
		{" llama3.2", ErrInvalidReference, "space"},
		{"Llama3.2", ErrInvalidReference, "lowercase"},
		{"ghcr.io/Org/model", ErrInvalidReference, "lowercase"},
		{"llama3.2:", ErrInvalidReference, "tag"},
		{"llama3.2:-x", ErrInvalidReference, "tag"},
		{"llama3.2:" + strings.Repeat("t", 129), ErrInvalidReference, "tag"},
		{"llama3.2:a b", ErrInvalidReference, "tag"},
		{":tag", ErrInvalidReference, "missing repository"},
		{"ghcr.io/", ErrInvalidReference, "missing repository"},
		{"ghcr.io//m", ErrInvalidReference, "empty path component"},
		{"a//b", ErrInvalidReference, "empty path component"},
		{"model/", ErrInvalidReference, "empty path component"},
		{"-model", ErrInvalidReference, "component"},
		{"mo..del", ErrInvalidReference, "component"},
		{"m@sha256:" + hexA[:63], ErrInvalidDigest, "64"},
		{"m@sha256:" + strings.ToUpper(hexA), ErrInvalidDigest, "hex"},
		{"m@sha512:" + hexA + hexA, ErrInvalidDigest, "sha256"},
		{"m@", ErrInvalidDigest, "sha256"},
		{"m@sha256:../../x", ErrInvalidDigest, "64"},
		{"localhost:/m", ErrInvalidReference, "empty port"},
		{"localhost:port/m", ErrInvalidReference, "port"},
		{"local_host.x/m", ErrInvalidReference, "host name"},
		{"[::1/m", ErrInvalidReference, "IPv6"},
		{"[zz::1]:5/m", ErrInvalidReference, "IPv6"},
		{"[::1]x/m", ErrInvalidReference, "IPv6"},
		{"ghcr.io/" + strings.Repeat("a", 250), ErrInvalidReference, "limit"},
		{strings.Repeat("a", 2000), ErrInvalidReference, "limit"},
		{"ghcr.io/a:b/c", ErrInvalidReference, "tag"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseReference(tt.in)
			if err == nil {
				t.Fatalf("ParseReference(%q) = %#v, want an error", tt.in, r)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseReference(%q) error %v, want errors.Is %v", tt.in, err, tt.want)
			}
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("ParseReference(%q) error %v does not wrap ErrInvalidReference", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("ParseReference(%q) error %q lacks %q", tt.in, err, tt.message)
			}
		})
	}
}

func TestNaming(t *testing.T) {
	n := Naming{Registry: "LocalHost:5000"}
	r, err := n.Parse("llama3.2")
	if err != nil {
		t.Fatal(err)
	}
	want := Reference{"localhost:5000", "library/llama3.2", "latest", ""}
	if r != want {
		t.Fatalf("got %#v, want %#v", r, want)
	}
	if got := n.Short(r); got != "llama3.2:latest" {
		t.Errorf("Short = %q", got)
	}
	// A full reference to a registry that is not Docker Hub or Ollama's keeps
	// its one-component name.
	r, err = n.Parse("localhost:5000/m")
	if err != nil || r.Repository != "m" {
		t.Fatalf("got %#v, %v", r, err)
	}
	if got := n.Short(r); got != "localhost:5000/m:latest" {
		t.Errorf("Short = %q", got)
	}
	// With the default naming, the same reference is displayed in full.
	r, _ = ParseReference("llama3.2")
	if got := n.Short(r); got != "registry.ollama.ai/library/llama3.2:latest" {
		t.Errorf("Short of a model of another registry = %q", got)
	}
	n = Naming{Namespace: "me"}
	r, _ = n.Parse("m:1")
	if r.Repository != "me/m" || n.Short(r) != "m:1" {
		t.Errorf("namespace me: %#v short %q", r, n.Short(r))
	}
}

func TestShort(t *testing.T) {
	tests := map[string]string{
		"llama3.2":                       "llama3.2:latest",
		"llama3.2:1b":                    "llama3.2:1b",
		"ns/m:tag":                       "ns/m:tag",
		"a/b/c":                          "a/b/c:latest",
		"registry.ollama.ai/library/a/b": "library/a/b:latest",
		"ghcr.io/o/m:t":                  "ghcr.io/o/m:t",
		"m@" + dgA:                       "m@" + dgA,
		"m:t@" + dgA:                     "m:t@" + dgA,
	}
	for in, want := range tests {
		r, err := ParseReference(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Short(); got != want {
			t.Errorf("Short(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTagOrDigest(t *testing.T) {
	r, _ := ParseReference("m:t@" + dgA)
	if r.TagOrDigest() != dgA {
		t.Errorf("digest must win: %q", r.TagOrDigest())
	}
	r, _ = ParseReference("m:t")
	if r.TagOrDigest() != "t" {
		t.Errorf("got %q", r.TagOrDigest())
	}
}

func TestValidate(t *testing.T) {
	bad := []Reference{
		{},
		{Registry: "ghcr.io"},
		{Registry: "ghcr.io", Repository: "m"},
		{Registry: "bad host", Repository: "m", Tag: "t"},
		{Registry: "ghcr.io", Repository: "M", Tag: "t"},
		{Registry: "ghcr.io", Repository: "m", Tag: ".t"},
		{Registry: "ghcr.io", Repository: "m", Digest: "sha256:../x"},
	}
	for _, r := range bad {
		if err := r.Validate(); !errors.Is(err, ErrInvalidReference) {
			t.Errorf("Validate(%#v) = %v, want ErrInvalidReference", r, err)
		}
	}
}

func TestLoopback(t *testing.T) {
	tests := map[string]bool{
		"localhost/m":          true,
		"localhost:5000/m":     true,
		"LOCALHOST:5000/m":     true,
		"127.0.0.1:5000/m":     true,
		"127.1.2.3/m":          true,
		"[::1]:5000/m":         true,
		"[::1]/m":              true,
		"ghcr.io/m":            false,
		"10.0.0.1:5000/m":      false,
		"localhost.evil.com/m": false,
		"128.0.0.1/m":          false,
		"llama3.2":             false,
	}
	for in, want := range tests {
		r, err := ParseReference(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.IsLoopback(); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", in, got, want)
		}
		if got := r.AllowPlainHTTP(false); got != want {
			t.Errorf("AllowPlainHTTP(%q, false) = %v, want %v", in, got, want)
		}
		if !r.AllowPlainHTTP(true) {
			t.Errorf("AllowPlainHTTP(%q, true) = false", in)
		}
	}
}

func TestParseDigest(t *testing.T) {
	if d, err := ParseDigest(dgA); err != nil || d != digest.Digest(dgA) {
		t.Fatalf("ParseDigest(valid) = %q, %v", d, err)
	}
	bad := []string{
		"", "sha256:", "sha256:" + hexA + "a", "sha256:" + hexA[:63] + "g",
		"sha256:" + strings.ToUpper(hexA), "SHA256:" + hexA, "sha512:" + hexA,
		hexA, "sha256:../../etc/passwd", "sha256:" + hexA[:62] + "/.",
		"sha256:" + hexA + "\n",
	}
	for _, s := range bad {
		if _, err := ParseDigest(s); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("ParseDigest(%q) = %v, want ErrInvalidDigest", s, err)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"llama3.2", "llama3.2:1b", "ns/m:t", "a/b/c", "ghcr.io/o/t/m:tag",
		"localhost:5000/m@" + dgA, "[::1]:5000/m:t@" + dgA, "m@sha256:x",
		"Llama", "ghcr.io//m", "a:b/c", "@", ":", "/", "[", "localhost", "x:1/y:2@z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("error %v does not wrap ErrInvalidReference", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseReference(%q) = %#v, which does not validate: %v", s, r, err)
		}
		if r.Digest != "" {
			if err := ValidateDigest(r.Digest); err != nil {
				t.Fatal(err)
			}
		}
		for _, form := range []string{r.String(), r.Short()} {
			again, err := ParseReference(form)
			if err != nil {
				t.Fatalf("ParseReference(%q) from %q: %v", form, s, err)
			}
			if again != r {
				t.Fatalf("round trip of %q via %q: %#v, want %#v", s, form, again, r)
			}
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	f.Add(dgA)
	f.Add("sha256:../x")
	f.Add("sha512:" + hexA)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		// A valid digest is safe as a file name and is also valid for go-digest.
		if strings.ContainsAny(d.Encoded(), "/\\.") || d.Validate() != nil {
			t.Fatalf("ParseDigest accepted %q", s)
		}
	})
}

func ExampleParseReference() {
	for _, s := range []string{"llama3.2", "ns/model:q4", "localhost:5000/team/model:v1"} {
		r, err := ParseReference(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(r, "→", r.Short(), r.IsLoopback())
	}
	_, err := ParseReference("Llama3.2")
	fmt.Println(err)
	// Output:
	// registry.ollama.ai/library/llama3.2:latest → llama3.2:latest false
	// registry.ollama.ai/ns/model:q4 → ns/model:q4 false
	// localhost:5000/team/model:v1 → localhost:5000/team/model:v1 true
	// invalid reference "Llama3.2": repository "Llama3.2" must be lowercase (try "llama3.2")
}

func TestNamingValidatesDefaults(t *testing.T) {
	for _, n := range []Naming{{Registry: "https://ghcr.io"}, {Registry: "bad host"}, {Registry: "x:port"}, {Namespace: "Upper"}, {Namespace: "a//b"}} {
		_, err := n.Parse("llama3.2")
		if !errors.Is(err, ErrInvalidReference) || !strings.Contains(err.Error(), "default") {
			t.Errorf("%+v: err = %v", n, err)
		}
	}
	if r, err := (Naming{Registry: "[::1]:5000", Namespace: "team/sub"}).Parse("m"); err != nil || r.String() != "[::1]:5000/team/sub/m:latest" {
		t.Errorf("got %v, %v", r, err)
	}
}
