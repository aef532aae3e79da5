package oci

import (
	"bytes"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// IsManifest reports whether a media type is a manifest or an index, that
// is, content that references other content (OCI and Docker v2 alike).
func IsManifest(mediaType string) bool {
	switch mediaType {
	case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerManifestList:
		return true
	}
	return false
}

// Successors returns what the manifest or index b (described by desc)
// references: its config, layers and child manifests, in that order, but
// not its subject (a referrer does not keep its subject alive). Every digest
// is validated and no size may be negative, because the manifest is
// untrusted; more than MaxLayers entries is ErrTooLarge, anything malformed
// ErrInvalidManifest. Callers bound len(b) (MaxManifestSize) before reading.
func Successors(desc ocispec.Descriptor, b []byte) ([]ocispec.Descriptor, error) {
	var m struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %v", ErrInvalidManifest, desc.Digest, err)
	}
	if len(m.Layers)+len(m.Manifests) > MaxLayers {
		return nil, fmt.Errorf("%w: manifest %s has %d entries, the limit is %d", ErrTooLarge, desc.Digest, len(m.Layers)+len(m.Manifests), MaxLayers)
	}
	var out []ocispec.Descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	out = append(out, m.Manifests...)
	for _, s := range out {
		if err := ValidateDigest(s.Digest); err != nil {
			return nil, fmt.Errorf("%w: manifest %s: %w", ErrInvalidManifest, desc.Digest, err)
		}
		if s.Size < 0 {
			return nil, fmt.Errorf("%w: manifest %s: negative size for %s", ErrInvalidManifest, desc.Digest, s.Digest)
		}
	}
	return out, nil
}
