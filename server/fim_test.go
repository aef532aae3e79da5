package server

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/olmhq/olm/runtime/runner"
)

// testFIM are the FIM tokens the fake runner reports in these tests.
var testFIM = &runner.FIMTokens{Prefix: 900, Suffix: 901, Middle: 902, BOS: 1}

// TestGenerateFIM: a generate request with a suffix on a model without a
// .Suffix template is prompted with the vocabulary's fill-in-the-middle
// tokens, [BOS] PRE prefix SUF suffix MID, the texts tokenized without
// special tokens; the answer streams back as usual.
func TestGenerateFIM(t *testing.T) {
	for _, model := range []string{
		"tiny",  // the runner's chat template would apply
		"mario", // a Modelfile TEMPLATE without .Suffix
	} {
		t.Run(model, func(t *testing.T) {
			e := newEnv(t)
			e.engine.r.fim = testFIM
			m := object(t, e.do("POST", "/api/generate", `{"model":"`+model+`","prompt":"def add(a, b):","suffix":"  return c","stream":false}`), 200)
			if m["response"] != "Hello world" || m["done"] != true {
				t.Fatalf("answer %v", m)
			}
			c := e.engine.r.completions[0]
			// The fake tokenizer gives a word its length: "def add(a, b):" is 3 6 3.
			want := []int32{1, 900, 3, 6, 3, 901, 6, 1, 902}
			if c.Prompt != "" || !slices.Equal(c.Tokens, want) {
				t.Fatalf("completion prompt %q, tokens %v; want tokens %v", c.Prompt, c.Tokens, want)
			}
			for _, tr := range e.engine.r.tokenizes {
				if tr.ParseSpecial || tr.AddSpecial {
					t.Errorf("tokenize %+v: code must be tokenized as text", tr)
				}
			}
			if len(e.engine.r.renders) != 0 {
				t.Errorf("the chat template was rendered for an insert request")
			}
		})
	}
}

// TestGenerateFIMVariants: no BOS, an empty prompt or suffix, a request
// context before the prompt, the OpenAI completions endpoint.
func TestGenerateFIMVariants(t *testing.T) {
	e := newEnv(t)
	e.engine.r.fim = &runner.FIMTokens{Prefix: 900, Suffix: 901, Middle: 902, BOS: -1}
	object(t, e.do("POST", "/api/generate", `{"model":"tiny","suffix":"}","stream":false}`), 200)
	if got := e.engine.r.completions[0].Tokens; !slices.Equal(got, []int32{900, 901, 1, 902}) {
		t.Errorf("empty prompt: tokens %v", got)
	}
	object(t, e.do("POST", "/api/generate", `{"model":"tiny","prompt":"x = ","suffix":"","stream":false}`), 200)
	if c := e.engine.r.completions[1]; c.Prompt != "<user>x = <assistant>" || len(c.Tokens) != 0 {
		t.Errorf("no suffix is no insert request: %+v", c)
	}
	object(t, e.do("POST", "/api/generate", `{"model":"tiny","prompt":"ab","suffix":"c","context":[7,8],"stream":false}`), 200)
	if got := e.engine.r.completions[2].Tokens; !slices.Equal(got, []int32{7, 8, 900, 2, 901, 1, 902}) {
		t.Errorf("with context: tokens %v", got)
	}
	object(t, e.do("POST", "/v1/completions", `{"model":"tiny","prompt":"abc","suffix":"de"}`), 200)
	if got := e.engine.r.completions[3].Tokens; !slices.Equal(got, []int32{900, 3, 901, 2, 902}) {
		t.Errorf("/v1/completions: tokens %v", got)
	}
}

// TestGenerateFIMTemplateFirst: a template that uses .Suffix (the model's
// or the request's) renders the prompt, as in Ollama, even when the
// vocabulary has FIM tokens.
func TestGenerateFIMTemplateFirst(t *testing.T) {
	e := newEnv(t)
	e.engine.r.fim = testFIM
	object(t, e.do("POST", "/api/generate", `{"model":"tiny","prompt":"a","suffix":"b","template":"<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>","stream":false}`), 200)
	if c := e.engine.r.completions[0]; c.Prompt != "<PRE> a <SUF>b <MID>" || len(c.Tokens) != 0 {
		t.Fatalf("completion %+v", c)
	}
}

