//go:build cgo

package llama

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Model is a GGUF model loaded into llama.cpp. Its read methods are safe for
// concurrent use; Close must not race with them. Contexts, Samplers and
// ChatTemplates made from a Model keep its memory alive until they are
// closed too.
type Model struct {
	mu     sync.Mutex
	closed bool
	refs   int // open dependents (contexts, samplers, templates)

	p      *C.struct_llama_model
	vocab  *C.struct_llama_vocab
	path   string
	nVocab int
	nEmbd  int

	fit FitResult // how the GPU layers were chosen

	byteOnce sync.Once
	bytes    *[256]Token // byte tokens, for grammar prefill
}

var emptyCString = C.CString("") // shared, never freed

// LoadModel loads the GGUF model at path. ctx cancels a slow load (checked
// between tensors). A missing, truncated or corrupt file returns an error
// wrapping ErrLoad with llama.cpp's reason. (Some corruptions make
// llama.cpp abort the process; olm loads models in a runner process for
// that reason.)
func LoadModel(ctx context.Context, path string, p ModelParams) (*Model, error) {
	return loadModel(ctx, []string{path}, p)
}

// Fit says how the model's GPU layers were chosen (see
// ModelParams.FitGPU). Safe for concurrent use.
func (m *Model) Fit() FitResult { return m.fit }

// fitParams fits params (llama.cpp's defaults for what is fitted) for the
// single-file model at path to free device memory, counting the context
// p.FitContext; it returns the context params as the fit left them. On
// failure params is left as it was. The returned buffers (nil on failure)
// back the fitted params and must be freed with olm_fit_free after the
// model is loaded.
func fitParams(path string, params *C.struct_llama_model_params, p ModelParams) (FitResult, *C.olm_fit, C.struct_llama_context_params) {
	cp, err := p.FitContext.cParams()
	if err != nil {
		return FitResult{Status: FitError, Message: "not fitted: " + err.Error() + "; using llama.cpp's defaults"}, nil, cp
	}
	margin := p.FitMarginBytes
	if margin == 0 {
		margin = DefaultFitMargin
	}
	saved := *params
	cpath := cstr(path)
	defer free(cpath)
	var bufs *C.olm_fit
	lastError()
	st := FitStatus(C.olm_fit_params(cpath, params, &cp, C.size_t(margin), &bufs))
	if st == FitOK {
		return FitResult{Status: st}, bufs, cp
	}
	C.olm_fit_free(bufs)
	*params = saved
	why := "no parameters are projected to fit in free device memory"
	if st != FitFailure {
		why = "fitting failed"
		if msg := lastError(); msg != "" {
			why += ": " + msg
		}
	}
	return FitResult{Status: st, Message: why + "; using llama.cpp's defaults"}, nil, cp
}

// fitDefaults runs fitParams on llama.cpp's default model params for the
// model at path, whatever the build (tests call it on CPU builds, where
// LoadModel does not fit). It returns the result with the fitted
// n_gpu_layers, whether a tensor split or tensor buffer overrides were
// set, and the context size the fit left in the context params.
func fitDefaults(path string, fc ContextParams) (r FitResult, split, overrides bool, nCtx int) {
	initBackend()
	params := C.llama_model_default_params()
	r, bufs, cp := fitParams(path, &params, ModelParams{FitGPU: true, FitContext: fc})
	defer C.olm_fit_free(bufs)
	r.GPULayers = int(params.n_gpu_layers)
	return r, params.tensor_split != nil, params.tensor_buft_overrides != nil, int(cp.n_ctx)
}

// LoadModelSplits loads a split GGUF model from the paths of all its
// parts, first part first, whatever their file names (LoadModel finds
// later parts only by llama.cpp's "<name>-0000N-of-0000M.gguf" naming,
// which content-addressed blobs do not follow). One path is LoadModel.
// Parts missing, out of order, or of another split fail with ErrLoad.
func LoadModelSplits(ctx context.Context, paths []string, p ModelParams) (*Model, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no model path", ErrLoad)
	}
	return loadModel(ctx, paths, p)
}

