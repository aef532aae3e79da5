package gguf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Value is one metadata value: a scalar, a string or an Array. The zero
// Value is invalid. Values are immutable; constructors copy nothing, so do
// not change a slice after handing it to ArrayOf.
type Value struct {
	typ ValueType
	v   any // uint8 … float64, bool, string or Array
}

// Array is a metadata array: elements of one type, possibly arrays
// themselves. Its data is a typed slice ([]string, []float32, []int32,
// []Array, ...), read with Elems.
type Array struct {
	elem ValueType
	data any
}

// Element is the set of Go types a metadata array can hold.
type Element interface {
	uint8 | int8 | uint16 | int16 | uint32 | int32 | float32 | bool | string | uint64 | int64 | float64 | Array
}

// Uint8 returns a u8 value.
func Uint8(v uint8) Value { return Value{TypeUint8, v} }

// Int8 returns an i8 value.
func Int8(v int8) Value { return Value{TypeInt8, v} }

// Uint16 returns a u16 value.
func Uint16(v uint16) Value { return Value{TypeUint16, v} }

// Int16 returns an i16 value.
func Int16(v int16) Value { return Value{TypeInt16, v} }

// Uint32 returns a u32 value.
func Uint32(v uint32) Value { return Value{TypeUint32, v} }

// Int32 returns an i32 value.
func Int32(v int32) Value { return Value{TypeInt32, v} }

// Float32 returns an f32 value.
func Float32(v float32) Value { return Value{TypeFloat32, v} }

// Bool returns a bool value.
func Bool(v bool) Value { return Value{TypeBool, v} }

// String returns a string value.
func String(v string) Value { return Value{TypeString, v} }

// Uint64 returns a u64 value.
func Uint64(v uint64) Value { return Value{TypeUint64, v} }

// Int64 returns an i64 value.
func Int64(v int64) Value { return Value{TypeInt64, v} }

// Float64 returns an f64 value.
func Float64(v float64) Value { return Value{TypeFloat64, v} }

// ArrayOf returns an array value holding xs (not copied).
func ArrayOf[T Element](xs []T) Value { return Value{TypeArray, NewArray(xs)} }

// NewArray returns an Array holding xs (not copied).
func NewArray[T Element](xs []T) Array {
	if xs == nil {
		xs = []T{}
	}
	return Array{elemTypeOf(xs), xs}
}

func elemTypeOf(xs any) ValueType {
	switch xs.(type) {
	case []uint8:
		return TypeUint8
	case []int8:
		return TypeInt8
	case []uint16:
		return TypeUint16
	case []int16:
		return TypeInt16
	case []uint32:
		return TypeUint32
	case []int32:
		return TypeInt32
	case []float32:
		return TypeFloat32
	case []bool:
		return TypeBool
	case []string:
		return TypeString
	case []uint64:
		return TypeUint64
	case []int64:
		return TypeInt64
	case []float64:
		return TypeFloat64
	case []Array:
		return TypeArray
	}
	panic("gguf: unreachable element type")
}

// Elems returns the elements of a as a []T and true when a holds T.
func Elems[T Element](a Array) ([]T, bool) {
	s, ok := a.data.([]T)
	return s, ok
}

// Elem returns the type of a's elements.
func (a Array) Elem() ValueType { return a.elem }

// Len returns the number of elements of a.
func (a Array) Len() int {
	switch s := a.data.(type) {
	case []uint8:
		return len(s)
	case []int8:
		return len(s)
	case []uint16:
		return len(s)
	case []int16:
		return len(s)
	case []uint32:
		return len(s)
	case []int32:
		return len(s)
	case []float32:
		return len(s)
	case []bool:
		return len(s)
	case []string:
		return len(s)
	case []uint64:
		return len(s)
	case []int64:
		return len(s)
	case []float64:
		return len(s)
	case []Array:
		return len(s)
	}
	return 0
}

