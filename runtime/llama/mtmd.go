//go:build cgo

package llama

// Multimodal input through llama.cpp's libmtmd (tools/mtmd): a projector
// GGUF (Ollama's "projector" layer, llama.cpp's mmproj) turns images into
// embeddings that are decoded into a sequence like tokens.
//
// libmtmd is linked by cgo.go's LDFLAGS (before libllama and ggml).

/*
#cgo CFLAGS: -I${SRCDIR}/llama.cpp/src/tools/mtmd
#include <stdlib.h>
#include <string.h>
#include "llama.h"
#include "ggml.h"
#include "mtmd.h"
#include "mtmd-helper.h"
#include "shim.h"

// olm_mtmd_log_init sends libmtmd's (clip's) log lines to the callback
// llama.cpp logs through, so they share olm's level filter and last-error
// capture.
static void olm_mtmd_log_init(void) {
	ggml_log_callback cb = NULL;
	void * ud = NULL;
	ggml_log_get(&cb, &ud);
	if (cb) {
		mtmd_helper_log_set(cb, ud);
	}
}

static mtmd_context * olm_mtmd_init(const char * path, const struct llama_model * m, int n_threads, bool use_gpu, const char * marker) {
	struct mtmd_context_params p = mtmd_context_params_default();
	p.use_gpu = use_gpu;
	p.print_timings = false;
	p.warmup = false;
	if (n_threads > 0) {
		p.n_threads = n_threads;
	}
	if (marker) {
		p.media_marker = marker;
	}
	return mtmd_init_from_file(path, m, p);
}

// olm_mtmd_logits_last makes the last embedding of the image chunk just
// decoded at [n_past-n_tokens, n_past) produce logits: libmtmd decodes image
// embeddings without output, so a prompt that ends with an image would have
// nothing to sample from. The last position is removed from the KV cache and
// decoded again, alone, with output (with the chunk's attention mode, so its
// KV entry and output are what the full decode computed).
static int32_t olm_mtmd_logits_last(mtmd_context * ctx, struct llama_context * lctx, const mtmd_input_chunk * chunk,
                                    llama_pos n_past, llama_seq_id seq) {
	size_t n_tokens = mtmd_input_chunk_get_n_tokens(chunk);
	float * embd = mtmd_get_output_embd(ctx);
	int n_embd = llama_model_n_embd_inp(llama_get_model(lctx));
	if (!embd || n_tokens == 0) {
		return -1;
	}
	if (!llama_memory_seq_rm(llama_get_memory(lctx), seq, n_past - 1, n_past)) {
		return -1;
	}
	llama_batch b = llama_batch_init(1, n_embd, 1);
	memcpy(b.embd, embd + (n_tokens - 1) * (size_t)n_embd, (size_t)n_embd * sizeof(float));
	b.pos[0] = n_past - 1;
	b.n_seq_id[0] = 1;
	b.seq_id[0][0] = seq;
	b.logits[0] = 1;
	b.n_tokens = 1;
	bool non_causal = mtmd_decode_use_non_causal(ctx, chunk);
	if (non_causal) {
		llama_set_causal_attn(lctx, false);
	}
	int32_t rc = llama_decode(lctx, b);
	if (non_causal) {
		llama_set_causal_attn(lctx, true);
	}
	llama_batch_free(b);
	return rc;
}

// Evaluating a chunk computes graphs (the image encoder's, then decodes)
// on the CPU backend's OpenMP team, so it runs on the process's decoder
// thread (shim.cpp says why).
struct olm_mtmd_eval_job {
	mtmd_context * ctx;
	struct llama_context * lctx;
	const mtmd_input_chunk * chunk;
	llama_pos n_past;
	llama_seq_id seq;
	int32_t n_batch;
	bool logits_last;
	llama_pos * new_past;
};

static int32_t olm_mtmd_eval_fn(void * arg) {
	struct olm_mtmd_eval_job * j = arg;
	return mtmd_helper_eval_chunk_single(j->ctx, j->lctx, j->chunk, j->n_past, j->seq, j->n_batch, j->logits_last, j->new_past);
}

static int32_t olm_mtmd_logits_last_fn(void * arg) {
	struct olm_mtmd_eval_job * j = arg;
	return olm_mtmd_logits_last(j->ctx, j->lctx, j->chunk, j->n_past, j->seq);
}

static int32_t olm_mtmd_eval(olm_decoder * d, mtmd_context * ctx, struct llama_context * lctx, const mtmd_input_chunk * chunk,
                             llama_pos n_past, llama_seq_id seq, int32_t n_batch, bool logits_last, llama_pos * new_past, bool last_only) {
	struct olm_mtmd_eval_job j = { ctx, lctx, chunk, n_past, seq, n_batch, logits_last, new_past };
	return olm_decoder_call(d, last_only ? olm_mtmd_logits_last_fn : olm_mtmd_eval_fn, &j);
}

static int32_t olm_mtmd_tokenize(const mtmd_context * ctx, mtmd_input_chunks * out, const char * text, size_t len,
                                 bool add_special, bool parse_special, const mtmd_bitmap ** bitmaps, size_t n) {
	mtmd_input_text t;
	t.text = text;
	t.text_len = len;
	t.add_special = add_special;
	t.parse_special = parse_special;
	return mtmd_tokenize(ctx, out, &t, bitmaps, n);
}
*/
import "C"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"
)

