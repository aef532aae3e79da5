package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/olmhq/olm/convert"
	"github.com/olmhq/olm/internal/gguf"
)

// ConvertCmd converts a Hugging Face safetensors checkpoint directory into
// a GGUF file, locally, without a server.
type ConvertCmd struct {
	Dir    string `arg:"" type:"existingdir" help:"Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json or tokenizer.model)."`
	Output string `short:"o" help:"GGUF file to write; default <directory name>-<type>.gguf in the current folder." placeholder:"FILE"`
	DType  string `name:"dtype" default:"auto" enum:"auto,f16,bf16,f32" help:"Type of the weight matrices: auto keeps F16/BF16 checkpoints as they are (F32 becomes F16); norms are always F32."`
	Name   string `help:"general.name written into the GGUF; default the directory name."`
	Check  bool   `help:"Only detect the architecture, tokenizer and size, and print them."`
}

// Run converts c.Dir.
func (c *ConvertCmd) Run(ctx context.Context) error {
	info, err := convert.Detect(c.Dir)
	if err != nil {
		return err
	}
	opts := convert.Options{DType: c.DType, Name: c.Name}
	if strings.EqualFold(c.DType, "auto") {
		opts.DType = ""
	}
	fileType := info.FileType
	if opts.DType != "" {
		fileType = strings.ToUpper(opts.DType)
	}
	fmt.Fprintf(os.Stderr, "%s (%s): %s parameters, %d tensors from %d file(s), %s tokenizer, %s -> %s\n",
		info.HFArchitecture, info.Architecture, gguf.HumanParams(info.Params), info.Tensors, len(info.Files),
		info.Tokenizer, info.DType, fileType)
	if c.Check {
		return nil
	}
	out := c.Output
	if out == "" {
		out = filepath.Base(filepath.Clean(c.Dir)) + "-" + fileType + ".gguf"
	}
	start := time.Now()
	last := -1
	opts.Progress = func(done, total int64) {
		if total <= 0 {
			return
		}
		if pct := int(done * 100 / total); pct/10 != last/10 {
			last = pct
			fmt.Fprintf(os.Stderr, "\rconverting %3d%%", pct)
		}
	}
	if err := convert.ConvertFile(ctx, c.Dir, out, opts); err != nil {
		fmt.Fprintln(os.Stderr)
		return err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\rwrote %s (%.1f MB) in %s\n", out, float64(fi.Size())/1e6, time.Since(start).Round(time.Millisecond))
	return nil
}