func loadModel(ctx context.Context, paths []string, p ModelParams) (*Model, error) {
	path := paths[0]
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrLoad, path, err)
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrLoad, err)
		} else if fi.IsDir() {
			return nil, fmt.Errorf("%w: %s is a directory", ErrLoad, p)
		}
	}
	initBackend()

	params := C.llama_model_default_params()
	offload := SupportsGPUOffload()
	switch {
	case p.FitGPU && !offload:
		// nothing to fit: every layer stays on the CPU
		params.n_gpu_layers = 0
	case p.FitGPU:
		// n_gpu_layers stays llama.cpp's default (-1), which the fit lowers
	case p.NumGPULayers < 0:
		params.n_gpu_layers = -1
	default:
		params.n_gpu_layers = C.int32_t(min(p.NumGPULayers, math.MaxInt32))
	}
	switch {
	case p.UseMMap && p.UseMLock:
		params.load_mode = C.LLAMA_LOAD_MODE_MMAP_MLOCK
	case p.UseMMap:
		params.load_mode = C.LLAMA_LOAD_MODE_MMAP
	case p.UseMLock:
		params.load_mode = C.LLAMA_LOAD_MODE_MLOCK
	default:
		params.load_mode = C.LLAMA_LOAD_MODE_NONE
	}
	params.vocab_only = C.bool(p.VocabOnly)

	fit := FitResult{Status: FitNone}
	if p.FitGPU && offload {
		if len(paths) > 1 {
			fit.Message = "not fitted: fitting reads a split model by llama.cpp's file naming, which blobs do not follow; using llama.cpp's defaults"
		} else {
			var bufs *C.olm_fit
			fit, bufs, _ = fitParams(path, &params, p)
			// the fitted params point into bufs: keep them until loaded
			defer C.olm_fit_free(bufs)
		}
	}
	if offload {
		fit.GPULayers = int(params.n_gpu_layers)
	}

	flag := (*int32)(C.calloc(1, 4))
	defer C.free(unsafe.Pointer(flag))
	params.progress_callback = C.llama_progress_callback(C.olm_progress_cb)
	params.progress_callback_user_data = unsafe.Pointer(flag)
	stop := context.AfterFunc(ctx, func() { atomic.StoreInt32(flag, 1) })

	cpaths := make([]*C.char, len(paths))
	for i, p := range paths {
		cpaths[i] = cstr(p)
	}
	defer func() {
		for _, c := range cpaths {
			free(c)
		}
	}()
	lastError() // drop stale messages
	var mp *C.struct_llama_model
	if len(paths) == 1 {
		mp = C.llama_model_load_from_file(cpaths[0], params)
	} else {
		// a Go array of C pointers holds no Go pointers: cgo allows it
		mp = C.llama_model_load_from_splits(&cpaths[0], C.size_t(len(cpaths)), params)
	}
	if !stop() && ctx.Err() != nil {
		// the flag may have been read as set: report the cancellation
		if mp != nil {
			C.llama_model_free(mp)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrLoad, path, ctx.Err())
	}
	if mp == nil {
		msg := lastError()
		if msg == "" {
			msg = "llama.cpp could not load it (not a GGUF model, truncated, or unsupported)"
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrLoad, path, msg)
	}
	m := &Model{p: mp, path: path, fit: fit}
	m.vocab = C.llama_model_get_vocab(mp)
	m.nVocab = int(C.llama_vocab_n_tokens(m.vocab))
	m.nEmbd = int(C.llama_model_n_embd(mp))
	runtime.SetFinalizer(m, (*Model).Close)
	return m, nil
}

// Close releases the model. If Contexts, Samplers or ChatTemplates made from
// it are still open, the memory is freed when the last of them closes.
// Close is idempotent.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	runtime.SetFinalizer(m, nil)
	m.freeLocked()
	return nil
}

func (m *Model) freeLocked() {
	if m.closed && m.refs == 0 && m.p != nil {
		C.llama_model_free(m.p)
		m.p = nil
		m.vocab = nil
	}
}

