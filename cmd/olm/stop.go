package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/olmhq/olm/api"
)

// StopCmd unloads a model from the server's memory.
type StopCmd struct {
	Model string `arg:"" help:"Model to unload."`
}

// Run asks the server to unload the model now (keep_alive 0).
func (c *StopCmd) Run(ctx context.Context, g *Globals) error {
	cl, err := apiClient(g)
	if err != nil {
		return err
	}
	stream := false
	err = cl.Generate(ctx, &api.GenerateRequest{Model: c.Model, KeepAlive: api.NewDuration(0), Stream: &stream}, func(api.GenerateResponse) error { return nil })
	var se *api.StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
		return exitError{1, fmt.Errorf("model %q not found", c.Model)}
	}
	return connError(g, err)
}
