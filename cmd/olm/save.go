package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/olmhq/olm/oci/transfer"
)

// SaveCmd writes local models to an OCI image layout tarball.
type SaveCmd struct {
	Output string   `short:"o" name:"output" required:"" help:"Tarball to write (- for stdout)." type:"path"`
	Names  []string `arg:"" name:"model" help:"Models to save."`
	Quiet  bool     `short:"q" name:"quiet" help:"Print nothing but errors."`
}

// Run writes the tarball atomically (temporary file, then rename).
func (c *SaveCmd) Run(ctx context.Context, g *Globals) error {
	s, _, err := openLocalStore(g)
	if err != nil {
		return err
	}
	var keys []string
	for _, n := range c.Names {
		_, key, err := localModel(ctx, s, n)
		if err != nil {
			return err
		}
		keys = append(keys, key)
	}
	p := newProgress("saving", c.Quiet || c.Output == "-")
	opts := transfer.Options{Progress: p.event}
	if c.Output == "-" {
		return classify(ctx, transfer.Save(ctx, s, keys, os.Stdout, opts))
	}
	f, err := os.CreateTemp(filepath.Dir(c.Output), "."+filepath.Base(c.Output)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := transfer.Save(ctx, s, keys, f, opts); err != nil {
		f.Close()
		return classify(ctx, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), c.Output); err != nil {
		return err
	}
	p.line("saved %d model(s) to %s", len(keys), c.Output)
	return nil
}

// LoadCmd reads models from an OCI image layout tarball into the store.
type LoadCmd struct {
	Input string `short:"i" name:"input" required:"" help:"Tarball to read (- for stdin)." type:"path"`
	Quiet bool   `short:"q" name:"quiet" help:"Print nothing but errors."`
}

// Run loads the tarball, verifying every blob.
func (c *LoadCmd) Run(ctx context.Context, g *Globals) error {
	s, _, err := openLocalStore(g)
	if err != nil {
		return err
	}
	in := os.Stdin
	if c.Input != "-" {
		f, err := os.Open(c.Input)
		if err != nil {
			return exitError{exitUsage, err}
		}
		defer f.Close()
		in = f
	}
	naming := modelNaming()
	p := newProgress("loading", c.Quiet)
	tags, err := transfer.Load(ctx, in, s, transfer.LoadOptions{Progress: p.event, Name: func(ref string) (string, error) {
		r, err := naming.Parse(ref)
		if err != nil {
			return "", fmt.Errorf("%w: tag %q in the archive is not a model name", transfer.ErrArchive, ref)
		}
		return r.String(), nil
	}})
	if err != nil {
		return classify(ctx, err)
	}
	for _, t := range tags {
		if !c.Quiet {
			fmt.Printf("loaded %s\n", t)
		}
	}
	return nil
}