var mtmdLogOnce sync.Once

// ProjectorParams configure LoadProjector. The zero value is CPU with
// llama.cpp's default thread count and the marker DefaultMediaMarker.
type ProjectorParams struct {
	// UseGPU runs the vision encoder on the GPU when the build has one.
	UseGPU bool
	// NumThreads is the encoder's CPU threads; 0 means llama.cpp's default.
	NumThreads int
	// Marker is the text that stands for one image in a prompt given to
	// Tokenize; "" means DefaultMediaMarker().
	Marker string
}

// Projector is a multimodal projector (mmproj) loaded for a Model: it
// encodes images into embeddings the model's context decodes. Tokenize and
// NewBitmap are safe for concurrent use; EvalChunk must not run
// concurrently with itself or with other use of the Context. Close frees it.
type Projector struct {
	closer
	m      *Model
	p      *C.mtmd_context
	path   string
	marker string
	cmark  *C.char
}

// DefaultMediaMarker returns libmtmd's default media marker ("<__media__>").
func DefaultMediaMarker() string { return C.GoString(C.mtmd_default_marker()) }

// LoadProjector loads the projector GGUF at path for m. A file that is not
// a projector, or one whose output size does not match m's embeddings,
// gives an error wrapping ErrLoad.
func (m *Model) LoadProjector(path string, p ProjectorParams) (*Projector, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: projector: %w", ErrLoad, err)
	} else if fi.IsDir() {
		return nil, fmt.Errorf("%w: projector %s is a directory", ErrLoad, path)
	}
	if err := m.acquire(); err != nil {
		return nil, err
	}
	mtmdLogOnce.Do(func() { initBackend(); C.olm_mtmd_log_init() })
	marker := p.Marker
	if marker == "" {
		marker = DefaultMediaMarker()
	}
	cpath := cstr(path)
	defer free(cpath)
	cmark := cstr(marker) // kept: mtmd keeps the pointer's string
	lastError()
	mc := C.olm_mtmd_init(cpath, m.p, C.int(p.NumThreads), C.bool(p.UseGPU), cmark)
	if mc == nil {
		free(cmark)
		m.release()
		return nil, fmt.Errorf("%w: projector %s: %s", ErrLoad, path, orDefault(lastError(), "libmtmd could not load it (not a projector GGUF, or not made for this model)"))
	}
	if !bool(C.mtmd_support_vision(mc)) {
		C.mtmd_free(mc)
		free(cmark)
		m.release()
		return nil, fmt.Errorf("%w: projector %s has no vision encoder (audio-only projectors are not supported)", ErrLoad, path)
	}
	pr := &Projector{m: m, p: mc, path: path, marker: marker, cmark: cmark}
	runtime.SetFinalizer(pr, (*Projector).Close)
	return pr, nil
}

// Close frees the projector. It is idempotent.
func (p *Projector) Close() error {
	if p == nil || !p.markClosed() {
		return nil
	}
	runtime.SetFinalizer(p, nil)
	C.mtmd_free(p.p)
	free(p.cmark)
	p.p, p.cmark = nil, nil
	p.m.release()
	return nil
}

func (p *Projector) ok() bool { return p != nil && p.p != nil }

// Marker returns the text that stands for one image in Tokenize's input.
func (p *Projector) Marker() string { return p.marker }

// Path returns the projector's file path.
func (p *Projector) Path() string { return p.path }

// UsesMRoPE reports whether the model decodes images with multi-axis RoPE
// positions (Qwen2-VL and kin): such a sequence's positions are not one per
// token, and shifting its KV cache is not possible.
func (p *Projector) UsesMRoPE() bool { return p.ok() && bool(C.mtmd_decode_use_mrope(p.p)) }

