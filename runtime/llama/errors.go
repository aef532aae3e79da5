package llama

import "errors"

// Sentinel errors. Functions wrap them with detail (a path, a key, a code);
// test with errors.Is.
var (
	// ErrNoCGO is returned by every entry point of a build without cgo.
	ErrNoCGO = errors.New("inference needs a cgo build of olm; build with CGO_ENABLED=1 after scripts/llama-cpp.sh")

	// ErrClosed is returned when a Model, Context, Batch, Sampler or
	// ChatTemplates is used after Close.
	ErrClosed = errors.New("llama: use after Close")

	// ErrLoad means llama.cpp could not load a model file: missing,
	// truncated, corrupt, or of an unsupported architecture.
	ErrLoad = errors.New("llama: cannot load model")

	// ErrContext means llama.cpp could not create an inference context
	// (usually: not enough memory for the requested NumCtx).
	ErrContext = errors.New("llama: cannot create context")

	// ErrNoKVSlot means Decode found no room in the KV cache for the batch:
	// free some sequences or use a larger NumCtx.
	ErrNoKVSlot = errors.New("llama: no KV cache slot for batch")

	// ErrAborted means Decode was stopped because its context.Context was
	// cancelled; the error also wraps ctx.Err().
	ErrAborted = errors.New("llama: decode aborted")

	// ErrInvalidBatch means llama.cpp rejected the batch (bad token id,
	// sequence id ≥ NumSeqMax, positions out of order, empty batch).
	ErrInvalidBatch = errors.New("llama: invalid batch")

	// ErrDecode is a fatal decode error inside llama.cpp.
	ErrDecode = errors.New("llama: decode failed")

	// ErrBatchFull is returned by Batch.Add when the batch is at capacity.
	ErrBatchFull = errors.New("llama: batch is full")

	// ErrTokenize means text could not be tokenized.
	ErrTokenize = errors.New("llama: tokenize failed")

	// ErrNoOutput means logits or embeddings were asked for an index or
	// sequence that produced no output in the last Decode.
	ErrNoOutput = errors.New("llama: no output for that index")

	// ErrGrammar means a GBNF grammar (or a lazy-grammar trigger pattern)
	// did not parse, or the grammar reached a state that no token can
	// continue.
	ErrGrammar = errors.New("llama: invalid grammar")

	// ErrSampler means sampler parameters are out of range.
	ErrSampler = errors.New("llama: invalid sampler parameters")

	// ErrTemplate means a chat template did not parse or failed to render
	// the given messages.
	ErrTemplate = errors.New("llama: chat template failed")

	// ErrChatParse means model output could not be parsed with the chat
	// format's parser.
	ErrChatParse = errors.New("llama: cannot parse chat output")

	// ErrSchema means a JSON schema could not be converted to a grammar.
	ErrSchema = errors.New("llama: invalid JSON schema")

	// ErrUnknownFileType means a quantization type name is not one that
	// Quantize supports; FileTypes lists those.
	ErrUnknownFileType = errors.New("llama: unknown quantization type")

	// ErrAlreadyQuantized means Quantize was given a model whose weights are
	// already quantized; quantize from an F32, F16 or BF16 model instead.
	ErrAlreadyQuantized = errors.New("llama: model is already quantized")

	// ErrQuantize means llama_model_quantize failed.
	ErrQuantize = errors.New("llama: quantize failed")

	// ErrImage means image bytes could not be decoded (not JPEG, PNG, BMP
	// or GIF), or a prompt's image markers do not match its images.
	ErrImage = errors.New("llama: invalid image")
)
