package modelfile_test

import (
	"fmt"
	"os"

	"github.com/olmhq/olm/modelfile"
)

func Example() {
	m, err := modelfile.ParseString(`from llama3.2
# set the temperature to 1
parameter temperature 1
parameter stop "<|eot_id|>"
system """
You are Mario from Super Mario Bros.
"""`)
	if err != nil {
		fmt.Println(err)
		return
	}
	params, _ := m.Parameters()
	fmt.Println(m.Froms()[0], params["temperature"], params["stop"])
	modelfile.Format(os.Stdout, m)
	// Output:
	// llama3.2 1 [<|eot_id|>]
	// FROM llama3.2
	// PARAMETER temperature 1
	// PARAMETER stop "<|eot_id|>"
	// SYSTEM """
	// You are Mario from Super Mario Bros.
	// """
}

func ExampleParseString_error() {
	_, err := modelfile.ParseString("FROM llama3.2\nPARAMETER num_ctx lots\n")
	fmt.Println(err)
	// Output:
	// 2:19: parameter num_ctx must be a integer, got "lots"
}
