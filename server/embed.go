package server

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/runner"
)

// embed computes embeddings for req (shared by /api/embed,
// /api/embeddings and /v1/embeddings): L2-normalized vectors, or with raw
// the vectors as the model pools them (the legacy /api/embeddings).
func (s *Server) embed(ctx context.Context, req *api.EmbedRequest, raw bool) (*api.EmbedResponse, error) {
	start := time.Now()
	if err := validateOptions(req.Options); err != nil {
		return nil, err
	}
	if req.Dimensions < 0 {
		return nil, fmt.Errorf("%w: dimensions must not be negative", ErrBadRequest)
	}
	m, err := s.resolve(ctx, "model", req.Model)
	if err != nil {
		return nil, err
	}
	a, err := s.acquire(ctx, m, req.Options, req.KeepAlive, false)
	if err != nil {
		return nil, err
	}
	defer a.release()
	out := &api.EmbedResponse{Model: req.Model, Embeddings: [][]float32{}}
	if len(req.Input) > 0 {
		truncate := req.Truncate == nil || *req.Truncate
		res, err := a.r.Embed(ctx, runner.EmbedRequest{Input: req.Input, Truncate: truncate, Raw: raw})
		if err != nil {
			return nil, err
		}
		if len(res.Embeddings) != len(req.Input) {
			return nil, fmt.Errorf("runner returned %d embeddings for %d inputs", len(res.Embeddings), len(req.Input))
		}
		for _, e := range res.Embeddings {
			if req.Dimensions > 0 {
				if req.Dimensions > len(e) {
					return nil, fmt.Errorf("%w: dimensions %d is larger than the model's embedding size %d", ErrBadRequest, req.Dimensions, len(e))
				}
				e = normalize(e[:req.Dimensions])
			}
			out.Embeddings = append(out.Embeddings, e)
		}
		out.PromptEvalCount = res.PromptEvalCount
	}
	out.LoadDuration = a.load
	out.TotalDuration = time.Since(start)
	return out, nil
}

// normalize returns v scaled to unit length (a copy).
func normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	n := math.Sqrt(sum)
	if n == 0 {
		copy(out, v)
		return out
	}
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

func (s *Server) handleEmbed(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var req api.EmbedRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return s.embed(r.Context(), &req, false)
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request, _ httprouter.Params) (any, error) {
	var req api.EmbeddingRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ereq := api.EmbedRequest{Model: req.Model, KeepAlive: req.KeepAlive, Options: req.Options}
	if req.Prompt != "" {
		ereq.Input = api.EmbedInput{req.Prompt}
	}
	res, err := s.embed(r.Context(), &ereq, true)
	if err != nil {
		return nil, err
	}
	out := &api.EmbeddingResponse{Embedding: []float64{}}
	if len(res.Embeddings) > 0 {
		for _, x := range res.Embeddings[0] {
			out.Embedding = append(out.Embedding, float64(x))
		}
	}
	return out, nil
}