// Bitmap is a decoded image ready for Tokenize. Close frees it.
type Bitmap struct {
	closer
	p *C.mtmd_bitmap
}

// NewBitmap decodes an image file's bytes (JPEG, PNG, GIF, BMP or WebP,
// with DecodeImage: in Go, never by C image parsers). Bytes that are not
// such an image give an error wrapping ErrImage.
func (p *Projector) NewBitmap(data []byte) (*Bitmap, error) {
	if !p.ok() {
		return nil, ErrClosed
	}
	rgb, w, h, err := DecodeImage(data)
	if err != nil {
		return nil, err
	}
	// mtmd_bitmap_init copies the pixels: a Go pointer for the call is fine.
	bm := C.mtmd_bitmap_init(C.uint32_t(w), C.uint32_t(h), (*C.uchar)(unsafe.Pointer(&rgb[0])))
	if bm == nil {
		return nil, fmt.Errorf("%w: libmtmd could not take a %d×%d image", ErrImage, w, h)
	}
	sum := sha256.Sum256(data)
	id := C.CString(hex.EncodeToString(sum[:]))
	C.mtmd_bitmap_set_id(bm, id) // copied
	free(id)
	b := &Bitmap{p: bm}
	runtime.SetFinalizer(b, (*Bitmap).Close)
	return b, nil
}

// Size returns the image's width and height in pixels.
func (b *Bitmap) Size() (int, int) {
	if b == nil || b.p == nil {
		return 0, 0
	}
	return int(C.mtmd_bitmap_get_nx(b.p)), int(C.mtmd_bitmap_get_ny(b.p))
}

// Close frees the bitmap. It is idempotent.
func (b *Bitmap) Close() error {
	if b == nil || !b.markClosed() {
		return nil
	}
	runtime.SetFinalizer(b, nil)
	C.mtmd_bitmap_free(b.p)
	b.p = nil
	return nil
}

// Chunks is a tokenized multimodal prompt: text chunks (tokens) and image
// chunks in prompt order. Close frees it.
type Chunks struct {
	closer
	pr *Projector
	p  *C.mtmd_input_chunks
}

// Chunk describes one chunk of Chunks.
type Chunk struct {
	// Image is true for an image chunk, false for text.
	Image bool
	// Tokens are a text chunk's tokens (nil for an image).
	Tokens []Token
	// NumTokens is the number of KV cache cells the chunk takes.
	NumTokens int
	// NumPos is the number of positions the chunk advances the sequence
	// (NumTokens, except with multi-axis RoPE).
	NumPos int
	// ID identifies an image chunk's content (a hash of the image); "" for
	// text.
	ID string
}

// Tokenize tokenizes text in which each Marker() stands for the next of
// bitmaps (their counts must match). addSpecial adds BOS as the
// vocabulary wants; parseSpecial parses special-token text. A count
// mismatch or an image the encoder cannot preprocess gives an error
// wrapping ErrImage.
func (p *Projector) Tokenize(text string, bitmaps []*Bitmap, addSpecial, parseSpecial bool) (*Chunks, error) {
	if !p.ok() {
		return nil, ErrClosed
	}
	n := len(bitmaps)
	var arr **C.mtmd_bitmap
	if n > 0 {
		mem := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof((*C.mtmd_bitmap)(nil))))
		defer C.free(mem)
		ptrs := unsafe.Slice((**C.mtmd_bitmap)(mem), n)
		for i, b := range bitmaps {
			if b == nil || b.p == nil {
				return nil, fmt.Errorf("%w: bitmap %d", ErrClosed, i)
			}
			ptrs[i] = b.p
		}
		arr = (**C.mtmd_bitmap)(mem)
	}
	ctext := C.CString(text)
	defer free(ctext)
	out := C.mtmd_input_chunks_init()
	lastError()
	rc := C.olm_mtmd_tokenize(p.p, out, ctext, C.size_t(len(text)), C.bool(addSpecial), C.bool(parseSpecial), arr, C.size_t(n))
	runtime.KeepAlive(bitmaps)
	runtime.KeepAlive(p)
	switch rc {
	case 0:
	case 1:
		C.mtmd_input_chunks_free(out)
		return nil, fmt.Errorf("%w: the prompt has a different number of image markers than the %d images", ErrImage, n)
	case 2:
		C.mtmd_input_chunks_free(out)
		return nil, fmt.Errorf("%w: preprocessing failed: %s", ErrImage, orDefault(lastError(), "the projector could not preprocess an image"))
	default:
		C.mtmd_input_chunks_free(out)
		return nil, fmt.Errorf("%w: mtmd_tokenize returned %d: %s", ErrTokenize, int(rc), lastError())
	}
	if err := p.m.acquire(); err != nil {
		C.mtmd_input_chunks_free(out)
		return nil, err
	}
	c := &Chunks{pr: p, p: out}
	runtime.SetFinalizer(c, (*Chunks).Close)
	return c, nil
}

