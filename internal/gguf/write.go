package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Header is what a Writer writes before the tensor data: metadata and
// tensor infos.
type Header struct {
	// Version is the GGUF version written; 0 means 3.
	Version uint32
	// KV is the metadata, written in this order. general.alignment, when
	// present, must be a u32 power of two and sets the alignment.
	KV []KV
	// Tensors is the tensor infos, written and then filled in this order.
	// Their Offset fields are ignored and computed.
	Tensors []TensorInfo
}

// Header returns f's header, ready to write again unchanged.
func (f *File) Header() Header {
	return Header{Version: f.Version, KV: f.KV, Tensors: f.Tensors}
}

// Writer writes a GGUF file as a stream: NewWriter writes the header, Write
// takes the tensor data of every tensor in header order (padding is added
// between tensors), Close checks that all the data came and flushes. A
// Writer is not safe for concurrent use.
type Writer struct {
	w         *bufio.Writer
	dst       io.Writer // what w writes to, for large writes that bypass it
	tensors   []TensorInfo
	align     int64
	cur       int   // index of the tensor being written
	left      int64 // bytes of the current tensor still to come
	written   int64 // bytes written in total
	err       error
	closed    bool
	zeros     []byte
	headerLen int64
}

// NewWriter checks h, writes the header to w and returns a Writer for the
// tensor data. Output is buffered; Close flushes it.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	gw := &Writer{w: bufio.NewWriterSize(w, 1<<20), dst: w, align: DefaultAlignment}
	if h.Version == 0 {
		h.Version = 3
	}
	if h.Version != 2 && h.Version != 3 {
		return nil, fmt.Errorf("%w: version %d (supported: 2, 3)", ErrVersion, h.Version)
	}
	keys := make(map[string]bool, len(h.KV))
	for _, kv := range h.KV {
		if keys[kv.Key] {
			return nil, fmt.Errorf("%w: duplicate metadata key %q", ErrWrite, kv.Key)
		}
		keys[kv.Key] = true
		if err := checkValue(kv.Value, 0); err != nil {
			return nil, fmt.Errorf("%w: metadata %q: %v", ErrWrite, kv.Key, err)
		}
		if kv.Key == "general.alignment" {
			a, ok := kv.Value.Interface().(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("%w: general.alignment must be a u32 power of 2, got %s %v", ErrWrite, kv.Value.Type(), kv.Value)
			}
			gw.align = int64(a)
		}
	}
	names := make(map[string]bool, len(h.Tensors))
	gw.tensors = make([]TensorInfo, len(h.Tensors))
	var off int64
	for i, t := range h.Tensors {
		if names[t.Name] {
			return nil, fmt.Errorf("%w: duplicate tensor %q", ErrWrite, t.Name)
		}
		names[t.Name] = true
		if len(t.Dims) > MaxDims {
			return nil, fmt.Errorf("%w: tensor %q has %d dimensions (at most %d)", ErrWrite, t.Name, len(t.Dims), MaxDims)
		}
		n := t.Size()
		if n < 0 {
			return nil, fmt.Errorf("%w: tensor %q: shape %v does not fit type %s", ErrWrite, t.Name, t.Dims, t.Type)
		}
		t.Dims = append([]uint64(nil), t.Dims...)
		t.Offset = uint64(off)
		gw.tensors[i] = t
		off = alignUp(off+n, gw.align)
	}
	e := &encoder{w: gw.w}
	e.bytes([]byte(Magic))
	e.u32(h.Version)
	e.u64(uint64(len(h.Tensors)))
	e.u64(uint64(len(h.KV)))
	for _, kv := range h.KV {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.typ))
		e.value(kv.Value)
	}
	for _, t := range gw.tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(t.Offset)
	}
	gw.written = e.n
	if e.err != nil {
		return nil, e.err
	}
	if len(gw.tensors) > 0 {
		if err := gw.pad(); err != nil {
			return nil, err
		}
	}
	gw.headerLen = gw.written
	if err := gw.w.Flush(); err != nil {
		return nil, err
	}
	gw.start()
	return gw, nil
}

func checkValue(v Value, depth int) error {
	if depth > MaxArrayDepth {
		return fmt.Errorf("arrays nested deeper than %d", MaxArrayDepth)
	}
	if v.v == nil || !v.typ.Valid() {
		return fmt.Errorf("invalid value")
	}
	if a, ok := v.v.(Array); ok {
		if nested, ok := a.data.([]Array); ok {
			for _, x := range nested {
				if err := checkValue(Value{TypeArray, x}, depth+1); err != nil {
					return err
				}
			}
		} else if a.data == nil {
			return fmt.Errorf("invalid array")
		}
	}
	return nil
}

// Tensors returns the tensor infos as written, with their offsets.
func (w *Writer) Tensors() []TensorInfo { return w.tensors }

// DataOffset returns the position of the data section (bytes).
func (w *Writer) DataOffset() int64 { return w.headerLen }

