// Package runner is the protocol between olm's server and its model runner
// processes, and the Go side that starts and talks to them.
//
// A runner is a child process (`olm runner --model PATH --socket PATH ...`,
// the same binary as the server) that loads one GGUF model through llama.cpp
// and serves HTTP on a unix socket. The server never links the model into its
// own address space: a crash in llama.cpp or a bad GGUF kills only the child.
//
// Endpoints (all JSON; streaming responses are newline-delimited JSON, one
// event per line, the last one with "done": true):
//
//	GET  /health      HealthResponse (200 once the model is loaded)
//	GET  /info        Info: model metadata, context size, slots, capabilities
//	POST /completion  CompletionRequest → stream of CompletionEvent
//	POST /chat        ChatRequest → stream of ChatEvent
//	POST /render      ChatRequest → RenderResponse (the templated prompt, no generation)
//	POST /tokenize    TokenizeRequest → TokenizeResponse
//	POST /detokenize  DetokenizeRequest → DetokenizeResponse
//	POST /embed       EmbedRequest → EmbedResponse
//
// Errors before a stream starts are a non-2xx status with an ErrorResponse
// body; an error during a stream is a final event whose "error" field is set.
// Client turns both into Go errors that match this package's sentinel errors
// with errors.Is.
//
// Closing a request's connection (cancelling the context given to a Client
// method) stops generation: the runner notices within one decoded token and
// frees the slot.
//
// Process starts a runner child, waits until it is healthy, keeps the tail of
// its stderr for error messages, and notices when it exits: every request in
// flight then fails with ErrRunnerExited and the child's last words.
//
// The runner side (model loading, slots, continuous batching) lives in
// package runtime/runner/engine, which needs cgo; this package does not.
package runner
