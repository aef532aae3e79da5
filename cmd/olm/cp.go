package main

import (
	"context"
	"fmt"
	"strings"

	"oras.land/oras-go/v2"

	"github.com/olmhq/olm/oci/transfer"
)

// CpCmd copies a model. A name prefixed with registry:// is a registry
// reference; other names are local models. Local to local adds a tag (as
// `ollama cp`), local to registry pushes, registry to local pulls, and
// registry to registry copies without a local copy (mounting blobs when both
// are on one registry).
type CpCmd struct {
	TransferFlags
	Src string `arg:"" help:"Source model (registry://REF for a registry)."`
	Dst string `arg:"" help:"Destination model (registry://REF for a registry)."`
}

// Run copies Src to Dst.
func (c *CpCmd) Run(ctx context.Context, g *Globals) error {
	srcRemote, dstRemote := strings.HasPrefix(c.Src, registryPrefix), strings.HasPrefix(c.Dst, registryPrefix)
	srcName, dstName := strings.TrimPrefix(c.Src, registryPrefix), strings.TrimPrefix(c.Dst, registryPrefix)
	if !srcRemote && !dstRemote {
		return (&TagCmd{Src: srcName, Dst: dstName}).Run(ctx, g)
	}
	var (
		src            oras.ReadOnlyTarget
		dst            oras.Target
		srcRef, dstRef string
	)
	if srcRemote {
		ref, repo, err := remoteRepo(ctx, srcName, c.Insecure)
		if err != nil {
			return err
		}
		src, srcRef = repo, ref.TagOrDigest()
	} else {
		s, _, err := openLocalStore(g)
		if err != nil {
			return err
		}
		_, key, err := localModel(ctx, s, srcName)
		if err != nil {
			return err
		}
		src, srcRef = s, key
	}
	if dstRemote {
		ref, repo, err := remoteRepo(ctx, dstName, c.Insecure)
		if err != nil {
			return err
		}
		if ref.Tag == "" {
			return exitError{exitUsage, fmt.Errorf("destination %s needs a tag", c.Dst)}
		}
		dst, dstRef = repo, ref.Tag
	} else {
		s, _, err := openLocalStore(g)
		if err != nil {
			return err
		}
		ref, err := modelNaming().Parse(dstName)
		if err != nil {
			return exitError{exitUsage, err}
		}
		dst, dstRef = s, ref.String()
	}
	p := newProgress("copying", c.Quiet)
	desc, err := transfer.Copy(ctx, src, srcRef, dst, dstRef, transfer.Options{Progress: p.event})
	if err != nil {
		return classify(ctx, err)
	}
	p.line("copied %s to %s (%s)", c.Src, c.Dst, desc.Digest)
	return nil
}
