// Package depcheck holds no code: its test enforces the shape of the module
// described in docs/architecture.md. Imports point one way (leaf packages ←
// storage and runtime ← build ← server ← cmd), cgo lives only in
// runtime/llama, and only cmd/olm reads the environment or exits.
package depcheck