// Index returns element i of a as a Value.
func (a Array) Index(i int) Value {
	switch s := a.data.(type) {
	case []uint8:
		return Uint8(s[i])
	case []int8:
		return Int8(s[i])
	case []uint16:
		return Uint16(s[i])
	case []int16:
		return Int16(s[i])
	case []uint32:
		return Uint32(s[i])
	case []int32:
		return Int32(s[i])
	case []float32:
		return Float32(s[i])
	case []bool:
		return Bool(s[i])
	case []string:
		return String(s[i])
	case []uint64:
		return Uint64(s[i])
	case []int64:
		return Int64(s[i])
	case []float64:
		return Float64(s[i])
	case []Array:
		return Value{TypeArray, s[i]}
	}
	panic("gguf: index of empty Array")
}

// Strings returns the elements of a string array.
func (a Array) Strings() ([]string, bool) { return Elems[string](a) }

// Ints returns the elements of an integer array as int64s.
func (a Array) Ints() ([]int64, bool) {
	if !isInt(a.elem) {
		return nil, false
	}
	out := make([]int64, a.Len())
	for i := range out {
		n, ok := a.Index(i).Int()
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// Floats returns the elements of a float array as float64s.
func (a Array) Floats() ([]float64, bool) {
	if a.elem != TypeFloat32 && a.elem != TypeFloat64 {
		return nil, false
	}
	out := make([]float64, a.Len())
	for i := range out {
		out[i], _ = a.Index(i).Float()
	}
	return out, true
}

func isInt(t ValueType) bool {
	switch t {
	case TypeUint8, TypeInt8, TypeUint16, TypeInt16, TypeUint32, TypeInt32, TypeUint64, TypeInt64:
		return true
	}
	return false
}

// Type returns the value's type.
func (v Value) Type() ValueType { return v.typ }

// Interface returns the value as a Go value: uint8 … float64, bool, string or Array.
func (v Value) Interface() any { return v.v }

// Text returns the value of a string.
func (v Value) Text() (string, bool) { s, ok := v.v.(string); return s, ok }

// Array returns the value of an array.
func (v Value) Array() (Array, bool) { a, ok := v.v.(Array); return a, ok }

// BoolValue returns the value of a bool.
func (v Value) BoolValue() (bool, bool) { b, ok := v.v.(bool); return b, ok }

// Uint returns the value of a non-negative integer of any width.
func (v Value) Uint() (uint64, bool) {
	switch x := v.v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	}
	if n, ok := v.Int(); ok && n >= 0 {
		return uint64(n), true
	}
	return 0, false
}

// Int returns the value of an integer of any width that fits in int64.
func (v Value) Int() (int64, bool) {
	switch x := v.v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// Float returns the value of a float or integer as float64.
func (v Value) Float() (float64, bool) {
	switch x := v.v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if n, ok := v.Int(); ok {
		return float64(n), true
	}
	if n, ok := v.Uint(); ok {
		return float64(n), true
	}
	return 0, false
}

// String formats the value for people; long arrays are abbreviated.
func (v Value) String() string {
	switch x := v.v.(type) {
	case string:
		return strconv.Quote(x)
	case Array:
		var b strings.Builder
		b.WriteString("[")
		n := x.Len()
		for i := 0; i < n && i < 8; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(x.Index(i).String())
		}
		if n > 8 {
			fmt.Fprintf(&b, ", … (%d %s)", n, x.elem)
		}
		b.WriteString("]")
		return b.String()
	case nil:
		return "<invalid>"
	}
	return fmt.Sprint(v.v)
}

// Equal reports whether v and w have the same type and contents (floats
// compared bit for bit).
func (v Value) Equal(w Value) bool {
	if v.typ != w.typ {
		return false
	}
	switch x := v.v.(type) {
	case float32:
		return math.Float32bits(x) == math.Float32bits(w.v.(float32))
	case float64:
		return math.Float64bits(x) == math.Float64bits(w.v.(float64))
	case Array:
		y := w.v.(Array)
		if x.elem != y.elem || x.Len() != y.Len() {
			return false
		}
		for i := 0; i < x.Len(); i++ {
			if !x.Index(i).Equal(y.Index(i)) {
				return false
			}
		}
		return true
	}
	return v.v == w.v
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}
