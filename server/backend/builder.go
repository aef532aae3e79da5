package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/modelfile"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/quantize"
	"github.com/olmhq/olm/server"
)

// Builder is server.Builder over package build.
type Builder struct {
	// Builder builds into the store; required.
	Builder *build.Builder
	// Home is the folder "~" in FROM paths expands to ("" leaves it).
	Home string
}

var _ server.Builder = (*Builder)(nil)

// modelfileOf turns a create request's fields into a Modelfile.
func modelfileOf(req *api.CreateRequest) (*modelfile.Modelfile, error) {
	if req.Modelfile != "" {
		mf, err := modelfile.ParseString(req.Modelfile)
		if err != nil {
			return nil, fmt.Errorf("%w: modelfile: %w", server.ErrBadRequest, err)
		}
		return mf, nil
	}
	mf := &modelfile.Modelfile{}
	add := func(in modelfile.Instruction, name, value string) {
		mf.Commands = append(mf.Commands, modelfile.Command{Instruction: in, Name: name, Value: value})
	}
	if req.From != "" {
		add(modelfile.From, "", req.From)
	}
	if req.Template != "" {
		add(modelfile.Template, "", req.Template)
	}
	if req.System != "" {
		add(modelfile.System, "", req.System)
	}
	names := make([]string, 0, len(req.Parameters))
	for k := range req.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > 0 {
		params, err := modelfile.Normalize(req.Parameters)
		if err != nil {
			return nil, fmt.Errorf("%w: parameters: %w", server.ErrBadRequest, err)
		}
		for _, k := range names {
			for _, v := range modelfile.FormatValue(params[k]) {
				add(modelfile.Parameter, k, v)
			}
		}
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return nil, fmt.Errorf("%w: messages[%d].role must be system, user or assistant", server.ErrBadRequest, i)
		}
		add(modelfile.Message, m.Role, m.Content)
	}
	for _, l := range req.License {
		add(modelfile.License, "", l)
	}
	return mf, nil
}

// Create implements server.Builder.
func (b *Builder) Create(ctx context.Context, req *api.CreateRequest, fn func(api.ProgressResponse) error) error {
	mf, err := modelfileOf(req)
	if err != nil {
		return err
	}
	for _, c := range mf.Commands {
		if c.Instruction == modelfile.Template {
			if err := server.CheckTemplate(c.Value); err != nil {
				return err
			}
		}
	}
	breq := build.Request{Modelfile: mf, Tags: []string{req.Model}, Quantize: req.Quantize, Home: b.Home}
	if len(req.Files) > 0 {
		breq.Files = map[string]digest.Digest{}
		for k, v := range req.Files {
			breq.Files[k] = digest.Digest(v)
		}
	}
	if len(req.Adapters) > 0 {
		breq.Adapters = map[string]digest.Digest{}
		for k, v := range req.Adapters {
			breq.Adapters[k] = digest.Digest(v)
		}
	}
	var sendErr error
	_, err = b.Builder.Build(ctx, breq, func(ev build.Event) {
		if sendErr != nil || ev.Status == "success" {
			return // the server sends "success" itself
		}
		sendErr = fn(api.ProgressResponse{Status: ev.Status, Digest: ev.Digest, Total: ev.Total, Completed: ev.Completed})
	})
	if err == nil {
		err = sendErr
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, build.ErrNotFound):
		return mark(server.ErrNotFound, err)
	case errors.Is(err, build.ErrInvalidRequest), errors.Is(err, build.ErrInvalidWeights),
		errors.Is(err, modelfile.ErrUnknownParameter), errors.Is(err, modelfile.ErrInvalidParameterValue),
		errors.Is(err, oci.ErrInvalidReference),
		errors.Is(err, quantize.ErrUnknownType), errors.Is(err, quantize.ErrAlreadyQuantized):
		return fmt.Errorf("%w: %w", server.ErrBadRequest, err)
	case errors.Is(err, build.ErrUnsupported):
		return fmt.Errorf("%w: %w", server.ErrUnsupported, err)
	}
	return err
}

// mark wraps err with the server's sentinel so that the server answers
// with its status. When err's message already begins with the sentinel's
// text (build and server both say "not found"), the message is kept as it
// is rather than saying it twice.
func mark(sentinel, err error) error {
	if strings.HasPrefix(err.Error(), sentinel.Error()) {
		return &marked{sentinel: sentinel, err: err}
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// marked is err that also matches sentinel with errors.Is.
type marked struct{ sentinel, err error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.sentinel, m.err} }
