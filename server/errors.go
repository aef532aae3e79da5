package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/runtime/runner"
)

// Sentinel errors. Implementations of Engine, Models, Builder and Transfers
// wrap them (fmt.Errorf("%w: ...")) so the server answers with the right
// status; test with errors.Is.
var (
	// ErrNotFound means a model or blob does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrBadRequest means the request is malformed (400); the message names
	// the field.
	ErrBadRequest = errors.New("bad request")
	// ErrBusy means a model's request queue is full (503); retry later.
	ErrBusy = errors.New("server busy")
	// ErrUnauthorized means the API key is missing or wrong (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnsupported means the model cannot do what was asked (400), such
	// as embeddings from a model without them or a suffix without a
	// template that uses it.
	ErrUnsupported = errors.New("not supported by this model")
	// ErrForbidden means the Host header is not allowed (403).
	ErrForbidden = errors.New("forbidden")
	// ErrNotImplemented means no implementation was configured for an
	// endpoint (501).
	ErrNotImplemented = errors.New("not implemented")
)

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrUnsupported),
		errors.Is(err, oci.ErrInvalidReference), errors.Is(err, oci.ErrInvalidDigest),
		errors.Is(err, runner.ErrBadRequest), errors.Is(err, runner.ErrContextLength),
		errors.Is(err, runner.ErrUnsupported):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, context.Canceled):
		return 499 // client closed request; nobody reads it
	}
	return http.StatusInternalServerError
}
