package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"
)

// Limits of the reader. A GGUF header is attacker-controllable (a blob
// pulled from a registry), so every count and length in it is checked
// against the bytes really present and against these limits before use.
const (
	// MaxHeaderSize bounds the metadata and tensor infos together (bytes).
	// The largest real vocabularies take a few tens of MiB.
	MaxHeaderSize = 512 << 20
	// MaxStringLen bounds one string (bytes): a key, a value, a tensor name.
	MaxStringLen = 64 << 20
	// MaxKeyLen bounds a metadata key or tensor name (bytes).
	MaxKeyLen = 64 << 10
	// MaxArrayDepth bounds the nesting of arrays.
	MaxArrayDepth = 8
	// MaxDims is the most dimensions a tensor has (GGML_MAX_DIMS).
	MaxDims = 4
)

// DefaultAlignment is the alignment of tensor data when general.alignment is
// absent (bytes).
const DefaultAlignment = 32

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	// Name is the tensor's name ("blk.0.attn_q.weight").
	Name string
	// Dims is the shape, innermost (fastest-varying) dimension first, as
	// ggml's ne[]: a [rows][cols] matrix has Dims {cols, rows}.
	Dims []uint64
	// Type is the ggml type of the data.
	Type TensorType
	// Offset is the position of the data from the start of the data
	// section (bytes). Writer computes it; it ignores the value given.
	Offset uint64
}

// Elements returns the number of elements (the product of Dims; 1 for no dims).
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Size returns the number of bytes of the tensor's data, or -1 when the type
// is unknown or the shape does not fit it.
func (t TensorInfo) Size() int64 {
	n, ok := checkedElements(t.Dims)
	if !ok {
		return -1
	}
	if len(t.Dims) > 0 && t.Dims[0]%uint64(max(t.Type.BlockSize(), 1)) != 0 {
		return -1
	}
	s, ok := t.Type.RowSize(n)
	if !ok {
		return -1
	}
	return s
}

func checkedElements(dims []uint64) (uint64, bool) {
	n := uint64(1)
	for _, d := range dims {
		if d != 0 && n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// File is the parsed header of a GGUF file. It holds no open file.
type File struct {
	// Version is the GGUF version (2 or 3).
	Version uint32
	// KV is the metadata in file order.
	KV []KV
	// Tensors is the tensor infos in file order.
	Tensors []TensorInfo
	// Alignment is the data alignment (bytes; general.alignment or 32).
	Alignment uint64
	// DataOffset is the absolute position of the data section (bytes).
	DataOffset int64
	// Size is the size of the whole file (bytes).
	Size int64

	keys    map[string]int
	tensors map[string]int
}

// ReadFile opens and reads the GGUF header of the file at path.
func ReadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	g, err := Read(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Read parses the header of a GGUF file of size bytes readable through r,
// and checks that every tensor's data lies within size.
func Read(r io.ReaderAt, size int64) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size", ErrInvalid)
	}
	d := &decoder{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10), size: size}
	f, err := d.file()
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: header ends at byte %d of %d", ErrTruncated, d.pos, size)
		}
		return nil, err
	}
	return f, nil
}

type decoder struct {
	r     *bufio.Reader
	pos   int64
	size  int64
	depth int
	buf   [8]byte
	slab  []byte // unused tail of the current slab for small strings
}

func (d *decoder) remain() int64 { return d.size - d.pos }

func (d *decoder) read(n int) ([]byte, error) {
	if d.pos+int64(n) > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header larger than %d bytes", ErrTooLarge, MaxHeaderSize)
	}
	b := d.buf[:n]
	m, err := io.ReadFull(d.r, b)
	d.pos += int64(m)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads a u64 count of items of at least minSize bytes each and
// checks that they can be present in the rest of the header.
func (d *decoder) count(what string, minSize int64) (int, error) {
	n, err := d.u64()
	if err != nil {
		return 0, err
	}
	avail := min(d.remain(), MaxHeaderSize-d.pos)
	if minSize > 0 && n > uint64(avail/minSize) {
		if uint64(d.remain()/minSize) >= n {
			return 0, fmt.Errorf("%w: %s count %d at byte %d", ErrTooLarge, what, n, d.pos-8)
		}
		return 0, fmt.Errorf("%w: %s count %d at byte %d, but only %d bytes follow", ErrTruncated, what, n, d.pos-8, d.remain())
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %s count %d", ErrTooLarge, what, n)
	}
	return int(n), nil
}

