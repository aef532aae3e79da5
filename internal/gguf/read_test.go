package gguf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olmhq/olm/internal/gguf"
	"github.com/olmhq/olm/internal/testmodel"
)

// le builds little-endian GGUF bytes for hand-made headers.
type le struct{ bytes.Buffer }

func (b *le) u32(v uint32) *le { binary.Write(&b.Buffer, binary.LittleEndian, v); return b }
func (b *le) u64(v uint64) *le { binary.Write(&b.Buffer, binary.LittleEndian, v); return b }
func (b *le) str(s string) *le { b.u64(uint64(len(s))); b.WriteString(s); return b }
func (b *le) pad(n int) *le    { b.Write(make([]byte, n)); return b }
func header(nt, nkv uint64) *le {
	b := &le{}
	b.WriteString("GGUF")
	return b.u32(3).u64(nt).u64(nkv)
}

func TestReadErrors(t *testing.T) {
	tiny, err := os.ReadFile(testmodel.Tiny(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty", nil, gguf.ErrNotGGUF, ""},
		{"magic", []byte("GGML\x03\x00\x00\x00"), gguf.ErrNotGGUF, ""},
		{"version 1", append([]byte("GGUF"), 1, 0, 0, 0), gguf.ErrVersion, "version 1"},
		{"big endian", append([]byte("GGUF"), 0, 0, 0, 3), gguf.ErrVersion, "big-endian"},
		{"huge kv count", header(0, math.MaxUint64).Bytes(), gguf.ErrTruncated, "metadata count"},
		{"huge tensor count", header(1<<40, 0).Bytes(), gguf.ErrTruncated, "tensor count"},
		{"huge string", header(0, 1).u64(1 << 62).pad(16).Bytes(), gguf.ErrTooLarge, "string"},
		{"string past end", header(0, 1).u64(100).pad(8).Bytes(), gguf.ErrTruncated, "only 8 bytes follow"},
		{"bad value type", header(0, 1).str("k").u32(99).Bytes(), gguf.ErrInvalid, "unknown value type 99"},
		{"huge array", header(0, 1).str("k").u32(uint32(gguf.TypeArray)).u32(uint32(gguf.TypeUint32)).u64(1 << 60).Bytes(), gguf.ErrTruncated, "array element count"},
		{"bad bool", header(0, 1).str("k").u32(uint32(gguf.TypeBool)).Bytes(), gguf.ErrTruncated, ""},
		{"alignment type", header(0, 1).str("general.alignment").u32(uint32(gguf.TypeUint64)).u64(32).Bytes(), gguf.ErrInvalid, "want u32"},
		{"alignment power", header(0, 1).str("general.alignment").u32(uint32(gguf.TypeUint32)).u32(48).Bytes(), gguf.ErrInvalid, "power of 2"},
		{"duplicate key", header(0, 2).str("a").u32(uint32(gguf.TypeUint8)).u32(1).str("a").u32(uint32(gguf.TypeUint8)).u32(1).Bytes()[:0], gguf.ErrNotGGUF, ""},
		{"dims", header(1, 0).str("t").u32(5).pad(64).Bytes(), gguf.ErrInvalid, "5 dimensions"},
		{"tensor type", header(1, 0).str("t").u32(1).u64(4).u32(77).u64(0).pad(64).Bytes(), gguf.ErrInvalid, "unknown ggml type 77"},
		{"block size", header(1, 0).str("t").u32(1).u64(33).u32(uint32(gguf.TensorQ4_0)).u64(0).pad(64).Bytes(), gguf.ErrInvalid, "block size 32"},
		{"overflow", header(1, 0).str("t").u32(2).u64(1 << 40).u64(1 << 40).u32(0).u64(0).pad(64).Bytes(), gguf.ErrInvalid, "overflows"},
		{"tensor past end", header(1, 0).str("blk.0.x").u32(1).u64(1000).u32(0).u64(0).pad(64).Bytes(), gguf.ErrTruncated, `"blk.0.x"`},
		{"misaligned", header(1, 0).str("t").u32(1).u64(1).u32(0).u64(4).pad(64).Bytes(), gguf.ErrInvalid, "alignment"},
		{"truncated tiny", tiny[:len(tiny)-100], gguf.ErrTruncated, `"output.weight"`},
		{"truncated header", tiny[:5000], gguf.ErrTruncated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gguf.Read(bytes.NewReader(tt.data), int64(len(tt.data)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}

func TestDuplicateKey(t *testing.T) {
	b := header(0, 2).str("a").u32(uint32(gguf.TypeUint8)).Bytes()
	b = append(b, 1)
	b = append(b, (&le{}).str("a").u32(uint32(gguf.TypeUint8)).Bytes()...)
	b = append(b, 2)
	_, err := gguf.Read(bytes.NewReader(b), int64(len(b)))
	if !errors.Is(err, gguf.ErrInvalid) || !strings.Contains(err.Error(), `duplicate metadata key "a"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestAllValueTypesRoundTrip(t *testing.T) {
	kv := []gguf.KV{
		{Key: "u8", Value: gguf.Uint8(200)},
		{Key: "i8", Value: gguf.Int8(-100)},
		{Key: "u16", Value: gguf.Uint16(60000)},
		{Key: "i16", Value: gguf.Int16(-30000)},
		{Key: "u32", Value: gguf.Uint32(4e9)},
		{Key: "i32", Value: gguf.Int32(-2e9)},
		{Key: "f32", Value: gguf.Float32(1.5)},
		{Key: "bool", Value: gguf.Bool(true)},
		{Key: "str", Value: gguf.String("héllo\x00")},
		{Key: "u64", Value: gguf.Uint64(math.MaxUint64)},
		{Key: "i64", Value: gguf.Int64(math.MinInt64)},
		{Key: "f64", Value: gguf.Float64(math.Pi)},
		{Key: "general.alignment", Value: gguf.Uint32(64)},
		{Key: "a.str", Value: gguf.ArrayOf([]string{"a", "", "ccc"})},
		{Key: "a.u8", Value: gguf.ArrayOf([]uint8{1, 2})},
		{Key: "a.i8", Value: gguf.ArrayOf([]int8{-1})},
		{Key: "a.u16", Value: gguf.ArrayOf([]uint16{1})},
		{Key: "a.i16", Value: gguf.ArrayOf([]int16{-1})},
		{Key: "a.u32", Value: gguf.ArrayOf([]uint32{1, 2, 3})},
		{Key: "a.i32", Value: gguf.ArrayOf([]int32{-1, 2})},
		{Key: "a.f32", Value: gguf.ArrayOf([]float32{0.5, -2})},
		{Key: "a.bool", Value: gguf.ArrayOf([]bool{true, false})},
		{Key: "a.u64", Value: gguf.ArrayOf([]uint64{1 << 60})},
		{Key: "a.i64", Value: gguf.ArrayOf([]int64{-1 << 60})},
		{Key: "a.f64", Value: gguf.ArrayOf([]float64{1e300})},
		{Key: "a.empty", Value: gguf.ArrayOf([]int32{})},
		{Key: "a.nested", Value: gguf.ArrayOf([]gguf.Array{gguf.NewArray([]string{"x"}), gguf.NewArray([]gguf.Array{gguf.NewArray([]int32{7})})})},
	}
	tensors := []gguf.TensorInfo{
		{Name: "a", Type: gguf.TensorF32, Dims: []uint64{3}},
		{Name: "q", Type: gguf.TensorQ4_K, Dims: []uint64{256, 2}},
		{Name: "empty", Type: gguf.TensorF16, Dims: []uint64{0, 4}},
		{Name: "scalar", Type: gguf.TensorI32},
	}
	var out bytes.Buffer
	w, err := gguf.NewWriter(&out, gguf.Header{KV: kv, Tensors: tensors})
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, ti := range w.Tensors() {
		for i := int64(0); i < ti.Size(); i++ {
			data = append(data, byte(i*7+int64(len(ti.Name))))
		}
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Read(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
	}
	if len(f.KV) != len(kv) {
		t.Fatalf("read %d kv, wrote %d", len(f.KV), len(kv))
	}
	for i := range kv {
		if f.KV[i].Key != kv[i].Key || !f.KV[i].Value.Equal(kv[i].Value) {
			t.Errorf("kv %d: read %s=%v, wrote %s=%v", i, f.KV[i].Key, f.KV[i].Value, kv[i].Key, kv[i].Value)
		}
	}
	var got []byte
	for i, ti := range f.Tensors {
		if ti.Name != tensors[i].Name || ti.Type != tensors[i].Type || len(ti.Dims) != len(tensors[i].Dims) || ti.Offset%64 != 0 {
			t.Errorf("tensor %d: %+v, wrote %+v", i, ti, tensors[i])
		}
		b := make([]byte, ti.Size())
		if _, err := f.TensorData(bytes.NewReader(out.Bytes()), ti).Read(b); err != nil && len(b) > 0 {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, data) {
		t.Error("tensor data differs")
	}
	if n, _ := f.Uint("u32"); n != 4e9 {
		t.Errorf("Uint(u32) = %d", n)
	}
	if n, ok := f.Int("i8"); !ok || n != -100 {
		t.Errorf("Int(i8) = %d, %v", n, ok)
	}
	if _, ok := f.Uint("i8"); ok {
		t.Error("Uint of a negative value succeeded")
	}
	if x, _ := f.Float("f32"); x != 1.5 {
		t.Errorf("Float(f32) = %v", x)
	}
	if s, _ := f.Strings("a.str"); len(s) != 3 || s[2] != "ccc" {
		t.Errorf("Strings = %q", s)
	}
	a, _ := f.Array("a.nested")
	inner, _ := gguf.Elems[gguf.Array](a)
	if len(inner) != 2 || inner[1].Len() != 1 {
		t.Errorf("nested = %v", a)
	}
	if q := f.Quantization(); q != "Q4_K" {
		t.Errorf("Quantization = %q, want Q4_K (from tensors)", q)
	}
}

func TestWriterErrors(t *testing.T) {
	ts := []gguf.TensorInfo{{Name: "a", Type: gguf.TensorF16, Dims: []uint64{4}}, {Name: "b", Type: gguf.TensorF32, Dims: []uint64{2}}}
	var out bytes.Buffer
	w, err := gguf.NewWriter(&out, gguf.Header{Tensors: ts})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor(bytes.NewReader(make([]byte, 3))); !errors.Is(err, gguf.ErrWrite) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("short tensor: %v", err)
	}
	w, _ = gguf.NewWriter(&out, gguf.Header{Tensors: ts})
	w.Write(make([]byte, 8))
	if err := w.Close(); !errors.Is(err, gguf.ErrWrite) || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("close early: %v", err)
	}
	w, _ = gguf.NewWriter(&out, gguf.Header{Tensors: ts})
	if _, err := w.Write(make([]byte, 17)); !errors.Is(err, gguf.ErrWrite) {
		t.Errorf("too much data: %v", err)
	}
	for _, h := range []gguf.Header{
		{KV: []gguf.KV{{Key: "x", Value: gguf.Uint8(1)}, {Key: "x", Value: gguf.Uint8(1)}}},
		{KV: []gguf.KV{{Key: "general.alignment", Value: gguf.Uint64(32)}}},
		{KV: []gguf.KV{{Key: "zero"}}},
		{Tensors: []gguf.TensorInfo{{Name: "q", Type: gguf.TensorQ8_0, Dims: []uint64{31}}}},
		{Tensors: []gguf.TensorInfo{{Name: "a", Type: gguf.TensorF32}, {Name: "a", Type: gguf.TensorF32}}},
	} {
		if _, err := gguf.NewWriter(&out, h); !errors.Is(err, gguf.ErrWrite) {
			t.Errorf("NewWriter(%+v) = %v, want ErrWrite", h, err)
		}
	}
}

func TestTypeTable(t *testing.T) {
	for _, tc := range []struct {
		typ         gguf.TensorType
		name        string
		block, size int64
	}{
		{gguf.TensorF32, "F32", 1, 4}, {gguf.TensorBF16, "BF16", 1, 2}, {gguf.TensorQ4_0, "Q4_0", 32, 18},
		{gguf.TensorQ8_0, "Q8_0", 32, 34}, {gguf.TensorQ4_K, "Q4_K", 256, 144}, {gguf.TensorQ6_K, "Q6_K", 256, 210},
		{gguf.TensorQ5_K, "Q5_K", 256, 176}, {gguf.TensorQ2_K, "Q2_K", 256, 84}, {gguf.TensorQ3_K, "Q3_K", 256, 110},
		{gguf.TensorIQ4_XS, "IQ4_XS", 256, 136}, {gguf.TensorMXFP4, "MXFP4", 32, 17}, {gguf.TensorTQ2_0, "TQ2_0", 256, 66},
	} {
		if tc.typ.String() != tc.name || tc.typ.BlockSize() != tc.block || tc.typ.TypeSize() != tc.size {
			t.Errorf("%s: %s block %d size %d", tc.name, tc.typ, tc.typ.BlockSize(), tc.typ.TypeSize())
		}
		if p, ok := gguf.ParseTensorType(strings.ToLower(tc.name)); !ok || p != tc.typ {
			t.Errorf("ParseTensorType(%q) = %v", tc.name, p)
		}
	}
	if ft, ok := gguf.ParseFileType("q4_k_m"); !ok || ft != 15 || ft.String() != "Q4_K_M" {
		t.Errorf("ParseFileType = %v %v", ft, ok)
	}
	for n, want := range map[uint64]string{999: "999", 125_000: "125K", 494_030_000: "494.03M", 8e9: "8B", 7_240_000_000: "7.2B", 513048: "513.05M"[0:0] + "513K"} {
		if got := gguf.HumanParams(n); got != want {
			t.Errorf("HumanParams(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFloatConversions(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := gguf.F16ToF32(uint16(h))
		if f != f { // NaN
			continue
		}
		if back := gguf.F32ToF16(f); back != uint16(h) {
			t.Fatalf("F16 %#04x -> %v -> %#04x", h, f, back)
		}
	}
	for _, tc := range []struct {
		f float32
		h uint16
	}{{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e6, 0x7c00}, {5.960464477539063e-08, 0x0001}, {1e-10, 0}, {0.1, 0x2e66}} {
		if got := gguf.F32ToF16(tc.f); got != tc.h {
			t.Errorf("F32ToF16(%v) = %#04x, want %#04x", tc.f, got, tc.h)
		}
	}
	for _, f := range []float32{1, -3.5, 1e30, 0} {
		if got := gguf.BF16ToF32(gguf.F32ToBF16(f)); math.Abs(float64(got-f)) > math.Abs(float64(f))/128 {
			t.Errorf("bf16 round trip %v -> %v", f, got)
		}
	}
}

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.gguf")
	if err := testmodel.Generate(p, testmodel.TinyLlama); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.ParameterCount() != testmodel.TinyLlama.Params() {
		t.Errorf("params %d, spec says %d", f.ParameterCount(), testmodel.TinyLlama.Params())
	}
	if _, err := gguf.ReadFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	if p := testmodel.SharedPath(); p != "" {
		b, err := os.ReadFile(p)
		if err == nil {
			// The header plus a cut tensor section: the reader must
			// reject it cleanly; and a short full-header prefix.
			f.Add(b[:4096])
			f.Add(b[:2000])
		}
	}
	var out bytes.Buffer
	h, _ := testmodel.Header(testmodel.Spec{Vocab: 300, Embedding: 4, Blocks: 1, FeedForward: 8, Heads: 2})
	w, _ := gguf.NewWriter(&out, h)
	for range w.Tensors() {
		w.WriteTensor(zeroReader{})
	}
	w.Close()
	f.Add(out.Bytes())
	f.Add(header(0, 1).str("a").u32(uint32(gguf.TypeArray)).u32(uint32(gguf.TypeArray)).u64(1).u32(uint32(gguf.TypeString)).u64(1).str("x").Bytes())
	f.Add(header(1, 0).str("t").u32(2).u64(32).u64(2).u32(uint32(gguf.TensorQ8_0)).u64(0).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := gguf.Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		// Whatever parses must be within the file and write back the same header.
		for _, ti := range g.Tensors {
			if g.DataOffset+int64(ti.Offset)+ti.Size() > int64(len(b)) {
				t.Fatalf("tensor %q past the end", ti.Name)
			}
		}
		var out bytes.Buffer
		if _, err := gguf.NewWriter(&out, g.Header()); err != nil {
			t.Fatalf("a header that reads must write: %v", err)
		}
		// Same bytes up to the padding before the data section.
		n := g.DataOffset - int64(g.Alignment)
		if contiguous(g) && n > 0 && !bytes.Equal(out.Bytes()[:n], b[:n]) {
			t.Fatalf("rewritten header differs")
		}
	})
}

func contiguous(g *gguf.File) bool {
	var off uint64
	for _, ti := range g.Tensors {
		if ti.Offset != off {
			return false
		}
		off = (off + uint64(ti.Size()) + g.Alignment - 1) / g.Alignment * g.Alignment
	}
	return true
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
