package oci

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestSuccessors(t *testing.T) {
	d := func(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }
	desc := ocispec.Descriptor{MediaType: MediaTypeOCIManifest, Digest: digest.Digest("sha256:" + strings.Repeat("f", 64))}
	many := make([]string, MaxLayers+1)
	for i := range many {
		many[i] = fmt.Sprintf(`{"digest":%q,"size":1}`, d('a'))
	}
	for _, tc := range []struct {
		name    string
		body    string
		want    []string
		wantErr error
	}{
		{"config layers children in order", `{"config":{"digest":"` + d('1') + `","size":2},"layers":[{"digest":"` + d('2') + `","size":3}],"manifests":[{"digest":"` + d('3') + `","size":4}]}`, []string{d('1'), d('2'), d('3')}, nil},
		{"subject is not a successor", `{"subject":{"digest":"` + d('9') + `","size":1},"layers":[{"digest":"` + d('2') + `","size":3}]}`, []string{d('2')}, nil},
		{"path in digest", `{"layers":[{"digest":"sha256:../../x","size":1}]}`, nil, ErrInvalidManifest},
		{"config without digest", `{"config":{"size":2}}`, nil, ErrInvalidManifest},
		{"negative size", `{"layers":[{"digest":"` + d('2') + `","size":-1}]}`, nil, ErrInvalidManifest},
		{"not JSON", `{"layers":`, nil, ErrInvalidManifest},
		{"too many entries", `{"layers":[` + strings.Join(many, ",") + `]}`, nil, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Successors(desc, []byte(tc.body))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d successors, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if string(got[i].Digest) != tc.want[i] {
					t.Errorf("successor %d = %s, want %s", i, got[i].Digest, tc.want[i])
				}
			}
		})
	}
	for mt, want := range map[string]bool{MediaTypeOCIManifest: true, MediaTypeOCIIndex: true, MediaTypeDockerManifest: true, MediaTypeDockerManifestList: true, MediaTypeModelPackConfig: false, "": false} {
		if IsManifest(mt) != want {
			t.Errorf("IsManifest(%q) = %v, want %v", mt, !want, want)
		}
	}
}
