package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/olmhq/olm/api"
)

// progress runs op and answers with its progress objects: a stream, or
// only the last object (normally {"status":"success"}) when stream is false.
func (s *Server) progress(w http.ResponseWriter, r *http.Request, stream *bool, op func(ctx context.Context, emit func(api.ProgressResponse) error) error) (any, error) {
	if streaming(stream) {
		out := &ndjson{w: w}
		err := op(r.Context(), func(p api.ProgressResponse) error { return out.send(p) })
		if err != nil {
			return nil, err
		}
		return nil, out.send(api.ProgressResponse{Status: "success"})
	}
	if err := op(r.Context(), func(api.ProgressResponse) error { return nil }); err != nil {
		return nil, err
	}
	return &api.ProgressResponse{Status: "success"}, nil
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var req api.CreateRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := requireModel(&req.Model, req.Name); err != nil {
		return nil, err
	}
	for name, d := range req.Files {
		if !digestRE.MatchString(d) {
			return nil, fmt.Errorf("%w: files[%q]: invalid digest %q", ErrBadRequest, name, d)
		}
	}
	for name, d := range req.Adapters {
		if !digestRE.MatchString(d) {
			return nil, fmt.Errorf("%w: adapters[%q]: invalid digest %q", ErrBadRequest, name, d)
		}
	}
	if req.Parameters != nil {
		if _, err := api.OptionsFromMap(req.Parameters); err != nil {
			return nil, fmt.Errorf("%w: parameters: %v", ErrBadRequest, err)
		}
	}
	if req.From == "" && len(req.Files) == 0 && req.Modelfile == "" {
		return nil, fmt.Errorf("%w: one of from, files or modelfile is required", ErrBadRequest)
	}
	if s.opts.Builder == nil {
		return nil, fmt.Errorf("%w: this server has no model builder", ErrNotImplemented)
	}
	return s.progress(w, r, req.Stream, func(ctx context.Context, emit func(api.ProgressResponse) error) error {
		return s.opts.Builder.Create(ctx, &req, emit)
	})
}

// pullStatus turns a transfer event into Ollama's pull progress object.
func pullStatus(ev TransferEvent) api.ProgressResponse {
	switch ev.Phase {
	case PhaseManifest:
		return api.ProgressResponse{Status: "pulling manifest"}
	case PhaseLayer:
		return api.ProgressResponse{Status: "downloading " + ev.Digest, Digest: ev.Digest, Total: ev.Total, Completed: ev.Completed}
	case PhaseVerify:
		return api.ProgressResponse{Status: "verifying sha256 digest"}
	case PhasePrune:
		return api.ProgressResponse{Status: "removing any unused layers"}
	default:
		return api.ProgressResponse{Status: "writing manifest"}
	}
}

func (s *Server) handlePull(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var req api.PullRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := requireModel(&req.Model, req.Name); err != nil {
		return nil, err
	}
	if s.opts.Transfers == nil {
		return nil, fmt.Errorf("%w: this server cannot pull", ErrNotImplemented)
	}
	return s.progress(w, r, req.Stream, func(ctx context.Context, emit func(api.ProgressResponse) error) error {
		return s.opts.Transfers.Pull(ctx, req.Model, req.Insecure, func(ev TransferEvent) error { return emit(pullStatus(ev)) })
	})
}

func (s *Server) handlePush(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var req api.PushRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := requireModel(&req.Model, req.Name); err != nil {
		return nil, err
	}
	if s.opts.Transfers == nil {
		return nil, fmt.Errorf("%w: this server cannot push", ErrNotImplemented)
	}
	return s.progress(w, r, req.Stream, func(ctx context.Context, emit func(api.ProgressResponse) error) error {
		started := map[string]bool{}
		return s.opts.Transfers.Push(ctx, req.Model, req.Insecure, func(ev TransferEvent) error {
			switch ev.Phase {
			case PhaseManifest:
				return emit(api.ProgressResponse{Status: "retrieving manifest"})
			case PhaseLayer:
				if !started[ev.Digest] {
					started[ev.Digest] = true
					if err := emit(api.ProgressResponse{Status: "starting upload", Digest: ev.Digest, Total: ev.Total}); err != nil {
						return err
					}
				}
				return emit(api.ProgressResponse{Status: "uploading " + ev.Digest, Digest: ev.Digest, Total: ev.Total, Completed: ev.Completed})
			case PhaseVerify, PhasePrune:
				return nil
			default:
				return emit(api.ProgressResponse{Status: "pushing manifest"})
			}
		})
	})
}
