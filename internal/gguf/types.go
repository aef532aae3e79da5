package gguf

import (
	"fmt"
	"math"
)

// ValueType is the type of a metadata value, as numbered in the GGUF spec.
type ValueType uint32

// Metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"}

// Valid reports whether t is a known value type.
func (t ValueType) Valid() bool { return t <= TypeFloat64 }

// String returns the type's short name as gguf-py prints it ("u32", "str", ...).
func (t ValueType) String() string {
	if t.Valid() {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// scalarSize returns the encoded size of a fixed-size value type, or 0.
func (t ValueType) scalarSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// TensorType is a ggml tensor type (enum ggml_type).
type TensorType uint32

// Tensor types of ggml. Numbers absent here were removed from ggml.
const (
	TensorF32     TensorType = 0
	TensorF16     TensorType = 1
	TensorQ4_0    TensorType = 2
	TensorQ4_1    TensorType = 3
	TensorQ5_0    TensorType = 6
	TensorQ5_1    TensorType = 7
	TensorQ8_0    TensorType = 8
	TensorQ8_1    TensorType = 9
	TensorQ2_K    TensorType = 10
	TensorQ3_K    TensorType = 11
	TensorQ4_K    TensorType = 12
	TensorQ5_K    TensorType = 13
	TensorQ6_K    TensorType = 14
	TensorQ8_K    TensorType = 15
	TensorIQ2_XXS TensorType = 16
	TensorIQ2_XS  TensorType = 17
	TensorIQ3_XXS TensorType = 18
	TensorIQ1_S   TensorType = 19
	TensorIQ4_NL  TensorType = 20
	TensorIQ3_S   TensorType = 21
	TensorIQ2_S   TensorType = 22
	TensorIQ4_XS  TensorType = 23
	TensorI8      TensorType = 24
	TensorI16     TensorType = 25
	TensorI32     TensorType = 26
	TensorI64     TensorType = 27
	TensorF64     TensorType = 28
	TensorIQ1_M   TensorType = 29
	TensorBF16    TensorType = 30
	TensorTQ1_0   TensorType = 34
	TensorTQ2_0   TensorType = 35
	TensorMXFP4   TensorType = 39
	TensorNVFP4   TensorType = 40
	TensorQ1_0    TensorType = 41
	TensorQ2_0    TensorType = 42
)

type typeTraits struct {
	name      string
	blockSize int64 // elements per block
	typeSize  int64 // bytes per block
}

const qkK = 256

// tensorTypes is ggml's type table (ggml.c type_traits; gguf-py GGML_QUANT_SIZES).
var tensorTypes = map[TensorType]typeTraits{
	TensorF32:     {"F32", 1, 4},
	TensorF16:     {"F16", 1, 2},
	TensorQ4_0:    {"Q4_0", 32, 2 + 16},
	TensorQ4_1:    {"Q4_1", 32, 2 + 2 + 16},
	TensorQ5_0:    {"Q5_0", 32, 2 + 4 + 16},
	TensorQ5_1:    {"Q5_1", 32, 2 + 2 + 4 + 16},
	TensorQ8_0:    {"Q8_0", 32, 2 + 32},
	TensorQ8_1:    {"Q8_1", 32, 2 + 2 + 32},
	TensorQ2_K:    {"Q2_K", qkK, 2 + 2 + qkK/16 + qkK/4},
	TensorQ3_K:    {"Q3_K", qkK, 2 + qkK/4 + qkK/8 + 12},
	TensorQ4_K:    {"Q4_K", qkK, 2 + 2 + qkK/2 + 12},
	TensorQ5_K:    {"Q5_K", qkK, 2 + 2 + qkK/2 + qkK/8 + 12},
	TensorQ6_K:    {"Q6_K", qkK, 2 + qkK/2 + qkK/4 + qkK/16},
	TensorQ8_K:    {"Q8_K", qkK, 4 + qkK + qkK/8},
	TensorIQ2_XXS: {"IQ2_XXS", qkK, 2 + qkK/4},
	TensorIQ2_XS:  {"IQ2_XS", qkK, 2 + qkK/4 + qkK/32},
	TensorIQ3_XXS: {"IQ3_XXS", qkK, 2 + qkK/4 + qkK/8},
	TensorIQ1_S:   {"IQ1_S", qkK, 2 + qkK/8 + qkK/16},
	TensorIQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	TensorIQ3_S:   {"IQ3_S", qkK, 2 + qkK/4 + qkK/8 + qkK/32 + 4},
	TensorIQ2_S:   {"IQ2_S", qkK, 2 + qkK/4 + qkK/16},
	TensorIQ4_XS:  {"IQ4_XS", qkK, 2 + 2 + qkK/2 + qkK/64},
	TensorI8:      {"I8", 1, 1},
	TensorI16:     {"I16", 1, 2},
	TensorI32:     {"I32", 1, 4},
	TensorI64:     {"I64", 1, 8},
	TensorF64:     {"F64", 1, 8},
	TensorIQ1_M:   {"IQ1_M", qkK, qkK/8 + qkK/16 + qkK/32},
	TensorBF16:    {"BF16", 1, 2},
	TensorTQ1_0:   {"TQ1_0", qkK, 2 + 4*13},
	TensorTQ2_0:   {"TQ2_0", qkK, 2 + 64},
	TensorMXFP4:   {"MXFP4", 32, 1 + 16},
	TensorNVFP4:   {"NVFP4", 64, 4 + 32},
	TensorQ1_0:    {"Q1_0", 128, 2 + 16},
	TensorQ2_0:    {"Q2_0", 64, 2 + 16},
}

// Known reports whether t is a ggml type this package knows the size of.
func (t TensorType) Known() bool { _, ok := tensorTypes[t]; return ok }

// String returns ggml's name of the type ("F16", "Q4_K"), or "type(N)".
func (t TensorType) String() string {
	if tt, ok := tensorTypes[t]; ok {
		return tt.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize returns the number of elements in one block of t (1 for
// unquantized types), or 0 for an unknown type.
func (t TensorType) BlockSize() int64 { return tensorTypes[t].blockSize }

// TypeSize returns the number of bytes of one block of t, or 0 for an
// unknown type.
func (t TensorType) TypeSize() int64 { return tensorTypes[t].typeSize }

// Quantized reports whether t is a block-quantized type.
func (t TensorType) Quantized() bool { return tensorTypes[t].blockSize > 1 }

// ParseTensorType returns the type named name ("F16", "q8_0"; case-insensitive).
func ParseTensorType(name string) (TensorType, bool) {
	for t, tt := range tensorTypes {
		if equalFold(tt.name, name) {
			return t, true
		}
	}
	return 0, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// RowSize returns the number of bytes of a tensor of type t holding n
// elements, and false when t is unknown, n is not a whole number of blocks,
// or the size overflows int64.
func (t TensorType) RowSize(n uint64) (int64, bool) {
	tt, ok := tensorTypes[t]
	if !ok {
		return 0, false
	}
	bs := uint64(tt.blockSize)
	if n%bs != 0 {
		return 0, false
	}
	blocks := n / bs
	if blocks > uint64(math.MaxInt64)/uint64(tt.typeSize) {
		return 0, false
	}
	return int64(blocks) * tt.typeSize, true
}
