// Package llama is olm's binding over llama.cpp: the only package in olm that
// imports "C".
//
// It has two layers. The raw layer (the cgo files, and shim.cpp for
// llama.cpp's C++ `common` library) calls llama.h of the pinned release and
// never lets a C type escape. The idiomatic layer above it gives Go types:
//
//   - Model: a GGUF file loaded (memory-mapped by default) with its
//     metadata and vocabulary (Tokenize, Detokenize, TokenToPiece, EOG checks).
//   - Context: an inference context over a Model with its KV cache (memory);
//     Decode runs a Batch of tokens for one or several sequences and is
//     abortable through a context.Context; Logits, Embeddings and
//     SeqEmbeddings read the results; the KV* methods edit the cache per
//     sequence.
//   - Batch: tokens with positions, sequence ids and an output flag, kept in C
//     memory so filling it costs no cgo calls.
//   - Sampler: the sampler chain that covers every Ollama option
//     (temperature, top_k, top_p, min_p, typical_p, repeat penalties,
//     presence/frequency penalties, seed, mirostat 1/2) plus grammar
//     constrained sampling (GBNF, lazy grammars with triggers).
//   - ChatTemplates: jinja chat templates through llama.cpp's common
//     (messages, tools, JSON schema → prompt, grammar, triggers, stops), and
//     ParseChat which splits model output into content, thinking and tool
//     calls. JSONSchemaToGrammar converts a JSON schema to GBNF.
//   - LoRA: adapters (Modelfile ADAPTER) loaded with Model.LoadLoRA and
//     applied with Context.SetLoRA.
//   - Projector: a multimodal projector (mmproj) through llama.cpp's libmtmd:
//     Model.LoadProjector, Projector.NewBitmap (images decoded in Go by
//     DecodeImage), Projector.Tokenize (text with image markers → Chunks)
//     and Context.EvalChunk (an image's embeddings into a sequence).
//   - Quantize: llama_model_quantize for olm's quantize helper.
//
// Every C resource has an explicit, idempotent Close; a finalizer frees what
// a caller forgot, as a safety net only. Errors from C become the sentinel
// errors in errors.go, wrapped with detail.
//
// llama.cpp's own logging is silenced by default (errors are still kept in
// the returned Go errors); SetLogLevel turns it back on.
//
// Building: run scripts/llama-cpp.sh first; it builds the pinned llama.cpp
// release and links it at runtime/llama/llama.cpp, where the #cgo directives
// find headers and static libraries. `-tags cuda` links the CUDA backend
// (build llama.cpp with OLM_CUDA=1). Without cgo (CGO_ENABLED=0) the package
// still compiles, and every entry point returns ErrNoCGO.
//
// Threads: llama.cpp's CPU backend runs each Decode on an OpenMP team
// started by the calling OS thread. A long-running decode loop should call
// runtime.LockOSThread so that every Decode starts from the same thread
// (and the same OpenMP team).
//
// Concurrency: a Model may be shared by goroutines for reading (metadata,
// tokenization) and by several Contexts. A Context, Batch, Sampler or
// ChatTemplates value must be used by one goroutine at a time. Close must
// not race with any other method on the same value.
package llama
