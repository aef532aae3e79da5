package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/modelfile"
)

// RunCmd runs a model: one prompt from the arguments or stdin, or an
// interactive chat.
type RunCmd struct {
	Model     string   `arg:"" help:"Model to run."`
	Prompt    []string `arg:"" optional:"" help:"Prompt; without one (and with stdin a terminal) olm starts a chat."`
	Format    string   `name:"format" help:"Response format: json." placeholder:"json"`
	KeepAlive string   `name:"keepalive" help:"How long the model stays loaded after this (e.g. 5m, 1h, 0)." placeholder:"DURATION"`
	Verbose   bool     `name:"verbose" help:"Print timings (tokens/s) after each response."`
	Think     *bool    `name:"think" negatable:"" help:"Turn the model's reasoning on or off (thinking models)."`
	Insecure  bool     `name:"insecure" help:"Allow plain HTTP and self-signed TLS when the model has to be pulled."`
}

// runSession is the state of one olm run.
type runSession struct {
	c        *RunCmd
	cl       *api.Client
	out      io.Writer
	errw     io.Writer
	ka       *api.Duration
	format   json.RawMessage
	opts     api.Options
	system   string
	messages []api.Message
	// vision: the model takes images, so paths of image files in a prompt
	// are sent as images (as in Ollama).
	vision bool
	// interrupts delivers Ctrl-C (SIGINT) in the chat: it stops the answer
	// being written, or at the prompt says how to leave. Nil: none.
	interrupts <-chan os.Signal
}

// Run implements `olm run`.
func (c *RunCmd) Run(ctx context.Context, g *Globals) error {
	cl, err := apiClient(g)
	if err != nil {
		return err
	}
	s := &runSession{c: c, cl: cl, out: os.Stdout, errw: os.Stderr}
	switch c.Format {
	case "":
	case "json":
		s.format = json.RawMessage(`"json"`)
	default:
		return exitError{2, fmt.Errorf("--format %q: only json is supported", c.Format)}
	}
	if c.KeepAlive != "" {
		d, err := api.ParseDuration(c.KeepAlive)
		if err != nil {
			return exitError{2, fmt.Errorf("--keepalive: %w", err)}
		}
		s.ka = api.NewDuration(d)
	}
	if err := s.ensureModel(ctx); err != nil {
		return interrupted(ctx, connError(g, err))
	}
	prompt := strings.Join(c.Prompt, " ")
	stdinTTY := term.IsTerminal(int(os.Stdin.Fd()))
	if !stdinTTY {
		in, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		if text := strings.TrimSpace(string(in)); text != "" {
			if prompt != "" {
				prompt += "\n\n"
			}
			prompt += text
		}
	}
	if prompt != "" || !stdinTTY {
		return interrupted(ctx, connError(g, s.generate(ctx, prompt)))
	}
	// In the chat Ctrl-C stops an answer (as in Ollama) instead of ending
	// olm; SIGTERM still ends it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	s.interrupts = sigs
	rctx, stop := signal.NotifyContext(context.WithoutCancel(ctx), syscall.SIGTERM)
	defer stop()
	return connError(g, s.repl(rctx, os.Stdin))
}

// errLoadInterrupted ends olm run when Ctrl-C comes while the chat loads
// the model (exit code 130).
var errLoadInterrupted = errors.New("interrupted while loading the model")

// interrupted gives err exit code 130 when ctx ended (Ctrl-C, SIGTERM).
func interrupted(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return exitError{exitInterrupted, fmt.Errorf("interrupted: %w", err)}
	}
	return err
}

