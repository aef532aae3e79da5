package runner

import "errors"

// Sentinel errors. Errors returned by Client and Process wrap one of these
// (match them with errors.Is) together with the runner's message.
var (
	// ErrRunnerExited means the runner process exited (crashed, was killed,
	// or failed to load its model) while a request was using it.
	ErrRunnerExited = errors.New("model runner exited unexpectedly")

	// ErrStartTimeout means the runner did not become healthy within
	// StartOptions.StartTimeout.
	ErrStartTimeout = errors.New("model runner did not start in time")

	// ErrBadRequest means the runner rejected a request as malformed
	// (HTTP 400 from the runner).
	ErrBadRequest = errors.New("bad request")

	// ErrContextLength means an input does not fit in the model's context
	// window and truncation was not allowed.
	ErrContextLength = errors.New("input exceeds the context length")

	// ErrUnsupported means the loaded model cannot do what was asked
	// (embeddings from a generation-only load, chat without a template,
	// images without a projector, ...).
	ErrUnsupported = errors.New("not supported by this model")

	// ErrLoading means the runner is up but still loading its model.
	ErrLoading = errors.New("model runner is still loading")

	// ErrProtocol means the runner answered something this client does not
	// understand (a bug or a version mismatch between server and runner).
	ErrProtocol = errors.New("runner protocol error")
)

// Error codes carried in ErrorResponse.Code and in stream events; each maps
// to one sentinel error above.
const (
	CodeBadRequest    = "bad_request"
	CodeContextLength = "context_length_exceeded"
	CodeUnsupported   = "unsupported"
	CodeLoading       = "loading"
	CodeInternal      = "internal"
)

// codeErr maps a wire error code to its sentinel error (nil for internal or
// unknown codes).
func codeErr(code string) error {
	switch code {
	case CodeBadRequest:
		return ErrBadRequest
	case CodeContextLength:
		return ErrContextLength
	case CodeUnsupported:
		return ErrUnsupported
	case CodeLoading:
		return ErrLoading
	}
	return nil
}

// CodeOf returns the wire error code for err: the code of the first
// sentinel error it wraps, or CodeInternal. The runner side uses it to
// answer errors.
func CodeOf(err error) string {
	switch {
	case errors.Is(err, ErrBadRequest):
		return CodeBadRequest
	case errors.Is(err, ErrContextLength):
		return CodeContextLength
	case errors.Is(err, ErrUnsupported):
		return CodeUnsupported
	case errors.Is(err, ErrLoading):
		return CodeLoading
	}
	return CodeInternal
}
