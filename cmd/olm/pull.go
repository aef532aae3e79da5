package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/olmhq/olm/oci/transfer"
)

// PullCmd downloads a model from its registry into the local store.
type PullCmd struct {
	TransferFlags
	Name  string `arg:"" help:"Model to pull: a short name (llama3.2, ns/model:tag) or a full reference (ghcr.io/org/model:tag, …@sha256:…)."`
	JSON  bool   `name:"json" help:"Print the result (name, digest) as JSON on stdout."`
	Parts int    `name:"parts" env:"OLM_PULL_PARTS" help:"Ranged GETs at once for a blob of 128 MiB or more (default 4; 1 streams it)."`
}

// Run pulls the model; an up-to-date model costs one manifest request.
func (c *PullCmd) Run(ctx context.Context, g *Globals) error {
	s, _, err := openLocalStore(g)
	if err != nil {
		return err
	}
	ref, repo, err := remoteRepo(ctx, c.Name, c.Insecure)
	if err != nil {
		return err
	}
	p := newProgress("pulling", c.Quiet || c.JSON)
	p.line("pulling manifest %s", ref)
	desc, err := transfer.Copy(ctx, repo, ref.TagOrDigest(), s, ref.String(), transfer.Options{Progress: p.event, Parts: c.Parts})
	if err != nil {
		return explainTransfer(classify(ctx, err), ref)
	}
	if c.JSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"name": ref.String(), "digest": desc.Digest, "mediaType": desc.MediaType, "size": desc.Size})
	}
	p.line("verified and tagged %s (%s)", modelNaming().Short(ref), desc.Digest)
	return nil
}
