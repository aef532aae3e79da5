package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/olmhq/olm/quantize"
	"github.com/olmhq/olm/runtime/llama"
)

// QuantizeWorkerCmd is the child process the quantize package runs, so a
// crash inside llama.cpp's quantizer cannot take the server or CLI down.
// Its arguments are quantize.WorkerArgs.
type QuantizeWorkerCmd struct {
	Type    string `name:"type" required:"" help:"Target type, e.g. q4_K_M."`
	Threads int    `name:"threads" help:"Threads; 0 uses all cores."`
	In      string `arg:"" help:"Input GGUF (F32, F16 or BF16)."`
	Out     string `arg:"" help:"Output GGUF."`
}

// exitError is an error that sets the process exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }
func (e exitError) ExitCode() int { return e.code }

// Run quantizes In to Out with llama.cpp.
func (c *QuantizeWorkerCmd) Run(ctx context.Context) error {
	err := llama.Quantize(ctx, c.In, c.Out, llama.QuantizeParams{FileType: c.Type, Threads: c.Threads})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, llama.ErrUnknownFileType):
		return exitError{quantize.ExitUnknownType, err}
	case errors.Is(err, llama.ErrAlreadyQuantized):
		return exitError{quantize.ExitAlreadyQuantized, err}
	}
	return err
}

// newQuantizer returns a Quantizer that runs this executable's
// quantize-worker command.
func newQuantizer() (*quantize.Quantizer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the olm executable for the quantize worker: %w", err)
	}
	return &quantize.Quantizer{Command: []string{exe, "quantize-worker"}, Types: llama.FileTypes()}, nil
}
