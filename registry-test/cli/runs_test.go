package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/internal/testolm"
	"github.com/olmhq/olm/registry-test/regtest"
)

// TestRoundTripRuns is issue 3's user story end to end with a cgo build of
// olm: create a model from the tiny GGUF, push it to the real registry over
// TLS with basic auth, rm it, pull it back (same manifest digest, same
// blobs), and serve it: the pulled model answers /api/generate with the same
// greedy text as before the round trip.
func TestRoundTripRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds olm with cgo, starts servers and loads a model")
	}
	testenv.LlamaDir(t)
	bin := testolm.Build(t)
	reg := regtest.Start(t, regtest.Options{TLS: true, Auth: true})
	e := newEnv(t, reg)
	name := reg.Ref("team/tiny", "1.0")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cmd.Environ(), e.vars...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("olm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String()
	}

	testolm.Create(t, bin, e.vars, name, "FROM "+testmodel.Tiny(t)+"\nTEMPLATE {{ .Prompt }}\n")
	var created struct{ Digest string }
	if err := json.Unmarshal([]byte(run("inspect", name)), &created); err != nil || created.Digest == "" {
		t.Fatalf("inspect after create: %+v %v", created, err)
	}
	before := e.blobsOf(t)

	var want string
	t.Run("serve-before", func(t *testing.T) {
		want = generate(t, testolm.Serve(t, bin, e.vars, 30*time.Second), name)
	})
	if want == "" {
		t.Fatal("no answer before the round trip")
	}

	var pushed struct{ Digest string }
	if err := json.Unmarshal([]byte(run("push", "--json", name)), &pushed); err != nil || pushed.Digest != created.Digest {
		t.Fatalf("push --json: %+v %v; want digest %s", pushed, err, created.Digest)
	}
	if _, mt, err := reg.GetManifest(t.Context(), "team/tiny", "1.0"); err != nil || mt == "" {
		t.Fatalf("the registry has no manifest for %s: %v", name, err)
	}
	run("rm", name)
	if left := e.blobsOf(t); len(left) != 0 {
		t.Fatalf("rm left blobs: %v", left)
	}
	if ls := run("ls"); strings.Contains(ls, "team/tiny") {
		t.Fatalf("ls after rm still lists the model:\n%s", ls)
	}

	var pulled struct{ Digest string }
	if err := json.Unmarshal([]byte(run("pull", "--json", name)), &pulled); err != nil || pulled.Digest != created.Digest {
		t.Fatalf("pull --json: %+v %v; want digest %s", pulled, err, created.Digest)
	}
	if after := e.blobsOf(t); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("pulled blobs %v, created %v", after, before)
	}
	e.checkStoreSound(t)

	got := generate(t, testolm.Serve(t, bin, e.vars, 30*time.Second), name)
	if got != want {
		t.Errorf("greedy answer after the round trip %q, before %q", got, want)
	}
	t.Logf("greedy answer before and after the round trip: %q", got)
}

// generate asks the server at url for a short greedy completion and returns
// its text, failing the test unless it is non-empty.
func generate(t *testing.T, url, model string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": model, "prompt": "Once upon a time", "stream": false, "keep_alive": 0,
		"options": map[string]any{"temperature": 0, "num_predict": 8, "seed": 1},
	})
	cl := &http.Client{Timeout: 2 * time.Minute}
	resp, err := cl.Post(url+"/api/generate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/generate: %s\n%s", resp.Status, b)
	}
	var r struct {
		Response  string `json:"response"`
		Done      bool   `json:"done"`
		EvalCount int    `json:"eval_count"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(errors.Join(err, errors.New(string(b))))
	}
	if !r.Done || r.Response == "" || r.EvalCount == 0 || r.EvalCount > 8 {
		t.Fatalf("generate answered %s", b)
	}
	return r.Response
}
