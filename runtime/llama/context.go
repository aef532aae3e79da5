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
	"runtime"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Context is an inference context: a KV cache (memory) for up to
// NumSeqMax sequences and the compute state for Decode. It must be used by
// one goroutine at a time.
type Context struct {
	closer
	m     *Model
	p     *C.struct_llama_context
	abort *int32         // C memory read by olm_abort_cb
	dec   *C.olm_decoder // the thread that decodes; nil: the caller's
	embd  bool
	pool  Pooling
}

// Perf holds llama.cpp's timing counters of a Context since it was created
// or PerfReset was called.
type Perf struct {
	PromptTokens int     // tokens decoded in batches of more than one token
	PromptMS     float64 // time spent on them, in milliseconds
	EvalTokens   int     // tokens decoded one at a time (generation)
	EvalMS       float64 // time spent on them, in milliseconds
}

var cacheTypes = map[string]C.enum_ggml_type{
	"f32": C.GGML_TYPE_F32, "f16": C.GGML_TYPE_F16, "bf16": C.GGML_TYPE_BF16,
	"q8_0": C.GGML_TYPE_Q8_0, "q4_0": C.GGML_TYPE_Q4_0, "q4_1": C.GGML_TYPE_Q4_1,
	"q5_0": C.GGML_TYPE_Q5_0, "q5_1": C.GGML_TYPE_Q5_1, "iq4_nl": C.GGML_TYPE_IQ4_NL,
}

// NewContext creates an inference context over m. See ContextParams for
// defaults. It fails with ErrContext when llama.cpp cannot allocate it.
func NewContext(m *Model, p ContextParams) (*Context, error) {
	if err := m.acquire(); err != nil {
		return nil, err
	}
	cp, err := p.cParams()
	if err != nil {
		m.release()
		return nil, err
	}
	cp.no_perf = false

	abort := (*int32)(C.calloc(1, 4))
	cp.abort_callback = C.ggml_abort_callback(C.olm_abort_cb)
	cp.abort_callback_data = unsafe.Pointer(abort)

	lastError()
	cctx := C.llama_init_from_model(m.p, cp)
	if cctx == nil {
		C.free(unsafe.Pointer(abort))
		m.release()
		msg := lastError()
		if msg == "" {
			msg = "llama_init_from_model failed (out of memory?)"
		}
		return nil, fmt.Errorf("%w: %s", ErrContext, msg)
	}
	c := &Context{m: m, p: cctx, abort: abort, embd: p.Embeddings, pool: p.Pooling, dec: C.olm_decoder_new()}
	runtime.SetFinalizer(c, (*Context).Close)
	return c, nil
}

// cParams converts p to llama.cpp's context params (without callbacks).
// It fails with ErrContext on a bad size or cache type.
func (p ContextParams) cParams() (C.struct_llama_context_params, error) {
	cp := C.llama_context_default_params()
	if p.NumCtx < 0 || p.NumBatch < 0 || p.NumUBatch < 0 || p.NumSeqMax < 0 || p.NumCtx > math.MaxInt32 {
		return cp, fmt.Errorf("%w: negative or huge size in %+v", ErrContext, p)
	}
	cp.n_ctx = C.uint32_t(p.NumCtx)
	if p.NumBatch > 0 {
		cp.n_batch = C.uint32_t(p.NumBatch)
	}
	if p.NumUBatch > 0 {
		cp.n_ubatch = C.uint32_t(p.NumUBatch)
	}
	if p.NumSeqMax > 0 {
		cp.n_seq_max = C.uint32_t(p.NumSeqMax)
	}
	// every token of a batch may ask for output (embeddings, several
	// sequences); the default of 1 per sequence only suits backend sampling
	cp.n_outputs_max_per_seq = 0
	threads := p.NumThreads
	if threads <= 0 {
		threads = DefaultThreads()
	}
	tb := p.NumThreadsBatch
	if tb <= 0 {
		tb = threads
	}
	cp.n_threads = C.int32_t(threads)
	cp.n_threads_batch = C.int32_t(tb)
	cp.embeddings = C.bool(p.Embeddings)
	switch p.Pooling {
	case PoolingNone:
		cp.pooling_type = C.LLAMA_POOLING_TYPE_NONE
	case PoolingMean:
		cp.pooling_type = C.LLAMA_POOLING_TYPE_MEAN
	case PoolingCLS:
		cp.pooling_type = C.LLAMA_POOLING_TYPE_CLS
	case PoolingLast:
		cp.pooling_type = C.LLAMA_POOLING_TYPE_LAST
	case PoolingRank:
		cp.pooling_type = C.LLAMA_POOLING_TYPE_RANK
	default:
		cp.pooling_type = C.LLAMA_POOLING_TYPE_UNSPECIFIED
	}
	switch p.FlashAttn {
	case FlashAttnOn:
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
	case FlashAttnOff:
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
	default:
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_AUTO
	}
	for _, kv := range []struct {
		name string
		dst  *C.enum_ggml_type
	}{{p.CacheTypeK, &cp.type_k}, {p.CacheTypeV, &cp.type_v}} {
		if kv.name == "" {
			continue
		}
		t, ok := cacheTypes[strings.ToLower(kv.name)]
		if !ok {
			return cp, fmt.Errorf("%w: unknown KV cache type %q (use f16, q8_0 or q4_0)", ErrContext, kv.name)
		}
		*kv.dst = t
	}
	cp.kv_unified = C.bool(p.KVUnified)
	if p.Embeddings && p.Pooling != PoolingNone && p.NumSeqMax > 1 {
		// pooled embeddings of several sequences in one batch come out
		// wrong with per-sequence KV streams in this release; llama.cpp's
		// own embedding tool uses a unified cache too
		cp.kv_unified = true
	}
	return cp, nil
}