// Close frees the chunks. It is idempotent.
func (c *Chunks) Close() error {
	if c == nil || !c.markClosed() {
		return nil
	}
	runtime.SetFinalizer(c, nil)
	C.mtmd_input_chunks_free(c.p)
	c.p = nil
	c.pr.m.release()
	return nil
}

// Len returns the number of chunks.
func (c *Chunks) Len() int {
	if c == nil || c.p == nil {
		return 0
	}
	return int(C.mtmd_input_chunks_size(c.p))
}

// Chunk returns chunk i (0 ≤ i < Len()).
func (c *Chunks) Chunk(i int) Chunk {
	ch := C.mtmd_input_chunks_get(c.p, C.size_t(i))
	out := Chunk{
		NumTokens: int(C.mtmd_input_chunk_get_n_tokens(ch)),
		NumPos:    int(C.mtmd_input_chunk_get_n_pos(ch)),
	}
	if C.mtmd_input_chunk_get_type(ch) == C.MTMD_INPUT_CHUNK_TYPE_TEXT {
		var n C.size_t
		toks := C.mtmd_input_chunk_get_tokens_text(ch, &n)
		if n > 0 {
			src := unsafe.Slice((*Token)(unsafe.Pointer(toks)), int(n))
			out.Tokens = append([]Token(nil), src...)
		}
		return out
	}
	out.Image = true
	if id := C.mtmd_input_chunk_get_id(ch); id != nil {
		out.ID = C.GoString(id)
	}
	return out
}

// EvalChunk encodes chunk i of chunks (an image: through the projector;
// text: as tokens) and decodes it into sequence seq of c at position
// nPast, in batches of at most nBatch tokens. With logitsLast the last
// token's (or image embedding's) logits are kept (sample them with index
// -1). It returns the next
// position. It blocks until done; ctx is checked before it starts.
func (c *Context) EvalChunk(ctx context.Context, p *Projector, chunks *Chunks, i, nPast, seq, nBatch int, logitsLast bool) (int, error) {
	if !c.ok() || !p.ok() || chunks == nil || chunks.p == nil {
		return nPast, ErrClosed
	}
	if p.m != c.m || chunks.pr != p {
		return nPast, fmt.Errorf("%w: projector and context belong to different models", ErrInvalidBatch)
	}
	if i < 0 || i >= chunks.Len() {
		return nPast, fmt.Errorf("%w: chunk %d of %d", ErrInvalidBatch, i, chunks.Len())
	}
	if err := ctx.Err(); err != nil {
		return nPast, fmt.Errorf("%w: %w", ErrAborted, err)
	}
	newPast := C.llama_pos(nPast) // the helper adds to it for text chunks
	lastError()
	rc := C.olm_mtmd_eval(c.dec, p.p, c.p, C.mtmd_input_chunks_get(chunks.p, C.size_t(i)),
		C.llama_pos(nPast), C.llama_seq_id(seq), C.int32_t(nBatch), C.bool(logitsLast), &newPast, false)
	runtime.KeepAlive(chunks)
	runtime.KeepAlive(p)
	if rc != 0 {
		return nPast, fmt.Errorf("%w: evaluating %s chunk %d: code %d: %s", ErrDecode, map[bool]string{true: "image", false: "text"}[chunks.Chunk(i).Image], i, int(rc), lastError())
	}
	if logitsLast && chunks.Chunk(i).Image {
		if p.UsesMRoPE() {
			return int(newPast), fmt.Errorf("%w: a prompt cannot end with an image for this model (multi-axis positions); put text after it", ErrInvalidBatch)
		}
		rc := C.olm_mtmd_eval(c.dec, p.p, c.p, C.mtmd_input_chunks_get(chunks.p, C.size_t(i)), newPast, C.llama_seq_id(seq), 0, false, nil, true)
		runtime.KeepAlive(chunks)
		if rc != 0 {
			return int(newPast), fmt.Errorf("%w: output for the image at the end of the prompt: code %d: %s", ErrDecode, int(rc), lastError())
		}
	}
	return int(newPast), nil
}
