// Command olm pulls, pushes, builds and runs LLMs as OCI artifacts, and
// serves an Ollama- and OpenAI-compatible REST API.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

// CLI is olm's command line. Each command lives in a file of its own.
type CLI struct {
	Globals

	Version        VersionCmd        `cmd:"" help:"Print the olm version."`
	Runner         RunnerCmd         `cmd:"" hidden:"" passthrough:"" help:"Serve one model to the olm server (internal)."`
	QuantizeWorker QuantizeWorkerCmd `cmd:"" name:"quantize-worker" hidden:"" help:"Quantize a GGUF with llama.cpp (internal)."`
	Create         CreateCmd         `cmd:"" help:"Create a model from a Modelfile."`
	Build          BuildCmd          `cmd:"" help:"Build a model from a Modelfile, tag it and optionally push it (for CI)."`
	Show           ShowCmd           `cmd:"" help:"Show information about a model."`
	Serve          ServeCmd          `cmd:"" help:"Start the API server (Ollama- and OpenAI-compatible)."`
	Run            RunCmd            `cmd:"" help:"Run a model: answer a prompt, or chat interactively."`
	Ps             PsCmd             `cmd:"" help:"List the models the server has loaded."`
	Stop           StopCmd           `cmd:"" help:"Unload a model from the server."`
	Pull           PullCmd           `cmd:"" help:"Pull a model from a registry into the local store."`
	Push           PushCmd           `cmd:"" help:"Push a local model to its registry."`
	Cp             CpCmd             `cmd:"" help:"Copy a model: local names, or registry://REF for registries (registry to registry without a local copy)."`
	Rm             RmCmd             `cmd:"" help:"Remove local models and free their unshared blobs."`
	Ls             LsCmd             `cmd:"" aliases:"list" help:"List local models."`
	Tag            TagCmd            `cmd:"" help:"Give a local model another name."`
	Login          LoginCmd          `cmd:"" help:"Log in to a registry (writes the Docker config file)."`
	Logout         LogoutCmd         `cmd:"" help:"Log out of a registry."`
	Inspect        InspectCmd        `cmd:"" help:"Print a model's manifest, config and detected format as JSON."`
	Save           SaveCmd           `cmd:"" help:"Save local models to an OCI image layout tarball."`
	Load           LoadCmd           `cmd:"" help:"Load models from an OCI image layout tarball."`
	Convert        ConvertCmd        `cmd:"" help:"Convert a Hugging Face safetensors directory into a GGUF file."`
	// Commands are added below, one field each.
}

// Globals are flags shared by every command.
type Globals struct {
	Home string `name:"home" env:"OLM_HOME" help:"olm's data folder (store, keys); default ~/.olm." placeholder:"DIR"`
	Host string `name:"host" env:"OLM_HOST,OLLAMA_HOST" help:"Address of the olm server (default 127.0.0.1:11434)." placeholder:"HOST:PORT"`
	// VersionFlag is `olm --version`, as `ollama --version` and `docker --version`.
	VersionFlag kong.VersionFlag `name:"version" help:"Print the olm version and exit."`
}

// exitCoder is implemented by errors that choose the process exit code.
type exitCoder interface{ ExitCode() int }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cli CLI
	k := kong.Parse(&cli, append(cliOptions(),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(&cli.Globals),
	)...)
	if err := k.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		code := 1
		var ec exitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
		stop()
		os.Exit(code)
	}
}

// cliOptions are the kong options that shape olm's command line and help
// text (help_test.go renders the help with them).
func cliOptions() []kong.Option {
	return []kong.Option{
		kong.Name("olm"),
		kong.Description("Large language models as OCI artifacts: pull, push, build, run and serve them."),
		kong.UsageOnError(),
		kong.Vars{"version": "olm version " + version},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	}
}
