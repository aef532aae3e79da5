package gguf

import (
	"fmt"
	"io"
	"math"
	"strconv"
)

// Value returns the metadata value of key.
func (f *File) Value(key string) (Value, bool) {
	i, ok := f.keys[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// String returns the string value of key; false when absent or not a string.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Value(key)
	return v.Text()
}

// Uint returns the value of key when it is a non-negative integer of any width.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Value(key)
	return v.Uint()
}

// Int returns the value of key when it is an integer of any width fitting int64.
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Value(key)
	return v.Int()
}

// Float returns the value of key when it is a float or integer.
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Value(key)
	return v.Float()
}

// Bool returns the value of key when it is a bool.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Value(key)
	return v.BoolValue()
}

// Array returns the value of key when it is an array.
func (f *File) Array(key string) (Array, bool) {
	v, _ := f.Value(key)
	return v.Array()
}

// Strings returns the value of key when it is an array of strings.
func (f *File) Strings(key string) ([]string, bool) {
	a, ok := f.Array(key)
	if !ok {
		return nil, false
	}
	return a.Strings()
}

// Tensor returns the info of the tensor called name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tensors[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// TensorData returns a reader of the data of tensor t, read from r, the
// same reader the File was read from.
func (f *File) TensorData(r io.ReaderAt, t TensorInfo) *io.SectionReader {
	return io.NewSectionReader(r, f.DataOffset+int64(t.Offset), t.Size())
}

// Architecture returns general.architecture ("llama", "qwen2", ...), or "".
func (f *File) Architecture() string {
	s, _ := f.String("general.architecture")
	return s
}

// Name returns general.name, or "".
func (f *File) Name() string {
	s, _ := f.String("general.name")
	return s
}

// ArchUint returns the integer value of "<architecture>.<suffix>", for
// example ArchUint("context_length").
func (f *File) ArchUint(suffix string) (uint64, bool) {
	return f.Uint(f.Architecture() + "." + suffix)
}

// ContextLength returns <arch>.context_length, or 0.
func (f *File) ContextLength() uint64 { n, _ := f.ArchUint("context_length"); return n }

// EmbeddingLength returns <arch>.embedding_length, or 0.
func (f *File) EmbeddingLength() uint64 { n, _ := f.ArchUint("embedding_length"); return n }

// BlockCount returns <arch>.block_count, or 0.
func (f *File) BlockCount() uint64 { n, _ := f.ArchUint("block_count"); return n }

// HeadCount returns <arch>.attention.head_count, or 0.
func (f *File) HeadCount() uint64 { n, _ := f.ArchUint("attention.head_count"); return n }

// HeadCountKV returns <arch>.attention.head_count_kv, or HeadCount when absent.
func (f *File) HeadCountKV() uint64 {
	if n, ok := f.ArchUint("attention.head_count_kv"); ok {
		return n
	}
	return f.HeadCount()
}

// ChatTemplate returns tokenizer.chat_template, or "".
func (f *File) ChatTemplate() string {
	s, _ := f.String("tokenizer.chat_template")
	return s
}

// ParameterCount returns the number of parameters: the sum of the elements
// of all tensors.
func (f *File) ParameterCount() uint64 {
	var n uint64
	for _, t := range f.Tensors {
		n += t.Elements()
	}
	return n
}

// TensorBytes returns the total size of all tensor data (bytes, unpadded).
func (f *File) TensorBytes() int64 {
	var n int64
	for _, t := range f.Tensors {
		n += t.Size()
	}
	return n
}

// FileType returns general.file_type as a number, and false when absent.
func (f *File) FileType() (FileType, bool) {
	n, ok := f.Uint("general.file_type")
	if !ok || n > math.MaxUint32 {
		return 0, false
	}
	return FileType(n), true
}

// Quantization returns the name of the file's quantization as Ollama and
// llama.cpp show it ("F16", "Q4_K_M", "Q8_0"): the name of general.file_type
// when present and known, else the type holding most bytes among tensors of
// two or more dimensions, else "unknown".
func (f *File) Quantization() string {
	if ft, ok := f.FileType(); ok {
		if s, ok := fileTypeNames[ft]; ok {
			return s
		}
	}
	bytes := map[TensorType]int64{}
	for _, t := range f.Tensors {
		if len(t.Dims) >= 2 {
			bytes[t.Type] += t.Size()
		}
	}
	best, bestN := TensorType(0), int64(-1)
	for t, n := range bytes {
		if n > bestN || (n == bestN && t < best) {
			best, bestN = t, n
		}
	}
	if bestN < 0 {
		return "unknown"
	}
	return best.String()
}

// FileType is llama.cpp's general.file_type (enum llama_ftype).
type FileType uint32

// String returns the name of ft ("Q4_K_M"), or "file_type(N)".
func (ft FileType) String() string {
	if s, ok := fileTypeNames[ft]; ok {
		return s
	}
	return "file_type(" + strconv.FormatUint(uint64(ft), 10) + ")"
}

// File types of llama.cpp (llama_ftype) that converters write.
const (
	FileTypeF32  FileType = 0
	FileTypeF16  FileType = 1
	FileTypeQ8_0 FileType = 7
	FileTypeBF16 FileType = 32
)

var fileTypeNames = map[FileType]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
	22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
	28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
	37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 41: "Q2_0",
}

// ParseFileType returns the file type named name ("Q4_K_M", "f16"; case-insensitive).
func ParseFileType(name string) (FileType, bool) {
	for ft, s := range fileTypeNames {
		if equalFold(s, name) {
			return ft, true
		}
	}
	return 0, false
}

// HumanParams formats a parameter count as Ollama shows it: "8B", "7.2B",
// "494.03M", "125K", "999".
func HumanParams(n uint64) string {
	switch {
	case n >= 1e9:
		x := float64(n) / 1e9
		if x == math.Floor(x) {
			return fmt.Sprintf("%.0fB", x)
		}
		return fmt.Sprintf("%.1fB", x)
	case n >= 1e6:
		x := float64(n) / 1e6
		if x == math.Floor(x) {
			return fmt.Sprintf("%.0fM", x)
		}
		return fmt.Sprintf("%.2fM", x)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return strconv.FormatUint(n, 10)
}
