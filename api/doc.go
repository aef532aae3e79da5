// Package api holds the request and response types of olm's REST API, which
// is Ollama's API field for field (same JSON names, durations in
// nanoseconds, newline-delimited JSON streams), and a Go client for it.
//
// The types follow the API reference: GenerateRequest/GenerateResponse for
// POST /api/generate, ChatRequest/ChatResponse for POST /api/chat, and so
// on. Options is the typed form of the "options" object; every field is a
// pointer so that "not set" (take the model's or the default value) differs
// from an explicit zero.
//
// Client talks to a server at a base URL (Ollama's default
// http://127.0.0.1:11434, or ClientFromEnvironment's OLM_HOST/OLLAMA_HOST).
// Streaming endpoints call a callback for every object of the stream. A
// non-2xx answer becomes a *StatusError carrying the HTTP status and the
// server's {"error": "..."} message.
//
// The OpenAI-compatible API's types are in package api/openai.
package api