// ensureModel checks the model exists on the server and pulls it if not.
func (s *runSession) ensureModel(ctx context.Context) error {
	info, err := s.cl.Show(ctx, &api.ShowRequest{Model: s.c.Model})
	if err == nil {
		s.vision = slices.Contains(info.Capabilities, "vision")
	}
	var se *api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		return err
	}
	fmt.Fprintf(s.errw, "pulling %s\n", s.c.Model)
	last := ""
	err = s.cl.Pull(ctx, &api.PullRequest{Model: s.c.Model, Insecure: s.c.Insecure}, func(p api.ProgressResponse) error {
		line := p.Status
		if p.Total > 0 {
			line = fmt.Sprintf("%s %3d%%", p.Status, p.Completed*100/p.Total)
		}
		if line != last {
			fmt.Fprintln(s.errw, line)
			last = line
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s is not a local model, and pulling it failed: %w", s.c.Model, err)
	}
	if err == nil {
		if info, err := s.cl.Show(ctx, &api.ShowRequest{Model: s.c.Model}); err == nil {
			s.vision = slices.Contains(info.Capabilities, "vision")
		}
	}
	return err
}

func (s *runSession) think() *api.ThinkValue {
	if s.c.Think == nil {
		return nil
	}
	return &api.ThinkValue{Value: *s.c.Think}
}

// generate answers one prompt with /api/generate.
func (s *runSession) generate(ctx context.Context, prompt string) error {
	req := &api.GenerateRequest{Model: s.c.Model, Prompt: prompt, Format: s.format, KeepAlive: s.ka, Think: s.think()}
	if s.vision {
		var err error
		if req.Prompt, req.Images, err = s.extractImages(prompt); err != nil {
			return err
		}
	}
	if !s.opts.IsZero() {
		o := s.opts
		req.Options = &o
	}
	if s.system != "" {
		req.System = s.system
	}
	var final api.GenerateResponse
	err := s.cl.Generate(ctx, req, func(r api.GenerateResponse) error {
		fmt.Fprint(s.out, r.Response)
		if r.Done {
			final = r
		}
		return nil
	})
	if err != nil {
		return err
	}
	if prompt != "" {
		fmt.Fprintln(s.out)
	}
	if s.c.Verbose {
		printStats(s.errw, final.Metrics)
	}
	return nil
}

// printStats prints Ollama's --verbose timing block.
func printStats(w io.Writer, m api.Metrics) {
	rate := func(n int, d time.Duration) string {
		if d <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f tokens/s", float64(n)/d.Seconds())
	}
	fmt.Fprintf(w, "total duration:       %v\n", m.TotalDuration)
	fmt.Fprintf(w, "load duration:        %v\n", m.LoadDuration)
	fmt.Fprintf(w, "prompt eval count:    %d token(s)\n", m.PromptEvalCount)
	fmt.Fprintf(w, "prompt eval duration: %v\n", m.PromptEvalDuration)
	fmt.Fprintf(w, "prompt eval rate:     %s\n", rate(m.PromptEvalCount, m.PromptEvalDuration))
	fmt.Fprintf(w, "eval count:           %d token(s)\n", m.EvalCount)
	fmt.Fprintf(w, "eval duration:        %v\n", m.EvalDuration)
	fmt.Fprintf(w, "eval rate:            %s\n", rate(m.EvalCount, m.EvalDuration))
}

const replHelp = `Available commands:
  /set parameter NAME VALUE   Set a parameter (temperature, num_ctx, ...);
                              /set parameter stop A B ... sets the stop strings
  /set system TEXT            Set the system message ("""...""" for several lines)
  /set format json|noformat   Answer in JSON, or not
  /set think|nothink          Turn the model's reasoning on or off
  /set verbose|quiet          Print timings after each answer, or not
  /show info|parameters|system|template|modelfile|license
                              Show information about the model
  /load MODEL                 Chat with another model (the conversation restarts)
  /save MODEL                 Save this session (system, parameters, messages)
                              as a new model
  /clear                      Clear the conversation
  /bye                        Exit
  /?, /help                   This help

Use """ to begin and end a multi-line message.
`

// visionHelp is added to the help for models that take images.
const visionHelp = "Use /path/to/file to include .jpg, .png, or .webp images.\n"

// repl runs the interactive chat, reading lines from in.
func (s *runSession) repl(ctx context.Context, in io.Reader) error {
	// Load the model first so the first answer does not wait for it.
	if err := s.load(ctx); err != nil {
		return err
	}
	// Lines are read in a goroutine so that Ctrl-C (ctx) ends the chat at
	// the prompt too, not only during an answer.
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
		close(lines)
	}()
	var multi *strings.Builder
	multiSystem := false // the multi-line text is a /set system message
	for {
		if multi != nil {
			fmt.Fprint(s.out, "... ")
		} else {
			fmt.Fprint(s.out, ">>> ")
		}
		var line string
		select {
		case <-ctx.Done():
			fmt.Fprintln(s.out)
			return nil
		case <-s.interrupts:
			fmt.Fprintln(s.out, "\nUse Ctrl + d or /bye to exit.")
			multi, multiSystem = nil, false
			continue
		case l, ok := <-lines:
			if !ok {
				fmt.Fprintln(s.out)
				return <-readErr
			}
			line = l
		}
		if multi != nil {
			if before, ok := strings.CutSuffix(line, `"""`); ok {
				multi.WriteString(before)
				text := multi.String()
				multi = nil
				if multiSystem {
					multiSystem = false
					s.system = strings.TrimSpace(text)
					fmt.Fprintln(s.out, "Set system message.")
					continue
				}
				if err := s.chat(ctx, text); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					fmt.Fprintln(s.errw, "Error:", err)
				}
				continue
			}
			multi.WriteString(line + "\n")
			continue
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(trimmed, `"""`):
			rest := strings.TrimPrefix(trimmed, `"""`)
			if body, ok := strings.CutSuffix(rest, `"""`); ok && rest != "" {
				if err := s.chat(ctx, body); err != nil {
					fmt.Fprintln(s.errw, "Error:", err)
				}
				continue
			}
			multi = &strings.Builder{}
			if rest != "" {
				multi.WriteString(rest + "\n")
			}
			continue
		case trimmed == "/bye" || trimmed == "/exit":
			return nil
		case isMultiSystem(trimmed):
			// /set system """ begins a multi-line system message.
			_, rest, _ := strings.Cut(trimmed, `"""`)
			multi, multiSystem = &strings.Builder{}, true
			if rest != "" {
				multi.WriteString(rest + "\n")
			}
			continue
		case strings.HasPrefix(trimmed, "/") && !(s.vision && startsWithImage(trimmed)):
			if err := s.command(ctx, trimmed); err != nil {
				fmt.Fprintln(s.errw, "Error:", err)
			}
			continue
		}
		if err := s.chat(ctx, line); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintln(s.errw, "Error:", err)
		}
	}
}

