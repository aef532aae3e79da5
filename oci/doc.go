// Package oci knows how models look as OCI artifacts: references (Ollama-style
// short names and full OCI references), digests, the media types of every
// model format olm reads or writes, format detection and the single model view
// that the rest of olm works with.
//
// It knows nothing of HTTP APIs, inference or the command line, and reads no
// environment variables: callers pass defaults (such as the default registry)
// in explicitly.
//
// # References
//
// A short name behaves like Ollama's: "llama3.2" is
// registry.ollama.ai/library/llama3.2:latest and "ns/model:tag" is
// registry.ollama.ai/ns/model:tag. A name whose first path segment contains a
// "." or ":" or is "localhost" is a full OCI reference
// ("ghcr.io/org/team/model:tag", "localhost:5000/m@sha256:…"). See
// [ParseReference] and [Naming].
//
// # Digests
//
// Every digest that reaches a file path must pass [ParseDigest] or
// [ValidateDigest] first: only "sha256:" followed by 64 lowercase hex digits
// is accepted.
package oci
