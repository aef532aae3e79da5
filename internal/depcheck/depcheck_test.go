package depcheck

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/olmhq/olm"

// layer gives each package's rank: a package may import only packages of a
// lower rank, or its own subtree. Packages not listed take the rank of their
// longest listed prefix.
var layers = []struct {
	prefix string
	rank   int
}{
	{"internal", 0},
	{"api", 0},
	{"oci", 0},
	{"modelfile", 0},
	{"blobstore", 1},
	{"convert", 1},
	{"quantize", 1},
	{"runtime", 1},
	{"oci/transfer", 2},
	{"build", 3},
	{"server", 4},
	{"registry-test", 5},
	{"bench", 5},
	{"cmd", 6},
}

func rank(rel string) (int, string) {
	best, bestLen, root := -1, -1, rel
	for _, l := range layers {
		if (rel == l.prefix || strings.HasPrefix(rel, l.prefix+"/")) && len(l.prefix) > bestLen {
			best, bestLen, root = l.rank, len(l.prefix), l.prefix
		}
	}
	return best, root
}

type pkg struct {
	Dir        string
	ImportPath string
	Imports    []string
	GoFiles    []string
	CgoFiles   []string
}

func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json", module+"/...")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

func rel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}

func TestImportsPointOneWay(t *testing.T) {
	for _, p := range list(t) {
		from := rel(p.ImportPath)
		fr, froot := rank(from)
		if fr < 0 {
			t.Errorf("%s: package is in no known layer; add it to depcheck's table and docs/architecture.md", from)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := rel(imp)
			tr, troot := rank(to)
			if troot == froot {
				continue
			}
			if tr >= fr && !strings.HasPrefix(to, "internal/") {
				t.Errorf("%s (rank %d) imports %s (rank %d): imports must point down", from, fr, to, tr)
			}
		}
	}
}

func TestCgoOnlyInRuntimeLlama(t *testing.T) {
	for _, p := range list(t) {
		if len(p.CgoFiles) > 0 && rel(p.ImportPath) != "runtime/llama" {
			t.Errorf("%s uses cgo (%v); only runtime/llama may", rel(p.ImportPath), p.CgoFiles)
		}
	}
}

// TestEnvAndExitOnlyInCmd parses every non-test file outside cmd/ and the
// test helpers and fails on os.Getenv, os.LookupEnv, os.Environ and os.Exit.
func TestEnvAndExitOnlyInCmd(t *testing.T) {
	banned := map[string]bool{"Getenv": true, "LookupEnv": true, "Environ": true, "Exit": true}
	for _, p := range list(t) {
		r := rel(p.ImportPath)
		if strings.HasPrefix(r, "cmd/") || r == "internal/testenv" || r == "internal/testmodel" ||
			strings.HasPrefix(r, "registry-test") || strings.HasPrefix(r, "bench") {
			continue
		}
		for _, f := range append(append([]string{}, p.GoFiles...), p.CgoFiles...) {
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, 0)
			if err != nil {
				t.Errorf("parse %s: %v", f, err)
				continue
			}
			ast.Inspect(file, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "os" && banned[sel.Sel.Name] {
					t.Errorf("%s: os.%s outside cmd/ (only cmd/olm reads the environment or exits)", fset.Position(sel.Pos()), sel.Sel.Name)
				}
				return true
			})
		}
	}
}
