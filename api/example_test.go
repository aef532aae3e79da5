package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/olmhq/olm/api"
)

// A stand-in for `olm serve` that streams two pieces of an answer.
func fakeServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"model":"llama3.2","response":"The sky","done":false}`)
		fmt.Fprintln(w, `{"model":"llama3.2","response":" is blue.","done":false}`)
		fmt.Fprintln(w, `{"model":"llama3.2","response":"","done":true,"done_reason":"stop","eval_count":2}`)
	}))
}

func ExampleClient_Generate() {
	srv := fakeServer()
	defer srv.Close()

	base, err := api.ParseHost(srv.URL) // in a program: os.Getenv("OLM_HOST")
	if err != nil {
		panic(err)
	}
	client := api.NewClient(base, api.ClientOptions{})
	var answer strings.Builder
	err = client.Generate(context.Background(), &api.GenerateRequest{
		Model:   "llama3.2",
		Prompt:  "Why is the sky blue?",
		Options: &api.Options{Temperature: api.Ptr[float32](0)},
	}, func(r api.GenerateResponse) error {
		answer.WriteString(r.Response)
		if r.Done {
			fmt.Printf("%s (%s, %d tokens)\n", answer.String(), r.DoneReason, r.EvalCount)
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output: The sky is blue. (stop, 2 tokens)
}
