package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// manifestFields are the JSON names of manifest and descriptor fields.
// encoding/json matches keys case-insensitively and lets the last duplicate
// win, while other tools may take the first or match exactly: a manifest
// with "Layers" beside "layers", or two "digest" keys, could mean one thing
// to olm and another to a registry or scanner. checkKeys refuses both.
var manifestFields = map[string]string{}

func init() {
	for _, k := range []string{"schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests",
		"annotations", "subject", "digest", "size", "urls", "data", "platform"} {
		manifestFields[strings.ToLower(k)] = k
	}
}

// checkKeys walks a JSON document and fails on an object with duplicate
// keys, or with a key that differs only in case from a manifest field name.
// Nesting is bounded by encoding/json's own limits on the input size.
func checkKeys(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := walkValue(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the manifest's JSON", ErrInvalidManifest)
	}
	return nil
}

const maxDepth = 64

func walkValue(dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: JSON nested deeper than %d", ErrInvalidManifest, maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: manifest is not JSON: %v", ErrInvalidManifest, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '[':
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("%w: manifest is not JSON: %v", ErrInvalidManifest, err)
			}
			key, _ := tok.(string)
			if seen[key] {
				return fmt.Errorf("%w: key %q appears twice in one object", ErrInvalidManifest, clip(key))
			}
			seen[key] = true
			if want, ok := manifestFields[strings.ToLower(key)]; ok && want != key {
				return fmt.Errorf("%w: key %q must be spelled %q", ErrInvalidManifest, clip(key), want)
			}
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	}
	// The closing delimiter.
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: manifest is not JSON: %v", ErrInvalidManifest, err)
	}
	return nil
}
