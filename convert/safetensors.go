package convert

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// maxSafetensorsHeader bounds the JSON header of a safetensors file (bytes);
// the header length is attacker-controllable. Real headers are a few MiB.
const maxSafetensorsHeader = 100 << 20

// stTensor is one tensor of a safetensors file.
type stTensor struct {
	Name  string
	DType string   // "F32", "F16", "BF16", ...
	Shape []uint64 // row-major, outermost first (as PyTorch)
	file  *stFile
	begin int64 // absolute offset in the file
	size  int64 // bytes
}

func (t *stTensor) elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// section returns a reader of the tensor's bytes.
func (t *stTensor) section() *io.SectionReader {
	return io.NewSectionReader(t.file.f, t.begin, t.size)
}

type stFile struct {
	path string
	f    *os.File
	data []byte // the file mapped read-only, or nil (see mmap.go)
}

var dtypeSizes = map[string]int64{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
	"F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}

// readSafetensors parses the header of a safetensors file of size bytes.
func readSafetensors(r io.ReaderAt, size int64, name string) ([]stTensor, error) {
	var lb [8]byte
	if _, err := r.ReadAt(lb[:], 0); err != nil {
		return nil, fmt.Errorf("%w: %s: %d bytes, too short for a safetensors header", ErrInvalid, name, size)
	}
	n := binary.LittleEndian.Uint64(lb[:])
	if n > maxSafetensorsHeader || int64(n) > size-8 {
		return nil, fmt.Errorf("%w: %s: header length %d (file %d bytes, limit %d)", ErrInvalid, name, n, size, maxSafetensorsHeader)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("%w: %s: reading header: %v", ErrInvalid, name, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("%w: %s: header is not a JSON object: %v", ErrInvalid, name, err)
	}
	base := 8 + int64(n)
	out := make([]stTensor, 0, len(raw))
	for k, v := range raw {
		if k == "__metadata__" {
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []uint64 `json:"shape"`
			Offsets []int64  `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("%w: %s: tensor %q: %v", ErrInvalid, name, k, err)
		}
		if len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > size-base {
			return nil, fmt.Errorf("%w: %s: tensor %q: data offsets %v outside the file (%d data bytes)", ErrInvalid, name, k, e.Offsets, size-base)
		}
		es, ok := dtypeSizes[e.DType]
		if !ok {
			return nil, fmt.Errorf("%w: %s: tensor %q: unknown dtype %q", ErrInvalid, name, k, e.DType)
		}
		if len(e.Shape) > 8 {
			return nil, fmt.Errorf("%w: %s: tensor %q: %d dimensions", ErrInvalid, name, k, len(e.Shape))
		}
		elems := uint64(1)
		for _, d := range e.Shape {
			if d != 0 && elems > math.MaxInt64/uint64(es)/d {
				return nil, fmt.Errorf("%w: %s: tensor %q: shape %v overflows", ErrInvalid, name, k, e.Shape)
			}
			elems *= d
		}
		if int64(elems)*es != e.Offsets[1]-e.Offsets[0] {
			return nil, fmt.Errorf("%w: %s: tensor %q: shape %v of %s needs %d bytes, offsets give %d", ErrInvalid, name, k, e.Shape, e.DType, int64(elems)*es, e.Offsets[1]-e.Offsets[0])
		}
		out = append(out, stTensor{Name: k, DType: e.DType, Shape: e.Shape, begin: base + e.Offsets[0], size: e.Offsets[1] - e.Offsets[0]})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].begin < out[j].begin || out[i].begin == out[j].begin && out[i].Name < out[j].Name
	})
	return out, nil
}

// checkpoint is the set of safetensors files of a model directory, open.
type checkpoint struct {
	files   []*stFile
	tensors []*stTensor // in file order, then offset order
	byName  map[string]*stTensor
}

func (c *checkpoint) Close() error {
	var first error
	for _, f := range c.files {
		unmapFile(f.data)
		f.data = nil
		if err := f.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// weightFiles returns the safetensors files of dir: those named by
// model.safetensors.index.json when present, else every *.safetensors.
func weightFiles(dir string) ([]string, error) {
	idx := filepath.Join(dir, "model.safetensors.index.json")
	if b, err := os.ReadFile(idx); err == nil {
		var ix struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &ix); err != nil {
			return nil, fmt.Errorf("%w: model.safetensors.index.json: %v", ErrInvalid, err)
		}
		var names []string
		for _, f := range ix.WeightMap {
			if f != filepath.Base(f) || !strings.HasSuffix(f, ".safetensors") {
				return nil, fmt.Errorf("%w: model.safetensors.index.json names %q, not a safetensors file in the directory", ErrInvalid, f)
			}
			if !slices.Contains(names, f) {
				names = append(names, f)
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("%w: model.safetensors.index.json has an empty weight_map", ErrInvalid)
		}
		return names, nil
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	var names []string
	for _, p := range m {
		names = append(names, filepath.Base(p))
	}
	sort.Strings(names)
	if len(names) == 0 {
		others, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
		if len(others) > 0 {
			return nil, fmt.Errorf("%w: %s has PyTorch .bin weights (%s); only safetensors are supported", ErrUnsupported, dir, filepath.Base(others[0]))
		}
		return nil, fmt.Errorf("%w: no *.safetensors files in %s", ErrNotFound, dir)
	}
	return names, nil
}

func openCheckpoint(dir string) (*checkpoint, error) {
	names, err := weightFiles(dir)
	if err != nil {
		return nil, err
	}
	c := &checkpoint{byName: map[string]*stTensor{}}
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			c.Close()
			if os.IsNotExist(err) {
				return nil, fmt.Errorf("%w: %s (named by model.safetensors.index.json)", ErrNotFound, n)
			}
			return nil, err
		}
		sf := &stFile{path: f.Name(), f: f}
		c.files = append(c.files, sf)
		fi, err := f.Stat()
		if err != nil {
			c.Close()
			return nil, err
		}
		ts, err := readSafetensors(f, fi.Size(), n)
		if err != nil {
			c.Close()
			return nil, err
		}
		sf.data = mapFile(f, fi.Size())
		for i := range ts {
			t := &ts[i]
			t.file = sf
			if _, dup := c.byName[t.Name]; dup {
				c.Close()
				return nil, fmt.Errorf("%w: tensor %q is in more than one file", ErrInvalid, t.Name)
			}
			c.byName[t.Name] = t
			c.tensors = append(c.tensors, t)
		}
	}
	return c, nil
}
