package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/olmhq/olm/oci"
)

// InspectCmd prints a model's manifest, config and detected format as JSON.
type InspectCmd struct {
	Name     string `arg:"" help:"Local model, or registry://REF to inspect one in its registry without pulling."`
	Insecure bool   `name:"insecure" help:"Allow plain HTTP and self-signed TLS for registries not on loopback."`
}

// inspectOutput is what `olm inspect` prints.
type inspectOutput struct {
	Name      string             `json:"name"`
	Digest    string             `json:"digest"`
	MediaType string             `json:"mediaType"`
	Size      int64              `json:"size"`
	Format    string             `json:"format"`
	Manifest  json.RawMessage    `json:"manifest"`
	Config    json.RawMessage    `json:"config,omitempty"`
	Model     *inspectModel      `json:"model,omitempty"`
	Error     string             `json:"error,omitempty"`
	Root      ocispec.Descriptor `json:"-"`
}

// inspectModel is the format-independent view of the model.
type inspectModel struct {
	Config  oci.Config  `json:"config"`
	Weights []oci.Layer `json:"weights"`
	Layers  []oci.Layer `json:"layers"`
}

// Run prints the JSON.
func (c *InspectCmd) Run(ctx context.Context, g *Globals) error {
	var (
		fetch content.Fetcher
		out   inspectOutput
		err   error
		man   []byte
	)
	if name, ok := strings.CutPrefix(c.Name, registryPrefix); ok {
		ref, repo, err := remoteRepo(ctx, name, c.Insecure)
		if err != nil {
			return err
		}
		out.Name = ref.String()
		desc, rc, err := repo.FetchReference(ctx, ref.TagOrDigest())
		if err != nil {
			return classify(ctx, err)
		}
		man, err = content.ReadAll(rc, desc)
		rc.Close()
		if err != nil {
			return classify(ctx, err)
		}
		out.Root, fetch = desc, repo
	} else {
		s, _, err := openLocalStore(g)
		if err != nil {
			return err
		}
		ref, key, err := localModel(ctx, s, c.Name)
		if err != nil {
			return err
		}
		out.Name = ref.String()
		out.Root, man, err = s.Manifest(ctx, key)
		if err != nil {
			return err
		}
		fetch = s
	}
	out.Digest, out.MediaType, out.Size, out.Manifest = out.Root.Digest.String(), out.Root.MediaType, out.Root.Size, man
	f, err := oci.DetectFormat(man, out.Root.MediaType)
	if err != nil {
		out.Error = err.Error()
	}
	out.Format = string(f)
	var probe struct {
		Config ocispec.Descriptor `json:"config"`
	}
	if json.Unmarshal(man, &probe) == nil && probe.Config.Digest != "" && probe.Config.Size <= oci.MaxConfigSize {
		if b, err := content.FetchAll(ctx, fetch, probe.Config); err == nil && json.Valid(b) {
			out.Config = b
		}
	}
	if err == nil {
		if m, perr := oci.ParseModel(ctx, man, oci.FetcherFor(fetch)); perr == nil {
			out.Model = &inspectModel{Config: m.Config, Weights: m.Weights}
			for _, l := range m.Layers() {
				l.Data = nil
				out.Model.Layers = append(out.Model.Layers, l)
			}
			out.Model.Weights = nil
			for _, l := range m.Weights {
				l.Data = nil
				out.Model.Weights = append(out.Model.Weights, l)
			}
		} else {
			out.Error = perr.Error()
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