func (d *decoder) str(limit int) (string, error) {
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(limit) {
		return "", fmt.Errorf("%w: string of %d bytes at byte %d (limit %d)", ErrTooLarge, n, d.pos-8, limit)
	}
	if int64(n) > d.remain() {
		return "", fmt.Errorf("%w: string of %d bytes at byte %d, but only %d bytes follow", ErrTruncated, n, d.pos-8, d.remain())
	}
	if d.pos+int64(n) > MaxHeaderSize {
		return "", fmt.Errorf("%w: header larger than %d bytes", ErrTooLarge, MaxHeaderSize)
	}
	if n == 0 {
		return "", nil
	}
	var b []byte
	if n <= 256 {
		// Small strings are carved from a shared slab.
		if len(d.slab) < int(n) {
			d.slab = make([]byte, 64<<10)
		}
		b, d.slab = d.slab[:n:n], d.slab[n:]
	} else {
		b = make([]byte, n)
	}
	m, err := io.ReadFull(d.r, b)
	d.pos += int64(m)
	if err != nil {
		return "", err
	}
	// b is never written again: let the string share it (one allocation
	// per string matters with vocabularies of 100k+ tokens).
	return unsafe.String(&b[0], len(b)), nil
}

func (d *decoder) file() (*File, error) {
	b, err := d.read(4)
	if err != nil {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotGGUF, d.size)
	}
	if string(b) != Magic {
		return nil, fmt.Errorf("%w: magic %q", ErrNotGGUF, b)
	}
	f := &File{}
	if f.Version, err = d.u32(); err != nil {
		return nil, err
	}
	switch {
	case f.Version == 2 || f.Version == 3:
	case f.Version&0xFFFF == 0 && f.Version != 0:
		return nil, fmt.Errorf("%w: big-endian GGUF (version %d byte-swapped); only little-endian files are supported", ErrVersion, f.Version>>24)
	default:
		return nil, fmt.Errorf("%w: version %d (supported: 2, 3)", ErrVersion, f.Version)
	}
	// A tensor info takes at least 8+4+8+4+8 bytes, a kv at least 8+4+1.
	nt, err := d.count("tensor", 8+4+4+8)
	if err != nil {
		return nil, err
	}
	nkv, err := d.count("metadata", 8+4+1)
	if err != nil {
		return nil, err
	}
	f.keys = make(map[string]int, min(nkv, 1024))
	f.KV = make([]KV, 0, min(nkv, 1024))
	for i := 0; i < nkv; i++ {
		at := d.pos
		key, err := d.str(MaxKeyLen)
		if err != nil {
			return nil, fmt.Errorf("metadata key %d: %w", i, err)
		}
		v, err := d.value()
		if err != nil {
			return nil, fmt.Errorf("metadata %q (at byte %d): %w", key, at, err)
		}
		if _, dup := f.keys[key]; dup {
			return nil, fmt.Errorf("%w: duplicate metadata key %q", ErrInvalid, key)
		}
		f.keys[key] = len(f.KV)
		f.KV = append(f.KV, KV{key, v})
	}
	f.Alignment = DefaultAlignment
	if v, ok := f.Value("general.alignment"); ok {
		a, isU32 := v.Interface().(uint32)
		if !isU32 {
			return nil, fmt.Errorf("%w: general.alignment has type %s, want u32", ErrInvalid, v.Type())
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("%w: general.alignment %d is not a power of 2", ErrInvalid, a)
		}
		f.Alignment = uint64(a)
	}
	f.tensors = make(map[string]int, min(nt, 4096))
	f.Tensors = make([]TensorInfo, 0, min(nt, 4096))
	for i := 0; i < nt; i++ {
		t, err := d.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("tensor info %d: %w", i, err)
		}
		if _, dup := f.tensors[t.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate tensor %q", ErrInvalid, t.Name)
		}
		f.tensors[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = d.pos
	if nt > 0 {
		f.DataOffset = alignUp(d.pos, int64(f.Alignment))
	}
	f.Size = d.size
	if f.DataOffset > d.size {
		return nil, fmt.Errorf("%w: data section starts at byte %d, past the end of the file (%d bytes)", ErrTruncated, f.DataOffset, d.size)
	}
	avail := uint64(d.size - f.DataOffset)
	for _, t := range f.Tensors {
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("%w: tensor %q: offset %d is not a multiple of the alignment %d", ErrInvalid, t.Name, t.Offset, f.Alignment)
		}
		n := uint64(t.Size())
		if t.Offset > avail || n > avail-t.Offset {
			return nil, fmt.Errorf("%w: tensor %q (%d bytes at data offset %d) extends past the end of the file (data section %d bytes, file %d bytes)",
				ErrTruncated, t.Name, n, t.Offset, avail, d.size)
		}
	}
	return f, nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