// TestGenerateFIMUnsupported: a model with neither a .Suffix template nor
// FIM tokens answers 400 and says it cannot insert; images cannot go with
// a FIM prompt; raw requests take no suffix.
func TestGenerateFIMUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		fim        bool
		mention    string
	}{
		{"no fim tokens", `{"model":"tiny","prompt":"x","suffix":"y"}`, false, `model "tiny" does not support insert (suffix)`},
		{"template without suffix", `{"model":"mario","prompt":"x","suffix":"y"}`, false, `model "mario" does not support insert (suffix)`},
		{"images", `{"model":"tiny","prompt":"x","suffix":"y","images":["aGk="]}`, true, "images"},
		{"raw", `{"model":"tiny","prompt":"x","suffix":"y","raw":true}`, true, "raw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.fim {
				e.engine.r.fim = testFIM
			}
			m := object(t, e.do("POST", "/api/generate", tc.body), 400)
			if msg, _ := m["error"].(string); !strings.Contains(msg, tc.mention) {
				t.Errorf("error %q does not mention %q", msg, tc.mention)
			}
			if len(e.engine.r.completions) != 0 {
				t.Errorf("the runner generated")
			}
		})
	}
}

// numberedRunner tokenizes "1 2 3" as tokens 1, 2, 3.
type numberedRunner struct{ *fakeRunner }

func (numberedRunner) Tokenize(ctx context.Context, req runner.TokenizeRequest) ([]int32, error) {
	var out []int32
	for _, w := range strings.Fields(req.Content) {
		n, _ := strconv.Atoi(w)
		out = append(out, int32(n))
	}
	return out, nil
}

func words(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		b.WriteString(strconv.Itoa(i) + " ")
	}
	return b.String()
}

func span(from, to int) []int32 {
	var out []int32
	for i := from; i <= to; i++ {
		out = append(out, int32(i))
	}
	return out
}

// TestFIMPromptFits: a prefix and suffix that do not fit the context keep
// the text nearest the insertion point (the end of the prefix, the start
// of the suffix, about 3:1) and leave room to generate; the FIM tokens are
// always there.
func TestFIMPromptFits(t *testing.T) {
	r := numberedRunner{&fakeRunner{}}
	f := &runner.FIMTokens{Prefix: -2, Suffix: -3, Middle: -4, BOS: -1}
	join := func(parts ...[]int32) []int32 { return slices.Concat(parts...) }
	for _, tc := range []struct {
		name                 string
		prefix, suffix       string
		nCtx, numPredict     int
		wantPrefix, wantSuff []int32
	}{
		{"fits", words(1, 10), words(11, 20), 64, 16, span(1, 10), span(11, 20)},
		{"no limit", words(1, 100), words(101, 200), 0, -1, span(1, 100), span(101, 200)},
		// 64 - 16 to generate - 4 = 44: suffix 11, prefix 33.
		{"both long", words(1, 100), words(101, 200), 64, 16, span(68, 100), span(101, 111)},
		// unbounded generation reserves a quarter: 64 - 16 - 4 = 44 again.
		{"unbounded", words(1, 100), words(101, 200), 64, -1, span(68, 100), span(101, 111)},
		// a short prefix leaves the suffix the rest.
		{"short prefix", words(1, 5), words(101, 200), 64, 16, span(1, 5), span(101, 139)},
		{"short suffix", words(1, 100), words(101, 103), 64, 16, span(60, 100), span(101, 103)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fimPrompt(t.Context(), r, f, tc.prefix, tc.suffix, tc.nCtx, tc.numPredict)
			if err != nil {
				t.Fatal(err)
			}
			want := join([]int32{-2}, tc.wantPrefix, []int32{-3}, tc.wantSuff, []int32{-4})
			if !slices.Equal(got, want) {
				t.Fatalf("tokens\n%v\nwant\n%v", got, want)
			}
		})
	}
}
