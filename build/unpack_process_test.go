package build_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/oci"
)

// unpackEnv makes the test binary resolve a stored model's weights as
// another olm process would: its value is a JSON unpackJob.
const unpackEnv = "OLM_TEST_UNPACK_HELPER"

// unpackJob is what the helper process does. Sync is a folder the processes
// and the test order themselves through: the first one writes "started"
// once it holds the lock and waits for "go" before it unpacks; the second
// writes "waiting" when it finds the lock held.
type unpackJob struct {
	Store, Ref, Sync string
	First            bool
}

// unpackResult is the helper's answer on stdout.
type unpackResult struct {
	Path    string
	Unpacks int32
}

func unpackHelper(job string) int {
	var j unpackJob
	if err := json.Unmarshal([]byte(job), &j); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mark := func(name string) { os.WriteFile(filepath.Join(j.Sync, name), nil, 0o644) }
	var unpacks atomic.Int32
	build.SetUnpackHooks(func() {
		unpacks.Add(1)
		if j.First {
			mark("started")
			waitFile(ctx, filepath.Join(j.Sync, "go"))
		}
	}, func() { mark("waiting") })
	s, err := blobstore.Open(j.Store, blobstore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	m, _, err := build.LoadModel(ctx, s, j.Ref)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	path, err := build.LayerPath(ctx, s, m.Weights[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(unpackResult{Path: path, Unpacks: unpacks.Load()})
	return 0
}

// waitFile returns when path exists or ctx ends (then false).
func waitFile(ctx context.Context, path string) bool {
	for {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestArchivedWeightsProcesses: two olm processes resolving one archived
// layer at once unpack it once: the second waits on the lock file in the
// store and uses the first one's file.
func TestArchivedWeightsProcesses(t *testing.T) {
	want := readAll(t, testmodel.Tiny(t))
	_, s := newBuilder(t)
	const ref = "example.com/mp/tiny:v1"
	storeModelKit(t, s, ref, oci.MediaTypeModelPackWeightTarGzip, tarOf(t, true, "tiny.gguf", want), "tiny.gguf")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sync := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	start := func(first bool) (*exec.Cmd, *bytes.Buffer) {
		job, _ := json.Marshal(unpackJob{Store: s.Root(), Ref: ref, Sync: sync, First: first})
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), unpackEnv+"="+string(job))
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}
	a, aout := start(true)
	if !waitFile(ctx, filepath.Join(sync, "started")) {
		t.Fatal("the first process never started unpacking")
	}
	b, bout := start(false)
	if !waitFile(ctx, filepath.Join(sync, "waiting")) {
		t.Fatal("the second process never waited on the lock")
	}
	os.WriteFile(filepath.Join(sync, "go"), nil, 0o644)
	var res [2]unpackResult
	for i, p := range []struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}{{a, aout}, {b, bout}} {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v", i+1, err)
		}
		if err := json.Unmarshal(p.out.Bytes(), &res[i]); err != nil {
			t.Fatalf("process %d wrote %q: %v", i+1, p.out, err)
		}
	}
	if res[0].Unpacks != 1 || res[1].Unpacks != 0 || res[0].Path != res[1].Path {
		t.Fatalf("results %+v; want the first to unpack once and the second to use its file", res)
	}
	if !bytes.Equal(readAll(t, res[0].Path), want) {
		t.Fatal("unpacked file differs from the GGUF")
	}
	checkUnpackedDir(t, filepath.Dir(res[0].Path))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}