// Written returns the number of bytes written so far, padding included.
func (w *Writer) Written() int64 { return w.written }

// Current returns the index of the tensor whose data Write takes next, or
// len(Tensors()) when all data has been written.
func (w *Writer) Current() int { return w.cur }

// start skips empty tensors so that cur points at one that needs bytes.
func (w *Writer) start() {
	for w.cur < len(w.tensors) {
		w.left = w.tensors[w.cur].Size()
		if w.left > 0 {
			return
		}
		w.cur++
	}
}

func (w *Writer) pad() error {
	n := alignUp(w.written, w.align) - w.written
	if n == 0 {
		return nil
	}
	if int64(len(w.zeros)) < n {
		w.zeros = make([]byte, w.align)
	}
	m, err := w.w.Write(w.zeros[:n])
	w.written += int64(m)
	return err
}

// directWrite is the size from which Write passes data to the underlying
// writer directly rather than through its buffer.
const directWrite = 64 << 10

// Write writes tensor data: the bytes of the tensors in header order,
// without padding. Writing more bytes than the tensors hold is an error.
// Writes of 64 KiB or more go to the underlying writer directly (after
// what is buffered), without a copy.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, fmt.Errorf("%w: write after Close", ErrWrite)
	}
	total := 0
	for len(p) > 0 {
		if w.cur >= len(w.tensors) {
			w.err = fmt.Errorf("%w: %d bytes more than the tensors hold", ErrWrite, len(p))
			return total, w.err
		}
		n := int(min(int64(len(p)), w.left))
		var m int
		var err error
		if n >= directWrite {
			// Large writes (tensor data in chunks) go straight through
			// instead of being copied into the buffer first.
			if err = w.w.Flush(); err == nil {
				m, err = w.dst.Write(p[:n])
			}
		} else {
			m, err = w.w.Write(p[:n])
		}
		total += m
		w.written += int64(m)
		w.left -= int64(m)
		if err != nil {
			w.err = err
			return total, err
		}
		p = p[n:]
		if w.left == 0 {
			if err := w.pad(); err != nil {
				w.err = err
				return total, err
			}
			w.cur++
			w.start()
		}
	}
	return total, nil
}

// WriteTensor copies the data of the current tensor from r: exactly its
// size in bytes, or an error naming the tensor when r ends early.
func (w *Writer) WriteTensor(r io.Reader) error {
	if w.cur >= len(w.tensors) {
		return fmt.Errorf("%w: all tensors already written", ErrWrite)
	}
	t := w.tensors[w.cur]
	n, err := io.CopyN(w, r, w.left)
	if err == io.EOF {
		return fmt.Errorf("%w: tensor %q: data ended after %d of %d bytes", ErrWrite, t.Name, n, t.Size())
	}
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return nil
}

// Close checks that the data of every tensor was written and flushes the
// output. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if w.cur < len(w.tensors) {
		t := w.tensors[w.cur]
		w.err = fmt.Errorf("%w: closed with tensor %q (%d of %d) missing %d of %d bytes",
			ErrWrite, t.Name, w.cur+1, len(w.tensors), w.left, t.Size())
		return w.err
	}
	w.err = w.w.Flush()
	return w.err
}

type encoder struct {
	w   io.Writer
	n   int64
	err error
	b   [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	n, err := e.w.Write(b)
	e.n += int64(n)
	e.err = err
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.b[:4], v)
	e.bytes(e.b[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.b[:], v)
	e.bytes(e.b[:])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		n, err := io.WriteString(e.w, s)
		e.n += int64(n)
		e.err = err
	}
}

func (e *encoder) value(v Value) {
	switch x := v.v.(type) {
	case Array:
		e.array(x)
	default:
		e.scalar(x)
	}
}

func (e *encoder) scalar(x any) {
	switch x := x.(type) {
	case uint8:
		e.bytes([]byte{x})
	case int8:
		e.bytes([]byte{byte(x)})
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		e.bytes([]byte{b})
	case uint16:
		binary.LittleEndian.PutUint16(e.b[:2], x)
		e.bytes(e.b[:2])
	case int16:
		binary.LittleEndian.PutUint16(e.b[:2], uint16(x))
		e.bytes(e.b[:2])
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case string:
		e.str(x)
	}
}

func (e *encoder) array(a Array) {
	e.u32(uint32(a.elem))
	e.u64(uint64(a.Len()))
	switch s := a.data.(type) {
	case []string:
		for _, x := range s {
			e.str(x)
		}
	case []Array:
		for _, x := range s {
			e.array(x)
		}
	case []uint8:
		e.bytes(s)
	case []float32:
		for _, x := range s {
			e.u32(math.Float32bits(x))
		}
	case []int32:
		for _, x := range s {
			e.u32(uint32(x))
		}
	default:
		for i := 0; i < a.Len(); i++ {
			e.scalar(a.Index(i).v)
		}
	}
}