func (d *decoder) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	var err error
	if t.Name, err = d.str(MaxKeyLen); err != nil {
		return t, err
	}
	nd, err := d.u32()
	if err != nil {
		return t, err
	}
	if nd > MaxDims {
		return t, fmt.Errorf("%w: tensor %q has %d dimensions (at most %d)", ErrInvalid, t.Name, nd, MaxDims)
	}
	t.Dims = make([]uint64, nd)
	for i := range t.Dims {
		if t.Dims[i], err = d.u64(); err != nil {
			return t, err
		}
		if t.Dims[i] > math.MaxInt64 {
			return t, fmt.Errorf("%w: tensor %q dimension %d is %d", ErrInvalid, t.Name, i, t.Dims[i])
		}
	}
	typ, err := d.u32()
	if err != nil {
		return t, err
	}
	t.Type = TensorType(typ)
	if !t.Type.Known() {
		return t, fmt.Errorf("%w: tensor %q has unknown ggml type %d", ErrInvalid, t.Name, typ)
	}
	if t.Offset, err = d.u64(); err != nil {
		return t, err
	}
	if _, ok := checkedElements(t.Dims); !ok {
		return t, fmt.Errorf("%w: tensor %q shape %v overflows", ErrInvalid, t.Name, t.Dims)
	}
	if t.Size() < 0 {
		return t, fmt.Errorf("%w: tensor %q shape %v does not fit type %s (block size %d)", ErrInvalid, t.Name, t.Dims, t.Type, t.Type.BlockSize())
	}
	return t, nil
}

func (d *decoder) value() (Value, error) {
	typ, err := d.u32()
	if err != nil {
		return Value{}, err
	}
	return d.valueOf(ValueType(typ))
}

func (d *decoder) valueOf(t ValueType) (Value, error) {
	switch t {
	case TypeString:
		s, err := d.str(MaxStringLen)
		return String(s), err
	case TypeArray:
		a, err := d.array()
		return Value{TypeArray, a}, err
	}
	n := t.scalarSize()
	if n == 0 {
		return Value{}, fmt.Errorf("%w: unknown value type %d", ErrInvalid, uint32(t))
	}
	b, err := d.read(n)
	if err != nil {
		return Value{}, err
	}
	return scalar(t, b)
}

func scalar(t ValueType, b []byte) (Value, error) {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return Uint8(b[0]), nil
	case TypeInt8:
		return Int8(int8(b[0])), nil
	case TypeBool:
		if b[0] > 1 {
			return Value{}, fmt.Errorf("%w: bool value %d", ErrInvalid, b[0])
		}
		return Bool(b[0] == 1), nil
	case TypeUint16:
		return Uint16(le.Uint16(b)), nil
	case TypeInt16:
		return Int16(int16(le.Uint16(b))), nil
	case TypeUint32:
		return Uint32(le.Uint32(b)), nil
	case TypeInt32:
		return Int32(int32(le.Uint32(b))), nil
	case TypeFloat32:
		return Float32(math.Float32frombits(le.Uint32(b))), nil
	case TypeUint64:
		return Uint64(le.Uint64(b)), nil
	case TypeInt64:
		return Int64(int64(le.Uint64(b))), nil
	case TypeFloat64:
		return Float64(math.Float64frombits(le.Uint64(b))), nil
	}
	return Value{}, fmt.Errorf("%w: unknown value type %d", ErrInvalid, uint32(t))
}

