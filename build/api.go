package build

import (
	"fmt"
	"maps"
	"slices"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/modelfile"
	"github.com/opencontainers/go-digest"
)

// RequestFromAPI turns an /api/create request into a build Request: the
// server calls it and then Builder.Build, streaming the events back as
// api.ProgressResponse values. Model (or the deprecated Name) is the tag;
// From becomes FROM; Files and Adapters are blobs already uploaded with
// /api/blobs; Template, System, License, Parameters and Messages become the
// Modelfile layers. An older client's whole Modelfile text is parsed
// instead (its relative paths cannot resolve on the server: Dir stays
// empty). Errors wrap ErrInvalidRequest or the modelfile package's
// sentinels.
func RequestFromAPI(r *api.CreateRequest) (Request, error) {
	name := r.Model
	if name == "" {
		name = r.Name
	}
	if name == "" {
		return Request{}, fmt.Errorf("%w: model is required", ErrInvalidRequest)
	}
	req := Request{Tags: []string{name}, Quantize: r.Quantize}
	if r.Modelfile != "" {
		mf, err := modelfile.ParseString(r.Modelfile)
		if err != nil {
			return Request{}, err
		}
		req.Modelfile = mf
		return req, nil
	}
	mf := &modelfile.Modelfile{}
	add := func(in modelfile.Instruction, name, v string) {
		mf.Commands = append(mf.Commands, modelfile.Command{Instruction: in, Name: name, Value: v})
	}
	if r.From != "" {
		add(modelfile.From, "", r.From)
	}
	var err error
	if req.Files, err = digests("file", r.Files); err != nil {
		return Request{}, err
	}
	if req.Adapters, err = digests("adapter", r.Adapters); err != nil {
		return Request{}, err
	}
	if r.From == "" && len(req.Files) == 0 {
		return Request{}, fmt.Errorf("%w: %w: give from (a model) or files (uploaded blobs)", ErrInvalidRequest, modelfile.ErrMissingFrom)
	}
	if r.Template != "" {
		add(modelfile.Template, "", r.Template)
	}
	if r.System != "" {
		add(modelfile.System, "", r.System)
	}
	if len(r.Parameters) > 0 {
		p, err := modelfile.Normalize(r.Parameters)
		if err != nil {
			return Request{}, err
		}
		mf.Commands = append(mf.Commands, p.Commands()...)
	}
	for _, m := range r.Messages {
		add(modelfile.Message, m.Role, m.Content)
	}
	for _, l := range r.License {
		add(modelfile.License, "", l)
	}
	req.Modelfile = mf
	return req, nil
}

func digests(what string, in map[string]string) (map[string]digest.Digest, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]digest.Digest, len(in))
	for _, name := range slices.Sorted(maps.Keys(in)) {
		d, err := digest.Parse(in[name])
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: digest %q: %w", ErrInvalidRequest, what, name, in[name], err)
		}
		out[name] = d
	}
	return out, nil
}
