package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
)

// RmCmd removes local models and the blobs no other model uses.
type RmCmd struct {
	Names []string `arg:"" name:"model" help:"Models to remove."`
	Quiet bool     `short:"q" name:"quiet" help:"Print nothing but errors."`
}

// Run untags each model, then collects garbage once.
func (c *RmCmd) Run(ctx context.Context, g *Globals) error {
	s, _, err := openLocalStore(g)
	if err != nil {
		return err
	}
	var failed error
	for _, n := range c.Names {
		ref, err := modelNaming().Parse(n)
		if err != nil {
			failed = exitError{exitUsage, err}
			continue
		}
		if err := s.Untag(ctx, ref.String()); err != nil {
			if errors.Is(err, blobstore.ErrNotFound) {
				err = exitError{exitUsage, fmt.Errorf("model '%s' not found", n)}
			}
			failed = err
			continue
		}
		if !c.Quiet {
			fmt.Printf("deleted '%s'\n", n)
		}
	}
	st, err := s.GC(ctx)
	if err != nil {
		return err
	}
	// GGUF files unpacked from archived layers go with their archive blobs.
	if _, _, err := build.PruneUnpacked(ctx, s); err != nil {
		return err
	}
	if !c.Quiet && st.Removed > 0 {
		fmt.Printf("freed %s (%d blobs)\n", humanSize(st.Freed), st.Removed)
	}
	return failed
}