// load asks the server to load the model (an empty prompt). Ctrl-C cancels
// the request at once (the server then abandons the load unless another
// request wants the model) and ends olm with exit code 130.
func (s *runSession) load(ctx context.Context) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan bool, 1)
	watching := make(chan struct{})
	go func() {
		select {
		case <-s.interrupts:
			cancel()
			stopped <- true
		case <-watching:
			stopped <- false
		}
	}()
	req := &api.GenerateRequest{Model: s.c.Model, KeepAlive: s.ka}
	err := s.cl.Generate(lctx, req, func(api.GenerateResponse) error { return nil })
	close(watching)
	if <-stopped {
		return exitError{exitInterrupted, fmt.Errorf("%s: %w", s.c.Model, errLoadInterrupted)}
	}
	if err != nil && ctx.Err() != nil {
		return nil // SIGTERM: the chat ends quietly, as at the prompt
	}
	return err
}

// isMultiSystem reports whether line begins a multi-line system message:
// /set system """ with no closing """ on the same line.
func isMultiSystem(line string) bool {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "/set" || f[1] != "system" || !strings.HasPrefix(f[2], `"""`) {
		return false
	}
	_, rest, _ := strings.Cut(line, `"""`)
	return !strings.HasSuffix(rest, `"""`)
}

