package api

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrInvalidDuration means a keep_alive value was neither a duration string
// ("5m", "1h30m", "-1") nor a number of seconds.
var ErrInvalidDuration = errors.New("invalid duration")

// StatusError is the error a Client returns for a non-2xx response, and the
// JSON shape of every error the server writes: {"error": "message"}.
type StatusError struct {
	// StatusCode is the HTTP status (0 for an error sent inside a stream).
	StatusCode int `json:"-"`
	// Status is the HTTP status line text, such as "404 Not Found".
	Status string `json:"-"`
	// ErrorMessage is the server's message.
	ErrorMessage string `json:"error"`
}

// Error returns the server's message, prefixed with the status when known.
func (e *StatusError) Error() string {
	switch {
	case e.ErrorMessage != "" && e.StatusCode != 0:
		return fmt.Sprintf("%s (status %d)", e.ErrorMessage, e.StatusCode)
	case e.ErrorMessage != "":
		return e.ErrorMessage
	case e.Status != "":
		return e.Status
	}
	return fmt.Sprintf("status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// ErrorResponse is the body of an error response: {"error": "message"}.
type ErrorResponse struct {
	// Error is a human-readable message naming what went wrong.
	Error string `json:"error"`
}
