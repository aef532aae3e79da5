// Package server is olm's HTTP API: Ollama's REST API (/api/...), the
// OpenAI-compatible API (/v1/...) and a health check, on httprouter.
//
// The server holds no model code. It declares the small interfaces it needs
// and is given implementations: Engine (load, run, unload and list models;
// backed by the runtime scheduler and runner processes), Models (the local
// store: list, resolve, show, copy, delete, blobs), Builder (POST
// /api/create) and Transfers (pull and push). Tests use fakes, so the
// package builds and tests without cgo.
//
// Every handler returns a value or an error; one function writes every
// error as {"error": "message"} (the OpenAI routes use OpenAI's error shape)
// with the status chosen by statusOf: 400 for bad requests (the message
// names the field), 404 for unknown models and blobs, 401 for a missing API
// key, 503 when a model's queue is full, 500 otherwise. Streaming endpoints
// write newline-delimited JSON (server-sent events on /v1), or one object
// when the request says "stream": false; an error after the stream started
// is sent as a last {"error": "..."} object.
//
// Prompts: by default the runner applies the model's own chat template
// (Jinja, from the GGUF or a chat-template layer). A model with a Modelfile
// TEMPLATE (Ollama's Go text/template with .System, .Prompt, .Response,
// .Suffix, .Messages, .Tools) is rendered here, and "raw" requests skip
// templating. A generate request with a suffix (fill in the middle) uses a
// template with .Suffix, else the vocabulary's FIM tokens as llama-server's
// /infill does ([BOS] PRE prefix SUF suffix MID); a model with neither
// cannot insert (400). The model's SYSTEM, MESSAGE and PARAMETER layers
// apply, and a request's options override its parameters.
//
// Security: requests whose Host header is not the bound host, localhost or
// a loopback address are refused (DNS rebinding) unless the server listens
// on all interfaces; CORS headers are sent only for Options.Origins; with
// Options.APIKey every request but the health check needs
// "Authorization: Bearer <key>".
//
// A Server is safe for concurrent use. A request's context is cancelled
// when its client disconnects, which stops generation in the runner.
package server
