package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/internal/testmodel"
	"github.com/olmhq/olm/quantize"
	"github.com/olmhq/olm/server"
)

// refusingQuantizer checks types like *quantize.Quantizer and answers
// every Quantize as the worker does for an already quantized input.
type refusingQuantizer struct{ *quantize.Quantizer }

func (refusingQuantizer) Quantize(ctx context.Context, in, out string, opts quantize.Options) error {
	return fmt.Errorf("%w: tensor blk.0.attn_q.weight is Q8_0", quantize.ErrAlreadyQuantized)
}

// TestCreateQuantizeBadRequest checks that a create request asking for a
// quantization type the worker does not know, or quantizing weights that
// are already quantized, is a client error (400), not a server error.
func TestCreateQuantizeBadRequest(t *testing.T) {
	p := newParts(t)
	p.build.Builder.Quantizer = refusingQuantizer{&quantize.Quantizer{Types: []string{"Q8_0", "Q4_K_M"}}}
	p.create(t, &api.CreateRequest{Model: "tiny", Modelfile: "FROM " + testmodel.Tiny(t)})
	for _, c := range []struct {
		typ  string
		want error
	}{
		{"bogus", quantize.ErrUnknownType},
		{"q8_0", quantize.ErrAlreadyQuantized},
	} {
		err := p.build.Create(context.Background(), &api.CreateRequest{Model: "tiny:q", From: "tiny", Quantize: c.typ},
			func(api.ProgressResponse) error { return nil })
		if !errors.Is(err, server.ErrBadRequest) || !errors.Is(err, c.want) {
			t.Errorf("quantize %q: err = %v, want server.ErrBadRequest wrapping %v", c.typ, err, c.want)
		}
	}
}

// TestCreateRejectsBrokenTemplate checks that a create request whose
// TEMPLATE (field or Modelfile line) does not parse is a 400 and creates
// nothing, as in Ollama, instead of a model every request fails on.
func TestCreateRejectsBrokenTemplate(t *testing.T) {
	p := newParts(t)
	p.create(t, &api.CreateRequest{Model: "tiny", Modelfile: "FROM " + testmodel.Tiny(t)})
	for _, req := range []*api.CreateRequest{
		{Model: "broken", From: "tiny", Template: "{{ .Prompt"},
		{Model: "broken", Modelfile: "FROM tiny\nTEMPLATE \"\"\"{{ nosuchfunc .Prompt }}\"\"\""},
	} {
		err := p.build.Create(context.Background(), req, func(api.ProgressResponse) error { return nil })
		if !errors.Is(err, server.ErrBadRequest) {
			t.Errorf("create %+v: err = %v, want server.ErrBadRequest", req, err)
		}
		if _, err := p.models.Resolve(context.Background(), "broken"); !errors.Is(err, server.ErrNotFound) {
			t.Errorf("a model was created from a broken template: resolve = %v", err)
		}
	}
	// A template that parses is fine.
	p.create(t, &api.CreateRequest{Model: "ok", From: "tiny", Template: "{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}{{ json .Tools }}"})
}

// TestCreateNotFoundMessage checks that a create from a missing file or
// blob is a 404 whose message says "not found" once.
func TestCreateNotFoundMessage(t *testing.T) {
	p := newParts(t)
	err := p.build.Create(context.Background(), &api.CreateRequest{Model: "x", Modelfile: "FROM /nonexistent/model.gguf"},
		func(api.ProgressResponse) error { return nil })
	if !errors.Is(err, server.ErrNotFound) {
		t.Fatalf("err = %v, want server.ErrNotFound", err)
	}
	if strings.Contains(err.Error(), "not found: not found") {
		t.Errorf("message repeats itself: %q", err)
	}
}