// appendCap is the most elements an array slice is given up front; it grows
// from there only as elements are really read.
const appendCap = 1 << 16

func (d *decoder) array() (Array, error) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > MaxArrayDepth {
		return Array{}, fmt.Errorf("%w: arrays nested deeper than %d", ErrTooLarge, MaxArrayDepth)
	}
	et, err := d.u32()
	if err != nil {
		return Array{}, err
	}
	elem := ValueType(et)
	minSize := int64(elem.scalarSize())
	switch elem {
	case TypeString:
		minSize = 8
	case TypeArray:
		minSize = 4 + 8
	}
	if minSize == 0 {
		return Array{}, fmt.Errorf("%w: array of unknown value type %d", ErrInvalid, et)
	}
	n, err := d.count("array element", minSize)
	if err != nil {
		return Array{}, err
	}
	c := min(n, appendCap)
	switch elem {
	case TypeString:
		s := make([]string, 0, c)
		for i := 0; i < n; i++ {
			x, err := d.str(MaxStringLen)
			if err != nil {
				return Array{}, fmt.Errorf("element %d: %w", i, err)
			}
			s = append(s, x)
		}
		return Array{elem, s}, nil
	case TypeArray:
		s := make([]Array, 0, c)
		for i := 0; i < n; i++ {
			x, err := d.array()
			if err != nil {
				return Array{}, fmt.Errorf("element %d: %w", i, err)
			}
			s = append(s, x)
		}
		return Array{elem, s}, nil
	}
	return d.scalars(elem, n, c)
}

func readScalars[T any](d *decoder, t ValueType, n, c int, dec func([]byte) (T, bool)) (Array, error) {
	s := make([]T, 0, c)
	size := t.scalarSize()
	for i := 0; i < n; i++ {
		b, err := d.read(size)
		if err != nil {
			return Array{}, err
		}
		v, ok := dec(b)
		if !ok {
			return Array{}, fmt.Errorf("%w: element %d: bad %s value % x", ErrInvalid, i, t, b)
		}
		s = append(s, v)
	}
	return Array{t, s}, nil
}

func (d *decoder) scalars(t ValueType, n, c int) (Array, error) {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return readScalars(d, t, n, c, func(b []byte) (uint8, bool) { return b[0], true })
	case TypeInt8:
		return readScalars(d, t, n, c, func(b []byte) (int8, bool) { return int8(b[0]), true })
	case TypeUint16:
		return readScalars(d, t, n, c, func(b []byte) (uint16, bool) { return le.Uint16(b), true })
	case TypeInt16:
		return readScalars(d, t, n, c, func(b []byte) (int16, bool) { return int16(le.Uint16(b)), true })
	case TypeUint32:
		return readScalars(d, t, n, c, func(b []byte) (uint32, bool) { return le.Uint32(b), true })
	case TypeInt32:
		return readScalars(d, t, n, c, func(b []byte) (int32, bool) { return int32(le.Uint32(b)), true })
	case TypeFloat32:
		return readScalars(d, t, n, c, func(b []byte) (float32, bool) { return math.Float32frombits(le.Uint32(b)), true })
	case TypeBool:
		return readScalars(d, t, n, c, func(b []byte) (bool, bool) { return b[0] == 1, b[0] <= 1 })
	case TypeUint64:
		return readScalars(d, t, n, c, func(b []byte) (uint64, bool) { return le.Uint64(b), true })
	case TypeInt64:
		return readScalars(d, t, n, c, func(b []byte) (int64, bool) { return int64(le.Uint64(b)), true })
	case TypeFloat64:
		return readScalars(d, t, n, c, func(b []byte) (float64, bool) { return math.Float64frombits(le.Uint64(b)), true })
	}
	return Array{}, fmt.Errorf("%w: array of unknown value type %d", ErrInvalid, uint32(t))
}