// Close frees the context. It is idempotent.
func (c *Context) Close() error {
	if c == nil || !c.markClosed() {
		return nil
	}
	runtime.SetFinalizer(c, nil)
	C.olm_decoder_free(c.dec)
	c.dec = nil
	C.llama_free(c.p)
	C.free(unsafe.Pointer(c.abort))
	c.p = nil
	c.abort = nil
	c.m.release()
	return nil
}

func (c *Context) ok() bool { return c != nil && c.p != nil }

// decoderThread returns the OS thread ID of the thread that runs c's
// multi-threaded decodes (0 without one).
func (c *Context) decoderThread() int {
	if !c.ok() || c.dec == nil {
		return 0
	}
	return int(C.olm_decoder_thread_id(c.dec))
}

// decodeCounts returns how many Decode/Encode calls ran on the caller's
// thread and how many were handed to the context's decoder thread.
func (c *Context) decodeCounts() (direct, handoff int64) {
	if !c.ok() || c.dec == nil {
		return 0, 0
	}
	var d, h C.int64_t
	C.olm_decoder_counts(c.dec, &d, &h)
	return int64(d), int64(h)
}

// DefaultThreads is the thread count used when ContextParams.NumThreads is
// 0: llama.cpp's own default (as llama-server's), the physical cores
// without the efficiency cores of hybrid CPUs, at most the CPUs this
// process may run on (runtime.NumCPU, which honours CPU affinity).
// Hyper-threads do not speed up decoding, they compete for the same cores.
func DefaultThreads() int {
	return max(1, min(int(C.olm_default_threads()), runtime.NumCPU()))
}

// Model returns the model the context was created from.
func (c *Context) Model() *Model { return c.m }

// NumCtx returns the KV cache size in tokens (all sequences together).
func (c *Context) NumCtx() int {
	if !c.ok() {
		return 0
	}
	return int(C.llama_n_ctx(c.p))
}

// NumCtxSeq returns the tokens one sequence can hold.
func (c *Context) NumCtxSeq() int {
	if !c.ok() {
		return 0
	}
	return int(C.llama_n_ctx_seq(c.p))
}

// NumBatch returns the most tokens one Decode accepts.
func (c *Context) NumBatch() int {
	if !c.ok() {
		return 0
	}
	return int(C.llama_n_batch(c.p))
}

// NumUBatch returns the physical micro-batch size.
func (c *Context) NumUBatch() int {
	if !c.ok() {
		return 0
	}
	return int(C.llama_n_ubatch(c.p))
}

// NumSeqMax returns the number of sequences the context holds.
func (c *Context) NumSeqMax() int {
	if !c.ok() {
		return 0
	}
	return int(C.llama_n_seq_max(c.p))
}

