package runner_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/olmhq/olm/runtime/runner"
)

// Start a runner for a GGUF file, stream a completion, and stop it.
func Example() {
	ctx := context.Background()
	p, err := runner.Start(ctx, runner.StartOptions{
		Load:   runner.LoadOptions{Model: "/models/llama.gguf", NumCtx: 4096, Parallel: 4},
		Stderr: os.Stderr, // the runner's log
	})
	if err != nil {
		log.Fatal(err) // e.g. "model runner exited unexpectedly: ... invalid magic"
	}
	defer p.Close()

	opts := runner.DefaultSampling()
	opts.NumPredict = 64
	opts.Stop = []string{"\n\n"}
	last, err := p.Client().Completion(ctx, runner.CompletionRequest{Prompt: "Why is the sky blue?", Options: &opts},
		func(ev runner.CompletionEvent) error {
			fmt.Print(ev.Content) // pieces as they are generated
			return nil
		})
	if err != nil {
		log.Fatal(err) // errors.Is(err, runner.ErrRunnerExited) if the runner died
	}
	fmt.Printf("\n%s after %d tokens (%v)\n", last.DoneReason, last.EvalCount, last.EvalDuration)
}
