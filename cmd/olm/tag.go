package main

import (
	"context"
	"fmt"
)

// TagCmd gives a local model another name (`ollama cp`).
type TagCmd struct {
	Src string `arg:"" help:"Existing local model."`
	Dst string `arg:"" help:"New name."`
}

// Run tags Src's manifest as Dst.
func (c *TagCmd) Run(ctx context.Context, g *Globals) error {
	s, _, err := openLocalStore(g)
	if err != nil {
		return err
	}
	_, key, err := localModel(ctx, s, c.Src)
	if err != nil {
		return err
	}
	dst, err := modelNaming().Parse(c.Dst)
	if err != nil {
		return exitError{exitUsage, err}
	}
	if dst.Tag == "" {
		return exitError{exitUsage, fmt.Errorf("new name %s needs a tag, not only a digest", c.Dst)}
	}
	desc, err := s.Resolve(ctx, key)
	if err != nil {
		return err
	}
	if err := s.Tag(ctx, desc, dst.String()); err != nil {
		return classify(ctx, err)
	}
	fmt.Printf("copied '%s' to '%s'\n", c.Src, c.Dst)
	return nil
}