// Decode runs the model over the batch, appending its tokens to the KV cache
// of their sequences and computing the outputs that the batch asks for.
// Cancelling ctx stops the computation early (within the current graph
// evaluation, i.e. well within one token): Decode then returns an error
// wrapping both ErrAborted and ctx's error, and the micro-batches already
// processed stay in the KV cache (check KVSeqPosMax and remove them if
// needed). Other failures wrap ErrNoKVSlot, ErrInvalidBatch or ErrDecode.
// A batch computed by several threads runs on the process's decoder
// thread, which all contexts share (one OpenMP team): decodes of several
// contexts wait for each other. A batch computed by one thread runs on the
// caller's thread.
func (c *Context) Decode(ctx context.Context, b *Batch) error {
	return c.run(ctx, b, false)
}

// Encode runs the encoder of an encoder-decoder model over the batch (no
// KV cache). Errors are as for Decode.
func (c *Context) Encode(ctx context.Context, b *Batch) error {
	return c.run(ctx, b, true)
}

func (c *Context) run(ctx context.Context, b *Batch, encode bool) error {
	if !c.ok() {
		return ErrClosed
	}
	if b == nil || b.c.token == nil {
		return fmt.Errorf("%w: nil or closed batch", ErrInvalidBatch)
	}
	if b.n == 0 {
		return fmt.Errorf("%w: empty batch", ErrInvalidBatch)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrAborted, err)
	}
	var stop func() bool
	var fired chan struct{}
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			atomic.StoreInt32(c.abort, 1)
			close(fired)
		})
	}
	b.c.n_tokens = C.int32_t(b.n)
	var rc C.int32_t
	switch {
	case c.dec != nil:
		rc = C.olm_decoder_run(c.dec, c.p, b.c, C.bool(encode))
	case encode:
		rc = C.llama_encode(c.p, b.c)
	default:
		rc = C.llama_decode(c.p, b.c)
	}
	if stop != nil && !stop() {
		<-fired // the flag is set (or about to be): wait, then clear it
		atomic.StoreInt32(c.abort, 0)
		if rc == 0 {
			return nil
		}
	}
	switch {
	case rc == 0:
		return nil
	case rc == 1:
		return fmt.Errorf("%w (%d tokens, context %d)", ErrNoKVSlot, b.n, c.NumCtx())
	case rc == 2:
		return fmt.Errorf("%w: %w", ErrAborted, context.Cause(ctx))
	case rc == -1:
		return fmt.Errorf("%w: %s", ErrInvalidBatch, orDefault(lastError(), "llama.cpp rejected the batch"))
	default:
		return fmt.Errorf("%w: code %d: %s", ErrDecode, int(rc), lastError())
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Logits returns the logits (NumVocab values) that the last Decode
// computed for the token at index i of its batch (that token must have
// asked for output); -1 is the last output. The slice points into llama.cpp's memory and is valid
// only until the next Decode or Close: copy it to keep it.
func (c *Context) Logits(i int) ([]float32, error) {
	if !c.ok() {
		return nil, ErrClosed
	}
	p := C.llama_get_logits_ith(c.p, C.int32_t(i))
	if p == nil {
		return nil, fmt.Errorf("%w: logits %d", ErrNoOutput, i)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), c.m.nVocab), nil
}

// Embeddings returns the embedding (NumEmbd values) of the token at batch
// index i of the last Decode (the context needs Embeddings on; -1 is the
// last output). Like Logits, the slice is only
// valid until the next Decode.
func (c *Context) Embeddings(i int) ([]float32, error) {
	if !c.ok() {
		return nil, ErrClosed
	}
	p := C.llama_get_embeddings_ith(c.p, C.int32_t(i))
	if p == nil {
		return nil, fmt.Errorf("%w: embeddings %d (is Embeddings on?)", ErrNoOutput, i)
	}
	n := int(C.llama_model_n_embd_out(c.m.p))
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), n), nil
}

// SeqEmbeddings returns a copy of the pooled embedding of sequence seq from
// the last Decode (Embeddings on, pooling other than PoolingNone). For
// PoolingRank it is the sequence's score(s). The vector is not normalized;
// see Normalize.
func (c *Context) SeqEmbeddings(seq int) ([]float32, error) {
	if !c.ok() {
		return nil, ErrClosed
	}
	p := C.llama_get_embeddings_seq(c.p, C.llama_seq_id(seq))
	if p == nil {
		return nil, fmt.Errorf("%w: sequence %d has no pooled embedding (Embeddings on and pooling not none?)", ErrNoOutput, seq)
	}
	n := int(C.llama_model_n_embd_out(c.m.p))
	if C.llama_pooling_type(c.p) == C.LLAMA_POOLING_TYPE_RANK {
		n = max(1, int(C.llama_model_n_cls_out(c.m.p)))
	}
	out := make([]float32, n)
	copy(out, unsafe.Slice((*float32)(unsafe.Pointer(p)), n))
	return out, nil
}

