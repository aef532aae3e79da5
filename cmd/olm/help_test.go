package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

var update = flag.Bool("update", false, "rewrite testdata/help/*.golden from the current help text")

// helpExited is what the test's kong.Exit panics with, so that --help stops
// parsing the way it stops the real binary.
type helpExited struct{ code int }

// renderHelp returns what `olm args... --help` prints, rendered by kong with
// olm's own options at 80 columns.
func renderHelp(t *testing.T, args ...string) (out string) {
	t.Helper()
	var buf bytes.Buffer
	var cli CLI
	p, err := kong.New(&cli, append(cliOptions(),
		kong.Writers(&buf, &buf),
		kong.Exit(func(code int) { panic(helpExited{code}) }),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		r := recover()
		e, ok := r.(helpExited)
		if !ok {
			panic(r)
		}
		if e.code != 0 {
			t.Errorf("olm %s --help exited %d", strings.Join(args, " "), e.code)
		}
		out = buf.String()
	}()
	_, err = p.Parse(append(args, "--help"))
	t.Fatalf("olm %s --help did not exit (err %v)", strings.Join(args, " "), err)
	return ""
}

// TestHelpGolden checks `olm --help` and every visible command's --help
// against testdata/help/*.golden. After a deliberate change to the CLI,
// rewrite them with `go test ./cmd/olm -run TestHelpGolden -update`.
func TestHelpGolden(t *testing.T) {
	t.Setenv("COLUMNS", "80")
	var cli CLI
	p, err := kong.New(&cli, cliOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{"olm": nil}
	for _, n := range p.Model.Node.Children {
		if n.Hidden {
			continue
		}
		cases[n.Name] = []string{n.Name}
	}
	if len(cases) < 15 {
		t.Fatalf("only %d help texts: is the command list wired up?", len(cases))
	}
	dir := filepath.Join("testdata", "help")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			got := renderHelp(t, args...)
			if !strings.Contains(got, "Usage: olm") {
				t.Fatalf("help text without a usage line:\n%s", got)
			}
			path := filepath.Join(dir, name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("olm %s --help differs from %s (run with -update if the change is deliberate):\n--- got\n%s\n--- want\n%s",
					strings.Join(args, " "), path, got, want)
			}
		})
	}
	// A golden file for a command that no longer exists is stale.
	files, _ := filepath.Glob(filepath.Join(dir, "*.golden"))
	for _, f := range files {
		if _, ok := cases[strings.TrimSuffix(filepath.Base(f), ".golden")]; !ok {
			t.Errorf("%s: no such command any more; delete it", f)
		}
	}
}

// TestVersionFlag: `olm --version` prints what `olm version` prints.
func TestVersionFlag(t *testing.T) {
	out := renderHelp(t, "--version")
	if want := "olm version " + version + "\n"; out != want {
		t.Fatalf("olm --version printed %q, want %q", out, want)
	}
}
