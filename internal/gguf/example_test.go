package gguf_test

import (
	"bytes"
	"fmt"

	"github.com/olmhq/olm/internal/gguf"
)

// Write a GGUF with one F32 tensor to memory and read its header back.
func Example() {
	var buf bytes.Buffer
	w, err := gguf.NewWriter(&buf, gguf.Header{
		KV: []gguf.KV{
			{Key: "general.architecture", Value: gguf.String("llama")},
			{Key: "llama.context_length", Value: gguf.Uint32(4096)},
			{Key: "general.file_type", Value: gguf.Uint32(uint32(gguf.FileTypeQ8_0))},
			{Key: "tokenizer.ggml.tokens", Value: gguf.ArrayOf([]string{"<s>", "</s>", "hello"})},
		},
		Tensors: []gguf.TensorInfo{{Name: "output_norm.weight", Type: gguf.TensorF32, Dims: []uint64{4}}},
	})
	if err != nil {
		panic(err)
	}
	w.Write(make([]byte, 16)) // the tensor's data: 4 float32s
	if err := w.Close(); err != nil {
		panic(err)
	}

	f, err := gguf.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		panic(err)
	}
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	fmt.Println(f.Architecture(), f.ContextLength(), f.Quantization(), f.ParameterCount(), tokens)
	t, _ := f.Tensor("output_norm.weight")
	fmt.Println(t.Name, t.Type, t.Dims, t.Size(), "bytes at", f.DataOffset+int64(t.Offset))
	// Output:
	// llama 4096 Q8_0 4 [<s> </s> hello]
	// output_norm.weight F32 [4] 16 bytes at 288
}
