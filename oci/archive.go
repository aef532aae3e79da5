package oci

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// OpenArchived finds the file a KitOps or ModelPack tar layer holds and
// returns a reader of its bytes and its size. r reads the layer's blob; a is
// the layer's Archive; name is the layer's Filename (a GGUF file, or a folder
// holding one) or empty to take the only .gguf file. For ArchiveNone it
// returns r itself with size -1. Only regular files are returned: links and
// devices in the archive are skipped, and the name is matched after
// cleaning, so an archive cannot point outside itself. The returned reader
// is valid until r is closed; read it to the end before reading r otherwise.
//
// tar+zstd is not supported yet (ErrUnsupportedFormat).
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