// command runs a /command of the REPL.
func (s *runSession) command(ctx context.Context, line string) error {
	f := strings.Fields(line)
	switch f[0] {
	case "/?", "/help":
		fmt.Fprint(s.out, replHelp)
		if s.vision {
			fmt.Fprint(s.out, visionHelp)
		}
		return nil
	case "/load":
		if len(f) != 2 {
			return fmt.Errorf("usage: /load MODEL")
		}
		return s.switchModel(ctx, f[1])
	case "/save":
		if len(f) != 2 {
			return fmt.Errorf("usage: /save MODEL")
		}
		return s.save(ctx, f[1])
	case "/clear":
		s.messages = nil
		fmt.Fprintln(s.out, "Cleared session context")
		return nil
	case "/set":
		if len(f) < 2 {
			return fmt.Errorf("usage: /set parameter NAME VALUE | /set system TEXT")
		}
		switch f[1] {
		case "parameter":
			if len(f) < 4 {
				return fmt.Errorf("usage: /set parameter NAME VALUE")
			}
			name := strings.ToLower(f[2])
			var v any
			if name == "stop" {
				// As in Ollama: each word is a stop string, and they
				// replace the ones set before.
				v = append([]string(nil), f[3:]...)
				s.opts.Stop = nil
			} else {
				var err error
				if v, err = modelfile.ParseValue(name, strings.Join(f[3:], " ")); err != nil {
					return err
				}
			}
			o, err := api.OptionsFromMap(map[string]any{name: v})
			if err != nil {
				return err
			}
			s.opts = s.opts.Merge(o)
			fmt.Fprintf(s.out, "Set parameter '%s' to '%s'\n", name, strings.Join(f[3:], ", "))
			return nil
		case "system":
			_, text, _ := strings.Cut(line, "system")
			s.system = strings.Trim(strings.TrimSpace(text), `"`)
			fmt.Fprintln(s.out, "Set system message.")
			return nil
		case "format":
			if len(f) > 2 && f[2] == "json" {
				s.format = json.RawMessage(`"json"`)
				fmt.Fprintln(s.out, "Set format to 'json' mode.")
				return nil
			}
			return fmt.Errorf("usage: /set format json")
		case "noformat":
			s.format = nil
			fmt.Fprintln(s.out, "Disabled format.")
			return nil
		case "think", "nothink":
			on := f[1] == "think"
			s.c.Think = &on
			fmt.Fprintf(s.out, "Set '%s' mode.\n", f[1])
			return nil
		case "verbose":
			s.c.Verbose = true
			fmt.Fprintln(s.out, "Set 'verbose' mode.")
			return nil
		case "quiet":
			s.c.Verbose = false
			fmt.Fprintln(s.out, "Set 'quiet' mode.")
			return nil
		}
		return fmt.Errorf("unknown /set %s (try /?)", f[1])
	case "/show":
		what := "info"
		if len(f) > 1 {
			what = f[1]
		}
		return s.show(ctx, what)
	}
	return fmt.Errorf("unknown command %s (try /?)", f[0])
}

