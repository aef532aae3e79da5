package oci

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies fences the package: oci is at the bottom of olm's import
// graph and knows nothing of HTTP, the command line or other olm packages.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v (the dependency fence cannot be checked)", err)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(p, "github.com/olmhq/olm/") && p != "github.com/olmhq/olm/oci":
			t.Errorf("oci imports %s; it must not import other olm packages", p)
		case p == "net/http", p == "os/exec", p == "flag", strings.HasPrefix(p, "github.com/alecthomas/kong"):
			t.Errorf("oci imports %s", p)
		}
	}
}
