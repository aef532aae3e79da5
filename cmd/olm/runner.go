package main

import (
	"context"
	"os"

	"github.com/olmhq/olm/runtime/runner/engine"
)

// RunnerCmd is the hidden `olm runner` command: the child process that the
// server starts to load one model and serve it over a unix socket (see
// package runtime/runner). Its flags are parsed by runner.ParseArgs
// (`olm runner -h` lists them).
type RunnerCmd struct {
	Args []string `arg:"" optional:"" help:"Runner flags (--model PATH --socket PATH ...)."`
}

// Run loads the model and serves until the process is signalled.
func (c *RunnerCmd) Run(ctx context.Context) error {
	return engine.Main(ctx, c.Args, os.Stderr)
}