func (s *runSession) show(ctx context.Context, what string) error {
	info, err := s.cl.Show(ctx, &api.ShowRequest{Model: s.c.Model})
	if err != nil {
		return err
	}
	switch what {
	case "info":
		d := info.Details
		fmt.Fprintf(s.out, "  Model\n    architecture        %s\n    parameters          %s\n    quantization        %s\n", d.Family, d.ParameterSize, d.QuantizationLevel)
		if cl, ok := info.ModelInfo[d.Family+".context_length"]; ok {
			fmt.Fprintf(s.out, "    context length      %v\n", cl)
		}
		if len(info.Capabilities) > 0 {
			fmt.Fprintf(s.out, "\n  Capabilities\n    %s\n", strings.Join(info.Capabilities, "\n    "))
		}
	case "parameters":
		params := info.Parameters
		if m := s.opts.Map(); len(m) > 0 {
			names := make([]string, 0, len(m))
			for k := range m {
				names = append(names, k)
			}
			sort.Strings(names)
			if params != "" {
				params += "\n"
			}
			params += "# set in this session:"
			for _, k := range names {
				params += fmt.Sprintf("\n%-30s %v", k, m[k])
			}
		}
		if params == "" {
			params = "No parameters were specified for this model."
		}
		fmt.Fprintln(s.out, params)
	case "system":
		sys := s.system
		if sys == "" {
			sys = info.System
		}
		if sys == "" {
			sys = "No system message was specified for this model."
		}
		fmt.Fprintln(s.out, sys)
	case "template":
		if info.Template == "" {
			fmt.Fprintln(s.out, "No Modelfile TEMPLATE; the model's own chat template (from its GGUF) is used.")
		} else {
			fmt.Fprintln(s.out, info.Template)
		}
	case "modelfile":
		fmt.Fprintln(s.out, info.Modelfile)
	case "license":
		if info.License == "" {
			fmt.Fprintln(s.out, "No license was specified for this model.")
		} else {
			fmt.Fprintln(s.out, info.License)
		}
	default:
		return fmt.Errorf("usage: /show info|parameters|system|template|modelfile|license")
	}
	return nil
}

// chat sends one user message with the conversation so far.
func (s *runSession) chat(ctx context.Context, text string) error {
	var msgs []api.Message
	if s.system != "" {
		msgs = append(msgs, api.Message{Role: "system", Content: s.system})
	}
	msgs = append(msgs, s.messages...)
	user := api.Message{Role: "user", Content: text}
	if s.vision {
		var err error
		if user.Content, user.Images, err = s.extractImages(text); err != nil {
			return err
		}
	}
	msgs = append(msgs, user)
	req := &api.ChatRequest{Model: s.c.Model, Messages: msgs, Format: s.format, KeepAlive: s.ka, Think: s.think()}
	if !s.opts.IsZero() {
		o := s.opts
		req.Options = &o
	}
	var answer, thinking strings.Builder
	var final api.ChatResponse
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watching := make(chan struct{})
	defer close(watching)
	go func() { // Ctrl-C stops this answer only
		select {
		case <-s.interrupts:
			cancel()
		case <-watching:
		}
	}()
	err := s.cl.Chat(cctx, req, func(r api.ChatResponse) error {
		if r.Message.Thinking != "" {
			if thinking.Len() == 0 {
				fmt.Fprint(s.out, "Thinking...\n")
			}
			thinking.WriteString(r.Message.Thinking)
			fmt.Fprint(s.out, r.Message.Thinking)
		}
		if r.Message.Content != "" {
			if thinking.Len() > 0 && answer.Len() == 0 {
				fmt.Fprint(s.out, "\n...done thinking.\n\n")
			}
			answer.WriteString(r.Message.Content)
			fmt.Fprint(s.out, r.Message.Content)
		}
		if r.Done {
			final = r
		}
		return nil
	})
	fmt.Fprintln(s.out)
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return nil // interrupted: the exchange is not kept
		}
		return err
	}
	for _, tc := range final.Message.ToolCalls {
		b, _ := json.Marshal(tc.Function.Arguments)
		fmt.Fprintf(s.out, "[tool call] %s(%s)\n", tc.Function.Name, b)
	}
	fmt.Fprintln(s.out)
	s.messages = append(s.messages, user,
		api.Message{Role: "assistant", Content: answer.String(), Thinking: thinking.String()})
	if s.c.Verbose {
		printStats(s.errw, final.Metrics)
	}
	return nil
}

