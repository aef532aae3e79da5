package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/internal/testolm"
)

// TestREPLAgainstServer drives the interactive chat, line by line as a
// person types it, against a real `olm serve` with the tiny model: /set
// parameter, /set system, multi-line """ input, /show, /clear, /bye, and the
// end of input (Ctrl-D). It also runs the one-shot `echo hi | olm run tiny`.
func TestREPLAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads a model")
	}
	bin := olmForCreateTests(t) // fails in CI without the llama.cpp build
	env := []string{"OLM_HOME=" + filepath.Join(t.TempDir(), "home")}
	testolm.Create(t, bin, env, "tiny", "FROM "+testmodel.Tiny(t)+"\nPARAMETER temperature 0\n")
	base := testolm.Serve(t, bin, env, 30*time.Second)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	session := func() (*runSession, *bytes.Buffer, *bytes.Buffer) {
		var out, errw bytes.Buffer
		return &runSession{c: &RunCmd{Model: "tiny"}, cl: api.NewClient(u, api.ClientOptions{}), out: &out, errw: &errw}, &out, &errw
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	s, out, errw := session()
	input := strings.Join([]string{
		"/set parameter num_predict 5",
		"/set verbose",
		"hello",
		"hello",
		"/clear",
		"hello",
		"/set quiet",
		`"""first line`,
		"second line",
		`end"""`,
		"/set system You are a pirate.",
		"/show",
		"/show parameters",
		"/show system",
		"/show license",
		"/show nonsense",
		"/save tiny-pirate",
		"/load tiny-pirate",
		"/show system",
		"/bye",
		"never sent",
	}, "\n") + "\n"
	if err := s.repl(ctx, strings.NewReader(input)); err != nil {
		t.Fatalf("repl: %v\nstdout:\n%s\nstderr:\n%s", err, out, errw)
	}
	o, e := out.String(), errw.String()
	t.Logf("stdout:\n%s\nstderr:\n%s", o, e)
	// The conversation, as /save stored it (then /load started afresh).
	saved, err := s.cl.Show(ctx, &api.ShowRequest{Model: "tiny-pirate"})
	if err != nil {
		t.Fatalf("the model /save created: %v", err)
	}

	// Three answers with --verbose, each of num_predict 5 tokens.
	if n := strings.Count(e, "eval count:           5 token(s)"); n != 3 {
		t.Errorf("%d answers of 5 tokens in the verbose stats, want 3:\n%s", n, e)
	}
	var prompts []int
	for _, m := range regexp.MustCompile(`prompt eval count:\s+(\d+)`).FindAllStringSubmatch(e, -1) {
		n, _ := strconv.Atoi(m[1])
		prompts = append(prompts, n)
	}
	// The second "hello" carries the first exchange; after /clear it is
	// alone again.
	if len(prompts) != 3 || prompts[1] <= prompts[0] || prompts[2] >= prompts[1] {
		t.Errorf("prompt eval counts %v: want the history to grow the second prompt and /clear to drop it", prompts)
	}
	if len(saved.Messages) != 4 || saved.Messages[2].Content != "first line\nsecond line\nend" {
		t.Errorf("conversation after /clear and the multi-line message: %+v", saved.Messages)
	}
	for _, a := range []string{saved.Messages[1].Content, saved.Messages[3].Content} {
		if a == "" || !strings.Contains(o, a) {
			t.Errorf("answer %q empty or not printed", a)
		}
	}
	for _, want := range []string{
		"Set parameter 'num_predict' to '5'\n",
		"Cleared session context\n",
		"... ... ", // continuation prompts of the multi-line message
		"Set system message.\n",
		"    architecture        llama\n", // bare /show is /show info
		">>> temperature                    0\n# set in this session:\nnum_predict                    5\n",
		"You are a pirate.\n",
		"No license was specified for this model.\n",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if !strings.Contains(e, "usage: /show info|parameters") {
		t.Errorf("/show nonsense: no usage on stderr")
	}
	// /save made a model of the session, and /load switched to it.
	if saved.System != "You are a pirate." || len(saved.Messages) != 4 || !strings.Contains(saved.Parameters, "num_predict") {
		t.Errorf("/save made system %q, %d messages, parameters %q", saved.System, len(saved.Messages), saved.Parameters)
	}
	if s.c.Model != "tiny-pirate" || len(s.messages) != 0 || !strings.Contains(o, "Created new model 'tiny-pirate'\n>>> Loading model 'tiny-pirate'\n") {
		t.Errorf("after /load: model %s, %d messages", s.c.Model, len(s.messages))
	}
	if strings.Contains(o+e, "never sent") || strings.HasSuffix(o, ">>> \n") {
		t.Errorf("input after /bye was used")
	}

	// End of input (Ctrl-D) in the middle of a multi-line message ends the
	// chat cleanly without sending it.
	s, out, errw = session()
	if err := s.repl(ctx, strings.NewReader("/set parameter num_predict 2\n\"\"\"unfinished\n")); err != nil {
		t.Fatalf("repl at end of input: %v\n%s", err, errw)
	}
	if len(s.messages) != 0 || !strings.HasSuffix(out.String(), "... \n") {
		t.Errorf("Ctrl-D: messages %+v, stdout %q", s.messages, out)
	}

	// One shot: `echo hi | olm run tiny` answers and exits 0.
	cmd := exec.Command(bin, "run", "tiny")
	cmd.Env = append(cmd.Environ(), append(env, "OLM_HOST="+u.Host)...)
	cmd.Stdin = strings.NewReader("hi\n")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil || strings.TrimSpace(so.String()) == "" {
		t.Errorf("echo hi | olm run tiny: %v, stdout %q\n%s", err, so.String(), se.String())
	}
}

// TestShowParametersSessionOnly: a model without PARAMETERs shows only the
// session's, with no blank line before them.
func TestShowParametersSessionOnly(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"modelfile":"FROM x"}`))
	}))
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	var out bytes.Buffer
	s := &runSession{c: &RunCmd{Model: "m"}, cl: api.NewClient(u, api.ClientOptions{}), out: &out, errw: &out}
	if err := s.command(context.Background(), "/set parameter num_predict 5"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := s.show(context.Background(), "parameters"); err != nil {
		t.Fatal(err)
	}
	if want := "# set in this session:\nnum_predict                    5\n"; out.String() != want {
		t.Errorf("/show parameters = %q, want %q", out.String(), want)
	}
	out.Reset()
	s.opts = api.Options{}
	if err := s.show(context.Background(), "parameters"); err != nil {
		t.Fatal(err)
	}
	if want := "No parameters were specified for this model.\n"; out.String() != want {
		t.Errorf("/show parameters without any = %q, want %q", out.String(), want)
	}
}
