// Package gguf reads and writes GGUF files, the model format of llama.cpp.
//
// Read parses the header (metadata key/values and tensor infos) of a GGUF
// file from an io.ReaderAt, so it works on local files and on store blobs
// alike. Every count, length and offset in a header is untrusted: the reader
// bounds them by the bytes really present and by fixed limits (see
// MaxHeaderSize, MaxStringLen, MaxArrayDepth), never allocates from a header
// number, and checks that every tensor lies inside the file.
//
// Writer streams a GGUF: it writes the header at once and then takes the
// tensor data, in header order, through its Write method, padding each tensor
// to the file's alignment. Tensor data of any type, quantized or not, passes
// through untouched.
//
// The on-disk layout (GGUF v3, little endian):
//
//	magic "GGUF" | version u32 | tensor count u64 | kv count u64
//	kv:     key (u64 len + bytes) | value type u32 | value
//	tensor: name | n_dims u32 | dims u64 × n_dims | ggml type u32 | offset u64
//	padding to general.alignment (default 32)
//	tensor data, each tensor at its offset from here, padded to the alignment
//
// A File is immutable after Read and safe for concurrent use.
package gguf