// SetEmbeddings switches embedding output on or off for later Decodes.
func (c *Context) SetEmbeddings(on bool) {
	if c.ok() {
		C.llama_set_embeddings(c.p, C.bool(on))
		c.embd = on
	}
}

// SetThreads changes the thread counts for generation and batches.
func (c *Context) SetThreads(n, nBatch int) {
	if !c.ok() {
		return
	}
	if n <= 0 {
		n = DefaultThreads()
	}
	if nBatch <= 0 {
		nBatch = n
	}
	C.llama_set_n_threads(c.p, C.int32_t(n), C.int32_t(nBatch))
}

func (c *Context) mem() C.llama_memory_t { return C.llama_get_memory(c.p) }

// KVClear empties the KV cache of every sequence.
func (c *Context) KVClear() {
	if c.ok() {
		C.llama_memory_clear(c.mem(), true)
	}
}

// KVSeqRemove removes sequence seq's tokens with positions in [p0, p1)
// (p0 < 0: from 0; p1 < 0: to the end; seq < 0: every sequence). It
// returns false when a partial removal is impossible (recurrent models);
// removing a whole sequence always works.
func (c *Context) KVSeqRemove(seq, p0, p1 int) bool {
	if !c.ok() {
		return false
	}
	return bool(C.llama_memory_seq_rm(c.mem(), C.llama_seq_id(seq), C.llama_pos(p0), C.llama_pos(p1)))
}

// KVSeqCopy makes the tokens of src with positions in [p0, p1) also belong
// to dst (shared prefix; no data is copied with a unified cache).
func (c *Context) KVSeqCopy(src, dst, p0, p1 int) {
	if c.ok() {
		C.llama_memory_seq_cp(c.mem(), C.llama_seq_id(src), C.llama_seq_id(dst), C.llama_pos(p0), C.llama_pos(p1))
	}
}

// KVSeqKeep removes every sequence but seq.
func (c *Context) KVSeqKeep(seq int) {
	if !c.ok() {
		return
	}
	// llama_memory_seq_keep only clears seq's own stream when each
	// sequence has one (KVUnified false), so remove the others one by one
	for s := 0; s < c.NumSeqMax(); s++ {
		if s != seq {
			C.llama_memory_seq_rm(c.mem(), C.llama_seq_id(s), -1, -1)
		}
	}
	C.llama_memory_seq_keep(c.mem(), C.llama_seq_id(seq))
}

// KVSeqAdd shifts the positions in [p0, p1) of seq by delta (context
// shifting); see KVCanShift.
func (c *Context) KVSeqAdd(seq, p0, p1, delta int) {
	if c.ok() {
		C.llama_memory_seq_add(c.mem(), C.llama_seq_id(seq), C.llama_pos(p0), C.llama_pos(p1), C.llama_pos(delta))
	}
}

// KVSeqPosMin returns the smallest position of seq in the cache, or -1 when
// it is empty.
func (c *Context) KVSeqPosMin(seq int) int {
	if !c.ok() {
		return -1
	}
	return int(C.llama_memory_seq_pos_min(c.mem(), C.llama_seq_id(seq)))
}

// KVSeqPosMax returns the largest position of seq in the cache, or -1 when
// it is empty.
func (c *Context) KVSeqPosMax(seq int) int {
	if !c.ok() {
		return -1
	}
	return int(C.llama_memory_seq_pos_max(c.mem(), C.llama_seq_id(seq)))
}

// KVCanShift reports whether KVSeqAdd works for this model and cache.
func (c *Context) KVCanShift() bool {
	return c.ok() && bool(C.llama_memory_can_shift(c.mem()))
}

// Perf returns the timing counters.
func (c *Context) Perf() Perf {
	if !c.ok() {
		return Perf{}
	}
	d := C.llama_perf_context(c.p)
	return Perf{
		PromptTokens: int(d.n_p_eval), PromptMS: float64(d.t_p_eval_ms),
		EvalTokens: int(d.n_eval), EvalMS: float64(d.t_eval_ms),
	}
}

