package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/oci/transfer"
)

// BuildCmd builds a model from a Modelfile, tags it with one or more
// references and optionally pushes it: `docker build` for models, for CI.
type BuildCmd struct {
	Tags     []string          `short:"t" name:"tag" required:"" help:"Reference to tag the model with (repeatable): ghcr.io/org/model:1.0, ns/model:tag." placeholder:"REF"`
	File     string            `short:"f" name:"file" help:"Modelfile (default CONTEXT_DIR/Modelfile)." placeholder:"PATH"`
	Push     bool              `name:"push" help:"Push every tag to its registry after building."`
	Format   string            `name:"format" default:"modelpack" enum:"modelpack,ollama,docker" help:"Manifest format: modelpack (CNCF ModelPack), ollama or docker (Docker Model Runner)."`
	Labels   map[string]string `name:"label" help:"Manifest annotation KEY=VALUE (repeatable)." placeholder:"KEY=VALUE"`
	Quantize string            `short:"q" name:"quantize" help:"Quantize F32/F16/BF16 weights to TYPE (q4_K_M, q8_0, ...)." placeholder:"TYPE"`
	Created  string            `name:"created" env:"SOURCE_DATE_EPOCH" help:"Creation time written in the manifest: now, Unix seconds or RFC 3339; default a fixed time so builds are reproducible." placeholder:"TIME"`
	Insecure bool              `name:"insecure" help:"Allow plain HTTP and self-signed TLS for non-loopback registries when pushing."`
	Link     bool              `name:"link" env:"OLM_LINK_FILES" help:"Hardlink GGUF files into the store when the file system cannot reflink (never edit them afterwards)."`
	Context  string            `arg:"" optional:"" default:"." help:"Build context: the folder relative paths in the Modelfile resolve against." placeholder:"CONTEXT_DIR"`
}

// Run builds, tags and pushes. Progress goes to stderr; stdout gets one
// line per tag, "REF@sha256:…", for scripts.
func (c *BuildCmd) Run(ctx context.Context, g *Globals) error {
	dir, err := filepath.Abs(c.Context)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return exitError{2, fmt.Errorf("build context %s is not a folder", c.Context)}
	}
	file := c.File
	if file == "" {
		file = filepath.Join(dir, "Modelfile")
	}
	mf, _, err := readModelfile(file)
	if err != nil {
		return err
	}
	var created = sourceDateEpoch()
	if c.Created != "" {
		if created, err = parseCreated(c.Created); err != nil {
			return err
		}
	}
	b, err := newBuilder(g)
	if err != nil {
		return err
	}
	b.LinkFiles = c.Link
	b.Puller = registryPuller{store: b.Store.(*blobstore.Store), insecure: c.Insecure}
	home, _ := os.UserHomeDir()
	p := newStatusPrinter(os.Stderr)
	res, err := b.Build(ctx, build.Request{
		Modelfile: mf,
		Dir:       dir,
		Home:      home,
		Tags:      c.Tags,
		Quantize:  c.Quantize,
		Format:    oci.Format(c.Format),
		Created:   created,
		Labels:    c.Labels,
	}, p.event)
	if err != nil {
		return buildError(err)
	}
	if c.Push {
		for _, t := range res.Tags {
			ref, err := b.Naming.Parse(t)
			if err != nil {
				return err
			}
			if err := pushBuilt(ctx, g, ref, c.Insecure, p); err != nil {
				return fmt.Errorf("push %s: %w", t, err)
			}
		}
	}
	for _, t := range res.Tags {
		fmt.Println(strings.SplitN(t, "@", 2)[0] + "@" + res.Manifest.Digest.String())
	}
	return nil
}

// registryOptions returns how to reach registries: credentials from the
// Docker config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json).
func registryOptions(insecure bool) (transfer.RemoteOptions, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".docker")
	}
	creds, err := transfer.DockerCredentials(filepath.Join(dir, "config.json"))
	if err != nil {
		return transfer.RemoteOptions{}, err
	}
	return transfer.RemoteOptions{Insecure: insecure, Credentials: creds, UserAgent: "olm/" + version}, nil
}

// transferPrinter turns transfer events into build events.
func transferPrinter(status string, fn func(build.Event)) func(transfer.Event) {
	return func(e transfer.Event) {
		switch e.Status {
		case transfer.StatusExists, transfer.StatusMounted:
			fn(build.Event{Status: status + " " + e.Digest.String() + ": " + string(e.Status)})
		case transfer.StatusProgress, transfer.StatusDone, transfer.StatusResumed:
			fn(build.Event{Status: status + " " + e.Digest.String(), Digest: e.Digest.String(), Total: e.Total, Completed: e.Completed})
		}
	}
}

// pushBuilt pushes the stored model tagged ref to its registry.
func pushBuilt(ctx context.Context, g *Globals, ref oci.Reference, insecure bool, p *statusPrinter) error {
	s, _, err := openLocalStore(g)
	if err != nil {
		return err
	}
	opts, err := registryOptions(insecure)
	if err != nil {
		return err
	}
	repo, err := transfer.NewRepository(ctx, ref, opts)
	if err != nil {
		return err
	}
	p.event(build.Event{Status: "pushing " + ref.String()})
	_, err = transfer.Copy(ctx, s, ref.String(), repo, ref.TagOrDigest(), transfer.Options{Progress: transferPrinter("pushing", p.event)})
	if err != nil {
		return err
	}
	p.event(build.Event{Status: "pushed " + ref.String()})
	return nil
}

// registryPuller pulls FROM references into the local store.
type registryPuller struct {
	store    *blobstore.Store
	insecure bool
}

// Pull implements build.Puller.
func (r registryPuller) Pull(ctx context.Context, ref oci.Reference, progress func(build.Event)) error {
	opts, err := registryOptions(r.insecure)
	if err != nil {
		return err
	}
	repo, err := transfer.NewRepository(ctx, ref, opts)
	if err != nil {
		return err
	}
	_, err = transfer.Copy(ctx, repo, ref.TagOrDigest(), r.store, ref.String(), transfer.Options{Progress: transferPrinter("pulling", progress)})
	return err
}
