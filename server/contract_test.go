package server

import (
	"strings"
	"testing"
)

// TestPromptEvalCountCountsCachedTokens checks that prompt_eval_count is
// the number of tokens in the prompt (the contract's words), the ones the
// runner reused from its slot's cache included, on every endpoint that
// reports it.
func TestPromptEvalCountCountsCachedTokens(t *testing.T) {
	e := newEnv(t)
	e.engine.r.cached = 7 // the fake evaluates 5 more
	for _, c := range []struct{ path, body, key string }{
		{"/api/generate", `{"model":"tiny","prompt":"hi","stream":false}`, "prompt_eval_count"},
		{"/api/chat", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":false}`, "prompt_eval_count"},
	} {
		m := object(t, e.do("POST", c.path, c.body), 200)
		if m[c.key] != float64(12) {
			t.Errorf("%s: %s = %v, want 12 (7 cached + 5 evaluated)", c.path, c.key, m[c.key])
		}
	}
	m := object(t, e.do("POST", "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"hi"}]}`), 200)
	u, _ := m["usage"].(map[string]any)
	if u["prompt_tokens"] != float64(12) || u["total_tokens"] != float64(14) {
		t.Errorf("usage = %v, want prompt_tokens 12, total_tokens 14", u)
	}
}

// TestPullPrunesMovedTag checks the pull statuses when the pull moved the
// tag off an older manifest: "removing any unused layers" after "writing
// manifest", then "success", as in the contract; a push never says it.
func TestPullPrunesMovedTag(t *testing.T) {
	e := newEnv(t)
	var statuses []string
	for _, l := range ndjsonLines(e.do("POST", "/api/pull", `{"model":"moved"}`).Body.Bytes()) {
		statuses = append(statuses, l["status"].(string))
	}
	tail := strings.Join(statuses[max(0, len(statuses)-4):], "|")
	if tail != "verifying sha256 digest|writing manifest|removing any unused layers|success" {
		t.Errorf("pull statuses = %v", statuses)
	}
	statuses = nil
	for _, l := range ndjsonLines(e.do("POST", "/api/push", `{"model":"moved"}`).Body.Bytes()) {
		statuses = append(statuses, l["status"].(string))
	}
	if tail := strings.Join(statuses[max(0, len(statuses)-2):], "|"); tail != "pushing manifest|success" {
		t.Errorf("push statuses = %v", statuses)
	}
}
