package testmodel

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/olmhq/olm/internal/gguf"
)

// Split writes the GGUF at src as parts split GGUF files in the format of
// llama.cpp's llama-gguf-split: the tensors are shared out in order, the
// first part keeps all the metadata, and every part carries split.no,
// split.count and split.tensors.count. name(i) gives the path of part i
// (0-based); the names need not follow llama.cpp's "-0000N-of-0000M"
// pattern. It returns the paths in order.
func Split(src string, parts int, name func(i int) string) ([]string, error) {
	f, err := gguf.ReadFile(src)
	if err != nil {
		return nil, err
	}
	if parts < 1 || parts > len(f.Tensors) {
		return nil, fmt.Errorf("testmodel: cannot split %d tensors into %d parts", len(f.Tensors), parts)
	}
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	var meta []gguf.KV
	var align []gguf.KV
	for _, kv := range f.KV {
		if strings.HasPrefix(kv.Key, "split.") {
			continue
		}
		meta = append(meta, kv)
		if kv.Key == "general.alignment" {
			align = append(align, kv)
		}
	}
	paths := make([]string, parts)
	for i := range parts {
		kv := []gguf.KV{
			{Key: "split.no", Value: gguf.Uint16(uint16(i))},
			{Key: "split.count", Value: gguf.Uint16(uint16(parts))},
			{Key: "split.tensors.count", Value: gguf.Int32(int32(len(f.Tensors)))},
		}
		if i == 0 {
			kv = append(append([]gguf.KV(nil), meta...), kv...)
		} else {
			kv = append(kv, align...)
		}
		tensors := f.Tensors[i*len(f.Tensors)/parts : (i+1)*len(f.Tensors)/parts]
		paths[i] = name(i)
		if err := writePart(paths[i], gguf.Header{Version: f.Version, KV: kv, Tensors: tensors}, f, in); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func writePart(path string, h gguf.Header, f *gguf.File, in io.ReaderAt) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	w, err := gguf.NewWriter(out, h)
	if err != nil {
		return err
	}
	for _, t := range h.Tensors {
		if _, err := io.Copy(w, f.TensorData(in, t)); err != nil {
			return fmt.Errorf("%s: tensor %s: %w", path, t.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return out.Close()
}
