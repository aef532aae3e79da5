package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/internal/testolm"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/oci/transfer"
	"github.com/olmhq/olm/registry-test/regtest"
)

// TestCLIUserErrors runs the commands a user gets wrong most often and
// checks each exits with its documented code (docs/store-and-transfers.md)
// and a message that says what happened and what to do.
func TestCLIUserErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a registry and a server")
	}
	reg := regtest.Start(t, regtest.Options{})
	home := filepath.Join(t.TempDir(), "home")
	env := append([]string{"OLM_HOME=" + home}, reg.Env()...)
	bin := olmForCreateTests(t)
	testolm.Create(t, bin, env, "tiny", "FROM "+testmodel.Tiny(t)+"\n")
	dead := testenv.RefusedAddr(t)
	mustOlm(t, env, "", "tag", "tiny", dead+"/team/tiny:1")
	served := append(env, "OLM_HOST="+strings.TrimPrefix(testolm.Serve(t, bin, env, 30*time.Second), "http://"))
	noServer := append(env, "OLM_HOST="+testenv.RefusedAddr(t))

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want []string // in stderr
	}{
		{"pull missing from registry", env, []string{"pull", reg.Ref("team/nope", "1.0")}, exitNotFound,
			[]string{"no such model in the registry " + reg.Host, "check the repository and tag"}},
		{"pull missing tag", env, []string{"pull", reg.Ref("team/nope", "v9")}, exitNotFound,
			[]string{"team/nope:v9: no such model"}},
		{"pull unreachable registry", env, []string{"pull", dead + "/team/tiny:1"}, exitNetwork,
			[]string{"cannot reach the registry " + dead, "check its name and your network"}},
		{"push unreachable registry", env, []string{"push", dead + "/team/tiny:1"}, exitNetwork,
			[]string{"cannot reach the registry " + dead, "connection refused"}},
		{"push model not local", env, []string{"push", reg.Ref("team/other", "1")}, exitUsage,
			[]string{"not found in the local store; pull or create it first", "tag it first: olm tag MODEL " + reg.Ref("team/other", "1")}},
		{"pull invalid name", env, []string{"pull", "Bad Name!"}, exitUsage, []string{"Bad Name!"}},
		{"show missing", env, []string{"show", "nope"}, exitUsage,
			[]string{"model nope not found; pull or create it first"}},
		{"run without server", noServer, []string{"run", "tiny", "hi"}, exitFailure,
			[]string{"could not connect to the olm server", "start it with `olm serve`"}},
		{"ps without server", noServer, []string{"ps"}, exitFailure, []string{"start it with `olm serve`"}},
		{"run missing everywhere", served, []string{"run", reg.Ref("team/nope", "1.0"), "hi"}, exitFailure,
			[]string{reg.Ref("team/nope", "1.0") + " is not a local model, and pulling it failed", "not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the unreachable-registry cases wait out the retries
			r := runOlm(t, tc.env, "", tc.args...)
			if r.code != tc.code {
				t.Errorf("olm %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), r.code, tc.code, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "Error: ") && !strings.Contains(r.stderr, "\nError: ") {
				t.Errorf("no Error: line on stderr:\n%s", r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// TestExplainTransfer: the hints keep the exit code and the wrapped error.
func TestExplainTransfer(t *testing.T) {
	ref, err := oci.ParseReference("reg.example:5000/team/m:1")
	if err != nil {
		t.Fatal(err)
	}
	other := errors.New("disk full")
	for _, tc := range []struct {
		in   error
		code int
		is   error
		want string
	}{
		{exitError{exitNotFound, fmt.Errorf("resolve 1: %w", transfer.ErrNotFound)}, exitNotFound, transfer.ErrNotFound, "no such model in the registry reg.example:5000"},
		{exitError{exitNetwork, fmt.Errorf("dial: %w", other)}, exitNetwork, other, "cannot reach the registry reg.example:5000"},
		{exitError{exitAuth, fmt.Errorf("x: %w", transfer.ErrUnauthorized)}, exitAuth, transfer.ErrUnauthorized, "x: unauthorized"},
		{other, 0, other, "disk full"},
	} {
		got := explainTransfer(tc.in, ref)
		if !errors.Is(got, tc.is) || !strings.Contains(got.Error(), tc.want) {
			t.Errorf("explainTransfer(%v) = %v", tc.in, got)
		}
		var ee exitError
		if errors.As(got, &ee) != (tc.code != 0) || (tc.code != 0 && ee.code != tc.code) {
			t.Errorf("explainTransfer(%v): exit code %d, want %d", tc.in, ee.code, tc.code)
		}
	}
}
