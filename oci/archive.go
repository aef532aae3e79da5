package oci

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// MaxZstdWindow is the largest zstd window (in bytes, 128 MiB) OpenArchived
// decodes: the decoder keeps a window's worth of output in memory, and the
// window size is chosen by whoever wrote the layer. 128 MiB is the zstd
// command's own default limit (window log 27); a layer compressed with
// --long=28 or more is refused.
const MaxZstdWindow = 128 << 20

// OpenArchived finds the file a KitOps or ModelPack tar layer holds and
// returns a reader of its bytes and its size. r reads the layer's blob; a is
// the layer's Archive; name is the layer's Filename (a GGUF file, or a folder
// holding one) or empty to take the only .gguf file. For ArchiveNone it
// returns r itself with size -1. Only regular files are returned: links and
// devices in the archive are skipped, and the name is matched after
// cleaning, so an archive cannot point outside itself. The returned reader
// is valid until r is closed; read it to the end before reading r otherwise.
//
// tar+gzip and tar+zstd layers are decompressed as they are read, in the
// caller's goroutine, in bounded memory (a zstd window over MaxZstdWindow is
// an error). Other archive kinds are ErrUnsupportedFormat.
func OpenArchived(r io.Reader, a Archive, name string) (io.Reader, int64, error) {
	switch a {
	case ArchiveNone:
		return r, -1, nil
	case ArchiveTar:
	case ArchiveTarGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: layer is not gzip: %v", ErrInvalidManifest, err)
		}
		r = zr
	case ArchiveTarZstd:
		// Concurrency 1 decodes synchronously: no goroutines to stop, so
		// nothing needs closing, and memory stays near one window.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxZstdWindow))
		if err != nil {
			return nil, 0, fmt.Errorf("%w: zstd: %v", ErrInvalidManifest, err)
		}
		r = zstdErrors{zr}
	default:
		return nil, 0, fmt.Errorf("%w: %s layers cannot be unpacked yet", ErrUnsupportedFormat, a)
	}
	tr := tar.NewReader(r)
	want := strings.TrimPrefix(path.Clean("/"+name), "/")
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("%w: the archive holds no GGUF file named %q", ErrInvalidManifest, clip(name))
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: reading tar layer: %v", ErrInvalidManifest, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		got := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		match := got == want
		if !match && isGGUFName(got) {
			// name is a folder (a Kitfile model path such as "./models"),
			// or empty: take the GGUF file inside that is not a projector.
			dir := want
			match = (dir == "" || strings.HasPrefix(got, dir+"/")) && !isProjectorName(got)
		}
		if match {
			if h.Size < 0 {
				return nil, 0, fmt.Errorf("%w: tar entry %q has negative size", ErrInvalidManifest, clip(h.Name))
			}
			return tr, h.Size, nil
		}
	}
}

// zstdErrors names the limit when a zstd layer's window is too large.
type zstdErrors struct{ r io.Reader }

func (z zstdErrors) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	if err != nil && (errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded)) {
		err = fmt.Errorf("%w: the layer's zstd window is larger than the %d MiB olm decodes (compress it without --long, or with --long=27 or less): %v",
			ErrUnsupportedFormat, MaxZstdWindow>>20, err)
	}
	return n, err
}
