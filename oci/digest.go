package oci

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// digestHexLen is the length of the hex part of a sha256 digest.
const digestHexLen = 64

// ParseDigest checks that s is "sha256:" followed by exactly 64 lowercase hex
// digits and returns it as a digest. It is stricter than digest.Parse: other
// algorithms and upper-case hex are refused, so the result is always safe to
// use as a file name. The error wraps ErrInvalidDigest.
func ParseDigest(s string) (digest.Digest, error) {
	if err := ValidateDigest(digest.Digest(s)); err != nil {
		return "", err
	}
	return digest.Digest(s), nil
}

// ValidateDigest reports whether d is "sha256:" followed by exactly 64
// lowercase hex digits. Every digest from a manifest, a registry or a user
// must pass it before it touches a path. The error wraps ErrInvalidDigest.
func ValidateDigest(d digest.Digest) error {
	s := string(d)
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return fmt.Errorf("%w %q: want sha256:<64 hex digits>", ErrInvalidDigest, clip(s))
	}
	if len(hex) != digestHexLen {
		return fmt.Errorf("%w %q: the hex part has %d characters, want 64", ErrInvalidDigest, clip(s), len(hex))
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w %q: %q is not a lowercase hex digit", ErrInvalidDigest, clip(s), c)
		}
	}
	return nil
}

// clip shortens s for an error message so that hostile input cannot flood logs.
func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
