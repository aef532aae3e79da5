package llama_test

import (
	"fmt"

	"github.com/olmhq/olm/runtime/llama"
)

func ExampleNormalize() {
	v := llama.Normalize([]float32{3, 4})
	fmt.Println(v)
	// Output: [0.6 0.8]
}

func ExampleParseFileType() {
	ft, err := llama.ParseFileType("q4_K_M")
	fmt.Println(ft, err)
	_, err = llama.ParseFileType("q9")
	fmt.Println(err != nil)
	// Output:
	// 15 <nil>
	// true
}