// PerfReset zeroes the timing counters.
func (c *Context) PerfReset() {
	if c.ok() {
		C.llama_perf_context_reset(c.p)
	}
}

// Batch is a set of tokens for one Decode: each with a position, the
// sequences it belongs to and whether its output (logits or embeddings) is
// wanted. It lives in C memory; filling it makes no cgo calls. Reuse one
// Batch across Decodes with Clear.
type Batch struct {
	closer
	c       C.struct_llama_batch
	capac   int
	maxSeqs int
	n       int
	tokens  []int32
	pos     []int32
	nSeq    []int32
	seqs    [][]int32
	logits  []int8
}

// NewBatch allocates a batch for up to capacity tokens, each belonging to
// at most maxSeqsPerToken sequences (1 is usual; 0 means 1).
func NewBatch(capacity, maxSeqsPerToken int) (*Batch, error) {
	if maxSeqsPerToken <= 0 {
		maxSeqsPerToken = 1
	}
	if capacity <= 0 || capacity > 1<<24 || maxSeqsPerToken > 1<<12 {
		return nil, fmt.Errorf("%w: capacity %d, sequences per token %d", ErrInvalidBatch, capacity, maxSeqsPerToken)
	}
	b := &Batch{capac: capacity, maxSeqs: maxSeqsPerToken}
	b.c = C.llama_batch_init(C.int32_t(capacity), 0, C.int32_t(maxSeqsPerToken))
	b.tokens = unsafe.Slice((*int32)(unsafe.Pointer(b.c.token)), capacity)
	b.pos = unsafe.Slice((*int32)(unsafe.Pointer(b.c.pos)), capacity)
	b.nSeq = unsafe.Slice((*int32)(unsafe.Pointer(b.c.n_seq_id)), capacity)
	b.logits = unsafe.Slice((*int8)(unsafe.Pointer(b.c.logits)), capacity)
	ptrs := unsafe.Slice(b.c.seq_id, capacity)
	b.seqs = make([][]int32, capacity)
	for i := range b.seqs {
		b.seqs[i] = unsafe.Slice((*int32)(unsafe.Pointer(ptrs[i])), maxSeqsPerToken)
	}
	runtime.SetFinalizer(b, (*Batch).Close)
	return b, nil
}

// Add appends token t at position pos for the given sequences (none means
// sequence 0); logits asks for its output. It returns ErrBatchFull when the
// batch is at capacity.
func (b *Batch) Add(t Token, pos int, logits bool, seqs ...int) error {
	if b.tokens == nil {
		return ErrClosed
	}
	if b.n >= b.capac {
		return fmt.Errorf("%w (capacity %d)", ErrBatchFull, b.capac)
	}
	if len(seqs) > b.maxSeqs {
		return fmt.Errorf("%w: token in %d sequences, batch allows %d", ErrInvalidBatch, len(seqs), b.maxSeqs)
	}
	i := b.n
	b.tokens[i] = int32(t)
	b.pos[i] = int32(pos)
	if len(seqs) == 0 {
		b.nSeq[i] = 1
		b.seqs[i][0] = 0
	} else {
		b.nSeq[i] = int32(len(seqs))
		for j, s := range seqs {
			b.seqs[i][j] = int32(s)
		}
	}
	if logits {
		b.logits[i] = 1
	} else {
		b.logits[i] = 0
	}
	b.n++
	return nil
}

// Len returns the number of tokens in the batch.
func (b *Batch) Len() int { return b.n }

// Cap returns the batch's capacity.
func (b *Batch) Cap() int { return b.capac }

// Clear empties the batch for reuse.
func (b *Batch) Clear() { b.n = 0 }

// SetLogits sets whether token i's output is wanted.
func (b *Batch) SetLogits(i int, on bool) {
	if i < 0 || i >= b.n {
		return
	}
	if on {
		b.logits[i] = 1
	} else {
		b.logits[i] = 0
	}
}

// Close frees the batch. It is idempotent.
func (b *Batch) Close() error {
	if b == nil || !b.markClosed() {
		return nil
	}
	runtime.SetFinalizer(b, nil)
	b.c.n_tokens = C.int32_t(b.capac)
	C.llama_batch_free(b.c)
	b.c = C.struct_llama_batch{}
	b.tokens, b.pos, b.nSeq, b.seqs, b.logits = nil, nil, nil, nil, nil
	b.n = 0
	return nil
}