// switchModel is /load: the chat goes on with model name (which must exist
// on the server), from a fresh conversation; the session's system message
// and parameters stay. On failure the chat keeps its model.
func (s *runSession) switchModel(ctx context.Context, name string) error {
	info, err := s.cl.Show(ctx, &api.ShowRequest{Model: name})
	if err != nil {
		var se *api.StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			return fmt.Errorf("couldn't find model '%s' (olm pull %s, or olm ls for the local ones)", name, name)
		}
		return err
	}
	old, oldVision := s.c.Model, s.vision
	s.c.Model, s.vision = name, slices.Contains(info.Capabilities, "vision")
	fmt.Fprintf(s.out, "Loading model '%s'\n", name)
	if err := s.load(ctx); err != nil {
		s.c.Model, s.vision = old, oldVision
		return err
	}
	s.messages = nil
	return nil
}

// save is /save: it creates model name from this session's model with the
// session's system message, parameters and conversation (Ollama's /save).
func (s *runSession) save(ctx context.Context, name string) error {
	req := &api.CreateRequest{Model: name, From: s.c.Model, System: s.system, Messages: s.messages}
	if m := s.opts.Map(); len(m) > 0 {
		req.Parameters = m
	}
	if err := s.cl.Create(ctx, req, func(api.ProgressResponse) error { return nil }); err != nil {
		return fmt.Errorf("save the session as %s: %w", name, err)
	}
	fmt.Fprintf(s.out, "Created new model '%s'\n", name)
	return nil
}

// imagePath matches what may be an image file's path in a prompt: quoted,
// or starting with /, ./, ../ or ~/ (spaces escaped with a backslash), and
// ending in .jpg, .jpeg, .png or .webp.
var imagePath = regexp.MustCompile(`(?i)'[^']+\.(?:jpe?g|png|webp)'|"[^"]+\.(?:jpe?g|png|webp)"|(?:~|\.\.?)?/(?:\\ |\S)*?\.(?:jpe?g|png|webp)\b`)

// maxImageBytes bounds one image file read from a prompt.
const maxImageBytes = 100 << 20

// extractImages takes the paths of image files out of text (for models that
// take images, as Ollama does) and returns the rest and the images, saying
// on stderr which ones it added. Paths of files that do not exist stay in
// the text; a file that is not a JPEG, PNG or WebP image is an error.
func (s *runSession) extractImages(text string) (string, []api.ImageData, error) {
	var images []api.ImageData
	var failed error
	rest := imagePath.ReplaceAllStringFunc(text, func(m string) string {
		if failed != nil {
			return m
		}
		p := imageFile(m)
		data, err := readImage(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return m
		case err != nil:
			failed = err
			return m
		}
		fmt.Fprintf(s.errw, "Added image '%s'\n", p)
		images = append(images, data)
		return ""
	})
	if failed != nil {
		return "", nil, failed
	}
	return strings.TrimSpace(rest), images, nil
}

// readImage reads an image file of at most maxImageBytes that is a JPEG,
// PNG or WebP image.
func readImage(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("image %s: %w", path, os.ErrNotExist)
	}
	if st.Size() > maxImageBytes {
		return nil, fmt.Errorf("image %s is larger than %d MB", path, maxImageBytes>>20)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch ct := http.DetectContentType(data); ct {
	case "image/jpeg", "image/png", "image/webp":
		return data, nil
	default:
		return nil, fmt.Errorf("%s is not a JPEG, PNG or WebP image (%s)", path, ct)
	}
}

// startsWithImage reports whether line begins with the path of an existing
// image file (a message for a model that takes images, not a /command).
func startsWithImage(line string) bool {
	loc := imagePath.FindStringIndex(line)
	if loc == nil || loc[0] != 0 {
		return false
	}
	st, err := os.Stat(imageFile(line[:loc[1]]))
	return err == nil && !st.IsDir()
}

// imageFile is the file an imagePath match names: without quotes, with
// escaped spaces and a leading ~/ expanded.
func imageFile(m string) string {
	p := strings.ReplaceAll(strings.Trim(m, `'"`), `\ `, " ")
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[2:])
		}
	}
	return p
}
