package oci

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// zstdOf compresses b as the zstd command would (one or more frames), with
// a window of 1<<windowLog bytes (0: the encoder's default).
func zstdOf(t testing.TB, b []byte, windowLog int) []byte {
	t.Helper()
	var buf bytes.Buffer
	opts := []zstd.EOption{zstd.WithEncoderConcurrency(1)}
	if windowLog > 0 {
		opts = append(opts, zstd.WithWindowSize(1<<windowLog))
	}
	zw, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOpenArchivedZstd(t *testing.T) {
	body := bytes.Repeat([]byte("GGUF zstd weights "), 10000)
	archive := zstdOf(t, tarOf(t, false, map[string]string{"models/tiny.gguf": string(body), "README.md": "# hi"}), 0)
	// The layer's media type maps to ArchiveTarZstd (both prefixes).
	for _, mt := range []string{MediaTypeModelPackWeightTarZstd, "application/vnd.cnai.model.weight.v1.tar+zstd"} {
		b := blobs{}
		man := manifestOf(t, b, MediaTypeOCIManifest, ArtifactTypeModelPack, MediaTypeEmptyJSON, []byte("{}"),
			desc(b, mt, archive, map[string]string{AnnotationTitle: "weights.tar.zst"}))
		m, err := ParseModel(t.Context(), man, b.fetch)
		if err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
		if m.Weights[0].Archive != ArchiveTarZstd {
			t.Fatalf("%s: archive %q", mt, m.Weights[0].Archive)
		}
	}
	for _, name := range []string{"", "models", "models/tiny.gguf", "/models/./tiny.gguf"} {
		r, n, err := OpenArchived(bytes.NewReader(archive), ArchiveTarZstd, name)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, body) || n != int64(len(body)) {
			t.Fatalf("%q: read %d bytes of %d (header %d): %v", name, len(got), len(body), n, err)
		}
	}
	// Links are skipped as in a plain tar.
	if _, _, err := OpenArchived(bytes.NewReader(archive), ArchiveTarZstd, "link.gguf"); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("symlink entry: %v", err)
	}
}

func TestOpenArchivedZstdBad(t *testing.T) {
	good := zstdOf(t, tarOf(t, false, map[string]string{"m.gguf": "GGUF"}), 0)
	for _, tc := range []struct {
		name    string
		archive []byte
		want    error
	}{
		{"not zstd", tarOf(t, false, map[string]string{"m.gguf": "GGUF"}), ErrInvalidManifest},
		{"truncated", good[:len(good)/2], ErrInvalidManifest},
		{"gzip", tarOf(t, true, map[string]string{"m.gguf": "GGUF"}), ErrInvalidManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := OpenArchived(bytes.NewReader(tc.archive), ArchiveTarZstd, "m.gguf")
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// rawZstdFrame is one zstd frame holding b (under 128 KiB) as a raw block,
// whose header announces a window of 1<<windowLog bytes (10 ≤ windowLog ≤ 41).
func rawZstdFrame(b []byte, windowLog int) []byte {
	f := []byte{0x28, 0xb5, 0x2f, 0xfd}  // magic
	f = append(f, 0x00)                  // no content size, not single-segment, no checksum, no dictionary
	f = append(f, byte(windowLog-10)<<3) // window descriptor: exponent, mantissa 0
	h := 1 | len(b)<<3                   // last block, raw, size
	f = append(f, byte(h), byte(h>>8), byte(h>>16))
	return append(f, b...)
}

// TestOpenArchivedZstdWindow: a layer whose frame asks for a window over
// MaxZstdWindow is refused before the decoder allocates it, with an error
// that names the limit; one at the limit is read.
func TestOpenArchivedZstdWindow(t *testing.T) {
	tarball := tarOf(t, false, map[string]string{"m.gguf": "GGUF"})
	r, _, err := OpenArchived(bytes.NewReader(rawZstdFrame(tarball, 27)), ArchiveTarZstd, "m.gguf")
	if err != nil {
		t.Fatalf("window 128 MiB: %v", err)
	}
	if got, err := io.ReadAll(r); string(got) != "GGUF" || err != nil {
		t.Fatalf("window 128 MiB: read %q, %v", got, err)
	}
	_, _, err = OpenArchived(bytes.NewReader(rawZstdFrame(tarball, 28)), ArchiveTarZstd, "m.gguf")
	if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "128 MiB") {
		t.Fatalf("window 256 MiB: %v, want an error naming the 128 MiB limit", err)
	}
}

func FuzzOpenArchivedZstd(f *testing.F) {
	f.Add(zstdOf(f, tarOf(f, false, map[string]string{"m.gguf": "GGUF"}), 0), "m.gguf")
	f.Add(zstdOf(f, tarOf(f, false, map[string]string{"a/../../m.gguf": "GGUF"}), 0), "")
	f.Fuzz(func(t *testing.T, archive []byte, name string) {
		r, n, err := OpenArchived(bytes.NewReader(archive), ArchiveTarZstd, name)
		if err != nil {
			return
		}
		got, _ := io.ReadAll(io.LimitReader(r, 1<<20))
		if n < 0 || int64(len(got)) > n {
			t.Fatalf("read %d bytes of an entry of %d", len(got), n)
		}
	})
}
