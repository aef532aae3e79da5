package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
)

// ShowCmd prints what a local model is: details read from its GGUF, and its
// Modelfile parts.
type ShowCmd struct {
	Name       string `arg:"" help:"Model to show."`
	Modelfile  bool   `name:"modelfile" help:"Print a Modelfile that rebuilds the model."`
	Parameters bool   `name:"parameters" help:"Print the default parameters."`
	Template   bool   `name:"template" help:"Print the prompt template."`
	System     bool   `name:"system" help:"Print the system prompt."`
	License    bool   `name:"license" help:"Print the license texts."`
	Verbose    bool   `short:"v" name:"verbose" help:"Also print the GGUF metadata."`
}

// Run prints the model's information to stdout.
func (c *ShowCmd) Run(ctx context.Context, g *Globals) error {
	s, _, err := openLocalStore(g)
	if err != nil {
		return err
	}
	naming := modelNaming()
	ref, err := naming.Parse(c.Name)
	if err != nil {
		return exitError{2, err}
	}
	key := ref.String()
	if ref.Digest != "" {
		key = ref.Digest.String()
	}
	info, err := build.Show(ctx, s, key, build.ShowOptions{Verbose: c.Verbose})
	if errors.Is(err, blobstore.ErrNotFound) {
		return exitError{2, fmt.Errorf("model %s not found; pull or create it first", c.Name)}
	}
	if err != nil {
		return err
	}
	return printShow(os.Stdout, c, info, naming.Short(ref))
}

func printShow(w io.Writer, c *ShowCmd, info *build.Info, name string) error {
	switch {
	case c.Modelfile:
		text, err := info.Modelfile(name)
		if err != nil {
			return err
		}
		fmt.Fprint(w, text)
		return nil
	case c.Parameters:
		fmt.Fprint(w, build.FormatParameters(info.Parameters))
		return nil
	case c.Template:
		t := info.Template
		if t == "" {
			t = info.ChatTemplate
		}
		fmt.Fprintln(w, trimLines(t))
		return nil
	case c.System:
		fmt.Fprintln(w, trimLines(info.System))
		return nil
	case c.License:
		fmt.Fprintln(w, trimLines(strings.Join(info.Licenses, "\n\n")))
		return nil
	}
	d := info.Details
	section := func(title string) { fmt.Fprintf(w, "  %s\n", title) }
	row := func(k, v string) { fmt.Fprintf(w, "    %-20s%s\n", k, v) }
	section("Model")
	row("architecture", d.Architecture)
	row("parameters", d.ParameterSize)
	if d.ContextLength > 0 {
		row("context length", fmt.Sprint(d.ContextLength))
	}
	if d.EmbeddingLength > 0 {
		row("embedding length", fmt.Sprint(d.EmbeddingLength))
	}
	row("quantization", d.Quantization)
	if len(info.Model.Projectors) > 0 {
		row("projectors", fmt.Sprint(len(info.Model.Projectors)))
	}
	if len(info.Model.Adapters) > 0 {
		row("adapters", fmt.Sprint(len(info.Model.Adapters)))
	}
	fmt.Fprintln(w)
	section("Capabilities")
	for _, c := range d.Capabilities {
		fmt.Fprintf(w, "    %s\n", c)
	}
	fmt.Fprintln(w)
	if len(info.Parameters) > 0 {
		section("Parameters")
		for _, l := range strings.Split(trimLines(build.FormatParameters(info.Parameters)), "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
		fmt.Fprintln(w)
	}
	if info.System != "" {
		section("System")
		for _, l := range strings.Split(trimLines(info.System), "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
		fmt.Fprintln(w)
	}
	if len(info.Licenses) > 0 {
		section("License")
		for _, lic := range info.Licenses {
			lines := strings.Split(trimLines(lic), "\n")
			if !c.Verbose && len(lines) > 2 {
				lines = append(lines[:2], "...")
			}
			for _, l := range lines {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
		fmt.Fprintln(w)
	}
	if c.Verbose {
		section("Metadata")
		keys := make([]string, 0, len(info.ModelInfo))
		for k := range info.ModelInfo {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := fmt.Sprint(info.ModelInfo[k])
			if len(v) > 120 {
				v = v[:117] + "..."
			}
			row(k, v)
		}
		fmt.Fprintln(w)
	}
	return nil
}
