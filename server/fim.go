package server

import (
	"context"
	"fmt"

	"github.com/olmhq/olm/runtime/runner"
)

// Fill in the middle (generate with a suffix). A model whose prompt
// template uses .Suffix (Ollama's way: the Modelfile TEMPLATE of a code
// model) gets its prompt from the template. Otherwise, when the model's
// vocabulary has fill-in-the-middle tokens (Qwen2.5-Coder, CodeLlama,
// StarCoder, DeepSeek-Coder, ...), the prompt is built from them as
// llama-server's /infill does: [BOS] PRE prefix SUF suffix MID, the texts
// tokenized without special tokens (a "<|fim_suffix|>" typed in the code is
// text, not a control token). A model with neither cannot insert.

// fimTokens returns the FIM tokens to build a suffix request's prompt
// with, or nil when the template tmpl ("" for none) uses .Suffix and
// renders it. A model with neither is ErrUnsupported.
func fimTokens(ctx context.Context, model, tmpl string, r Runner) (*runner.FIMTokens, int, error) {
	if tmpl != "" {
		t, err := parseTemplate(tmpl)
		if err != nil {
			return nil, 0, err
		}
		if usesField(t, "Suffix") {
			return nil, 0, nil
		}
	}
	info, err := r.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	if info.FIM == nil {
		return nil, 0, fmt.Errorf("%w: model %q does not support insert (suffix): its template has no .Suffix and its vocabulary no fill-in-the-middle tokens", ErrUnsupported, model)
	}
	return info.FIM, info.Context, nil
}

// fimPrompt returns the tokens of a fill-in-the-middle prompt for prefix
// and suffix. When both do not fit in a context of nCtx tokens (0: no
// limit) with room left to generate (numPredict tokens, or a quarter of
// the context when that is unbounded or more than half of it), the end of
// the prefix and the start of the suffix are kept, about 3:1 as
// llama-server does: the text nearest the insertion point matters most.
// (Left to the runner's truncation, the prefix token itself would go.)
func fimPrompt(ctx context.Context, r Runner, f *runner.FIMTokens, prefix, suffix string, nCtx, numPredict int) ([]int32, error) {
	tokenize := func(text string) ([]int32, error) {
		if text == "" {
			return nil, nil
		}
		return r.Tokenize(ctx, runner.TokenizeRequest{Content: text})
	}
	pre, err := tokenize(prefix)
	if err != nil {
		return nil, err
	}
	suf, err := tokenize(suffix)
	if err != nil {
		return nil, err
	}
	if nCtx > 0 {
		reserve := numPredict
		if reserve <= 0 || reserve > nCtx/2 {
			reserve = nCtx / 4
		}
		budget := max(nCtx-reserve-4, 2) // 4: BOS, PRE, SUF, MID
		if len(pre)+len(suf) > budget {
			keepSuf := min(len(suf), budget/4)
			keepPre := min(len(pre), budget-keepSuf)
			keepSuf = min(len(suf), budget-keepPre) // a short prefix leaves the suffix more
			pre, suf = pre[len(pre)-keepPre:], suf[:keepSuf]
		}
	}
	out := make([]int32, 0, len(pre)+len(suf)+4)
	if f.BOS >= 0 {
		out = append(out, f.BOS)
	}
	out = append(out, f.Prefix)
	out = append(out, pre...)
	out = append(out, f.Suffix)
	out = append(out, suf...)
	return append(out, f.Middle), nil
}
