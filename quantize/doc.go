// Package quantize turns an F32, F16 or BF16 GGUF model into a quantized
// GGUF (Q4_K_M, Q8_0, ...) with llama.cpp's llama_model_quantize.
//
// llama.cpp runs only in runtime/llama, behind cgo, and a crash inside it
// must not take a server down, so a Quantizer never calls it in-process: it
// runs a worker child process (`olm quantize-worker`; WorkerArgs gives its
// command line, and its exit codes ExitUnknownType and ExitAlreadyQuantized
// map back to sentinel errors), watches the output grow to report
// progress, and kills the worker when the context is cancelled. The result
// is written to a private temporary folder beside the output and renamed
// into place only after it has been read back as a valid GGUF of the
// requested type, so a failed or interrupted run leaves nothing behind.
//
// Before starting, Check reads the input's header with internal/gguf and
// refuses input that is not GGUF, is truncated, or is already quantized.
package quantize
