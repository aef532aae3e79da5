package npm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/olmhq/olm/internal/testenv"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/internal/testolm"
)

// TestDisconnectFreesSlot checks, with one slot (OLM_NUM_PARALLEL=1), that
// a client that goes away mid-stream stops its generation: the next
// request is served long before the abandoned one would have finished.
// The bound is calibrated on this machine by one uncancelled run.
func TestDisconnectFreesSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads a model")
	}
	testenv.LlamaDir(t)
	bin := testolm.Build(t)
	home := filepath.Join(t.TempDir(), "h")
	env := []string{"OLM_HOME=" + home, "OLM_NUM_PARALLEL=1"}
	testolm.Create(t, bin, env, "tiny", "FROM "+testmodel.Tiny(t)+"\n")
	url := testolm.Serve(t, bin, env, serveWait)

	// Same load options every time, so every request uses the one runner.
	generate := func(ctx context.Context, numPredict int, firstChunk chan<- struct{}) (int, error) {
		body, _ := json.Marshal(map[string]any{"model": "tiny", "prompt": "a", "raw": true,
			"options": map[string]any{"num_predict": numPredict, "temperature": 0, "num_ctx": 2048}})
		req, _ := http.NewRequestWithContext(ctx, "POST", url+"/api/generate", bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
		for sc.Scan() {
			var r struct {
				Done      bool   `json:"done"`
				EvalCount int    `json:"eval_count"`
				Error     string `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return 0, err
			}
			if firstChunk != nil {
				close(firstChunk)
				firstChunk = nil
			}
			if r.Done {
				return r.EvalCount, nil
			}
		}
		return 0, sc.Err()
	}
	ctx := context.Background()
	if _, err := generate(ctx, 1, nil); err != nil { // load
		t.Fatal(err)
	}
	t0 := time.Now()
	n, err := generate(ctx, -1, nil) // until the 2048-token context is full
	full := time.Since(t0)
	if err != nil || n < 1000 {
		t.Fatalf("uncancelled run: %d tokens, %v", n, err)
	}

	cctx, cancel := context.WithCancel(ctx)
	first := make(chan struct{})
	abandoned := make(chan error, 1)
	go func() { _, err := generate(cctx, -1, first); abandoned <- err }()
	<-first
	cancel()
	<-abandoned
	t1 := time.Now()
	if _, err := generate(ctx, 4, nil); err != nil {
		t.Fatal(err)
	}
	next := time.Since(t1)
	t.Logf("a full run (%d tokens) took %v; the request after a cancelled one took %v", n, full, next)
	if next > full/2 {
		t.Errorf("the next request waited %v (a full generation takes %v): the cancelled generation kept its slot", next, full)
	}
}