// acquire registers a dependent; it fails once the model is closed.
func (m *Model) acquire() error {
	if m == nil {
		return fmt.Errorf("%w: nil model", ErrClosed)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.p == nil {
		return fmt.Errorf("%w: model %s", ErrClosed, m.path)
	}
	m.refs++
	return nil
}

// release unregisters a dependent and frees a closed model with none left.
func (m *Model) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refs--
	m.freeLocked()
}

// ok reports whether the model can be used.
func (m *Model) ok() bool { return m != nil && m.p != nil }

// Path returns the file the model was loaded from.
func (m *Model) Path() string { return m.path }

// getString calls a llama.cpp "write into buf, return length" function,
// growing the buffer as needed. It returns false when f returns < 0.
func getString(f func(buf *C.char, size C.size_t) C.int32_t) (string, bool) {
	var small [256]byte
	buf := small[:]
	for {
		n := f((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		if n < 0 {
			return "", false
		}
		if int(n) < len(buf) {
			return string(buf[:n]), true
		}
		buf = make([]byte, int(n)+1)
	}
}

// Meta returns the metadata value of key as a string (arrays are not
// available through llama.h) and whether the key exists.
func (m *Model) Meta(key string) (string, bool) {
	if !m.ok() {
		return "", false
	}
	ck := cstr(key)
	defer free(ck)
	s, ok := getString(func(buf *C.char, size C.size_t) C.int32_t {
		return C.llama_model_meta_val_str(m.p, ck, buf, size)
	})
	keepAlive(m)
	return s, ok
}

// Metadata returns every scalar metadata key/value of the GGUF file as
// strings.
func (m *Model) Metadata() map[string]string {
	if !m.ok() {
		return nil
	}
	n := int(C.llama_model_meta_count(m.p))
	out := make(map[string]string, n)
	for i := 0; i < n; i++ {
		k, ok := getString(func(buf *C.char, size C.size_t) C.int32_t {
			return C.llama_model_meta_key_by_index(m.p, C.int32_t(i), buf, size)
		})
		if !ok {
			continue
		}
		v, _ := getString(func(buf *C.char, size C.size_t) C.int32_t {
			return C.llama_model_meta_val_str_by_index(m.p, C.int32_t(i), buf, size)
		})
		out[k] = v
	}
	keepAlive(m)
	return out
}

// Arch returns the model architecture (general.architecture), e.g. "llama".
func (m *Model) Arch() string {
	s, _ := m.Meta("general.architecture")
	return s
}

// Description returns llama.cpp's short description, e.g. "llama 7B F16".
func (m *Model) Description() string {
	if !m.ok() {
		return ""
	}
	s, _ := getString(func(buf *C.char, size C.size_t) C.int32_t {
		return C.llama_model_desc(m.p, buf, size)
	})
	return s
}

// NumCtxTrain returns the context length the model was trained with.
func (m *Model) NumCtxTrain() int {
	if !m.ok() {
		return 0
	}
	return int(C.llama_model_n_ctx_train(m.p))
}

// NumEmbd returns the embedding size (hidden size).
func (m *Model) NumEmbd() int { return m.nEmbd }

// NumLayer returns the number of layers.
func (m *Model) NumLayer() int {
	if !m.ok() {
		return 0
	}
	return int(C.llama_model_n_layer(m.p))
}

// NumHead returns the number of attention heads.
func (m *Model) NumHead() int {
	if !m.ok() {
		return 0
	}
	return int(C.llama_model_n_head(m.p))
}

// NumHeadKV returns the number of key/value heads.
func (m *Model) NumHeadKV() int {
	if !m.ok() {
		return 0
	}
	return int(C.llama_model_n_head_kv(m.p))
}

// NumParams returns the number of parameters.
func (m *Model) NumParams() uint64 {
	if !m.ok() {
		return 0
	}
	return uint64(C.llama_model_n_params(m.p))
}

// Size returns the total size of the weights in bytes.
func (m *Model) Size() uint64 {
	if !m.ok() {
		return 0
	}
	return uint64(C.llama_model_size(m.p))
}

// FileType returns the quantization, e.g. "F16" or "Q4_K - Medium".
func (m *Model) FileType() string {
	if !m.ok() {
		return ""
	}
	return C.GoString(C.llama_ftype_name(C.llama_model_ftype(m.p)))
}

// ChatTemplate returns the model's chat template (tokenizer.chat_template),
// or a named variant such as "tool_use" when name is not "". It returns ""
// when the model has none.
func (m *Model) ChatTemplate(name string) string {
	if !m.ok() {
		return ""
	}
	var cn *C.char
	if name != "" {
		cn = cstr(name)
		defer free(cn)
	}
	p := C.llama_model_chat_template(m.p, cn)
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// HasEncoder reports whether the model has an encoder (T5-like).
func (m *Model) HasEncoder() bool { return m.ok() && bool(C.llama_model_has_encoder(m.p)) }

// HasDecoder reports whether the model has a decoder (generates text).
func (m *Model) HasDecoder() bool { return m.ok() && bool(C.llama_model_has_decoder(m.p)) }

// IsRecurrent reports whether the model is recurrent (Mamba, RWKV).
func (m *Model) IsRecurrent() bool { return m.ok() && bool(C.llama_model_is_recurrent(m.p)) }

// NumVocab returns the vocabulary size.
func (m *Model) NumVocab() int { return m.nVocab }

// Tokenize converts text to tokens. addSpecial adds BOS/EOS as the model
// is configured to; parseSpecial turns special-token text (like
// "<|eot_id|>") into those tokens instead of plain text. Prompts rendered
// by a chat template want addSpecial false and parseSpecial true.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]Token, error) {
	if !m.ok() {
		return nil, ErrClosed
	}
	if len(text) > math.MaxInt32-8 {
		return nil, fmt.Errorf("%w: text of %d bytes is too long", ErrTokenize, len(text))
	}
	ctext := emptyCString
	if len(text) > 0 {
		ctext = (*C.char)(unsafe.Pointer(unsafe.StringData(text)))
	}
	out := make([]Token, len(text)+4)
	for {
		n := C.llama_tokenize(m.vocab, ctext, C.int32_t(len(text)),
			(*C.llama_token)(unsafe.Pointer(unsafe.SliceData(out))), C.int32_t(len(out)),
			C.bool(addSpecial), C.bool(parseSpecial))
		switch {
		case n == math.MinInt32:
			return nil, fmt.Errorf("%w: too many tokens", ErrTokenize)
		case n < 0:
			out = make([]Token, int(-n))
			continue
		}
		keepAlive(text)
		keepAlive(m)
		return out[:n:n], nil
	}
}

// TokenToPiece returns the text of one token. special renders special
// tokens (like "</s>") as their text; otherwise they give "".
func (m *Model) TokenToPiece(t Token, special bool) string {
	var small [64]byte
	return string(m.AppendPiece(small[:0], t, special))
}

// AppendPiece appends the text of token t to dst and returns the extended
// slice; it allocates only when dst lacks room, which suits generation
// loops.
func (m *Model) AppendPiece(dst []byte, t Token, special bool) []byte {
	if !m.ok() || t < 0 || int(t) >= m.nVocab {
		return dst
	}
	if cap(dst)-len(dst) < 32 {
		dst = append(dst, make([]byte, 32)...)[:len(dst)]
	}
	for {
		room := dst[len(dst):cap(dst)]
		n := C.llama_token_to_piece(m.vocab, C.llama_token(t),
			(*C.char)(unsafe.Pointer(unsafe.SliceData(room))), C.int32_t(min(len(room), math.MaxInt32)), 0, C.bool(special))
		if n >= 0 {
			return dst[:len(dst)+int(n)]
		}
		dst = append(dst, make([]byte, int(-n))...)[:len(dst)]
	}
}

// Detokenize converts tokens back to text. removeSpecial drops the BOS/EOS
// that Tokenize's addSpecial would add; unparseSpecial renders special
// tokens as text.
func (m *Model) Detokenize(tokens []Token, removeSpecial, unparseSpecial bool) (string, error) {
	if !m.ok() {
		return "", ErrClosed
	}
	if len(tokens) == 0 {
		return "", nil
	}
	for _, t := range tokens {
		if t < 0 || int(t) >= m.nVocab {
			return "", fmt.Errorf("%w: token %d is outside the vocabulary (size %d)", ErrTokenize, t, m.nVocab)
		}
	}
	buf := make([]byte, len(tokens)*8+16)
	for {
		n := C.llama_detokenize(m.vocab, (*C.llama_token)(unsafe.Pointer(unsafe.SliceData(tokens))), C.int32_t(len(tokens)),
			(*C.char)(unsafe.Pointer(unsafe.SliceData(buf))), C.int32_t(min(len(buf), math.MaxInt32)),
			C.bool(removeSpecial), C.bool(unparseSpecial))
		if n == math.MinInt32 {
			return "", fmt.Errorf("%w: text too long", ErrTokenize)
		}
		if n < 0 {
			buf = make([]byte, int(-n))
			continue
		}
		keepAlive(m)
		return string(buf[:n]), nil
	}
}

// TokenText returns the vocabulary entry of t as stored in the GGUF file
// (SentencePiece "▁" and byte tokens unchanged), or "" for an invalid id.
func (m *Model) TokenText(t Token) string {
	if !m.ok() || t < 0 || int(t) >= m.nVocab {
		return ""
	}
	return C.GoString(C.llama_vocab_get_text(m.vocab, C.llama_token(t)))
}

func (m *Model) special(f func(*C.struct_llama_vocab) C.llama_token) Token {
	if !m.ok() {
		return TokenNull
	}
	return Token(f(m.vocab))
}

// BOS returns the beginning-of-sequence token, or TokenNull.
func (m *Model) BOS() Token {
	return m.special(func(v *C.struct_llama_vocab) C.llama_token { return C.llama_vocab_bos(v) })
}

// EOS returns the end-of-sequence token, or TokenNull.
func (m *Model) EOS() Token {
	return m.special(func(v *C.struct_llama_vocab) C.llama_token { return C.llama_vocab_eos(v) })
}

// EOT returns the end-of-turn token, or TokenNull.
func (m *Model) EOT() Token {
	return m.special(func(v *C.struct_llama_vocab) C.llama_token { return C.llama_vocab_eot(v) })
}

// NL returns the newline token, or TokenNull.
func (m *Model) NL() Token {
	return m.special(func(v *C.struct_llama_vocab) C.llama_token { return C.llama_vocab_nl(v) })
}

// SEP returns the separator token, or TokenNull.
func (m *Model) SEP() Token {
	return m.special(func(v *C.struct_llama_vocab) C.llama_token { return C.llama_vocab_sep(v) })
}

// PAD returns the padding token, or TokenNull.
func (m *Model) PAD() Token {
	return m.special(func(v *C.struct_llama_vocab) C.llama_token { return C.llama_vocab_pad(v) })
}

// AddBOS reports whether Tokenize with addSpecial adds a BOS token.
func (m *Model) AddBOS() bool { return m.ok() && bool(C.llama_vocab_get_add_bos(m.vocab)) }

// AddEOS reports whether Tokenize with addSpecial adds an EOS token.
func (m *Model) AddEOS() bool { return m.ok() && bool(C.llama_vocab_get_add_eos(m.vocab)) }

// IsEOG reports whether t ends generation (EOS, EOT and similar).
func (m *Model) IsEOG(t Token) bool {
	return m.ok() && t >= 0 && int(t) < m.nVocab && bool(C.llama_vocab_is_eog(m.vocab, C.llama_token(t)))
}

// IsControl reports whether t is a control token (not rendered as text).
func (m *Model) IsControl(t Token) bool {
	return m.ok() && t >= 0 && int(t) < m.nVocab && bool(C.llama_vocab_is_control(m.vocab, C.llama_token(t)))
}
