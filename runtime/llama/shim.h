// shim.h is the tiny C interface olm's Go code uses for the parts of
// llama.cpp that are C++ only (the `common` library: jinja chat templates,
// chat output parsing, JSON schema to GBNF) and for the hot sampling path.
// Structured data crosses the boundary as JSON text. Every char* the shim
// returns is owned by the caller and freed with olm_free.
#ifndef OLM_SHIM_H
#define OLM_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

// olm_free frees a string returned by the shim.
void olm_free(char * p);

// Logging: lines below min_level (a ggml_log_level; 0 = off) are dropped.
// The most recent error line is kept for error messages.
void   olm_log_init(void);
void   olm_log_set_level(int min_level);
char * olm_log_last_error(void); // NULL when none; clears it

// Callbacks that read a flag (an int32 the Go side sets atomically).
bool olm_abort_cb(void * flag);
bool olm_progress_cb(float progress, void * flag);

// Grammar sampler: returns NULL and sets *err on failure.
struct llama_sampler * olm_grammar_init(const struct llama_vocab * vocab, const char * grammar, bool lazy,
                                        const char ** patterns, size_t n_patterns,
                                        const llama_token * tokens, size_t n_tokens, char ** err);

// Feed a token to a grammar sampler (prefill); returns 0, or -1 with *err.
int olm_grammar_accept(struct llama_sampler * grammar, llama_token token, char ** err);

// A sampler = a llama.cpp chain plus an optional grammar sampler, sampled
// the way llama.cpp's common_sampler does (grammar checked on the chosen
// token first, applied to all candidates only when it rejects it).
// The process's decoder thread, which runs llama_decode/llama_encode for
// every context (so that all of the CPU backend's OpenMP work has one
// master thread; see shim.cpp). olm_decoder_run blocks until the call
// returns its code; it decodes on the caller's thread when the batch starts
// no team (one thread). Decodes of several contexts run one at a time.
// NULL from olm_decoder_new: no thread could be started.
typedef struct olm_decoder olm_decoder;
olm_decoder * olm_decoder_new(void);
int32_t       olm_decoder_run(olm_decoder * d, struct llama_context * ctx, struct llama_batch batch, bool encode);
// run fn(arg) on the decoder thread (on the caller's when d is NULL)
int32_t       olm_decoder_call(olm_decoder * d, int32_t (*fn)(void *), void * arg);
// decodes so far on the caller's thread and handed to the decoder thread
void          olm_decoder_counts(olm_decoder * d, int64_t * direct, int64_t * handoff);
// the OS thread ID of the decoder thread (runs a job on it; for tests)
int32_t       olm_decoder_thread_id(olm_decoder * d);
void          olm_decoder_free(olm_decoder * d);

// llama.cpp's default thread count (common_cpu_get_num_math: the physical
// cores, without efficiency cores on hybrid CPUs).
int32_t olm_default_threads(void);

typedef struct olm_sampler olm_sampler;
olm_sampler * olm_sampler_new(struct llama_sampler * chain, struct llama_sampler * grammar);
void          olm_sampler_free(olm_sampler * s);
// returns 0 and sets *out, or -1 and sets *err
int           olm_sampler_sample(olm_sampler * s, struct llama_context * ctx, int32_t idx, llama_token * out, char ** err);
// accept into the chain (penalty history) and, if grammar is true, the grammar
int           olm_sampler_accept(olm_sampler * s, llama_token token, bool grammar, char ** err);
void          olm_sampler_reset(olm_sampler * s);
// Repetition penalties applied by the olm_sampler itself (same arithmetic
// as llama_sampler_init_penalties, which the chain must then not have;
// last_n 0: none), and greedy_only: the chain is greedy alone, so the
// token is picked straight from the logits. Call before sampling.
void          olm_sampler_set_fast(olm_sampler * s, int32_t n_vocab, int32_t last_n, float repeat, float freq, float present, bool greedy_only);
// Tests: pick greedy tokens with the plain reference loop instead of the
// vectorized path (both must give the same token).
void          olm_sampler_set_greedy_ref(olm_sampler * s, bool on);

// Chat templates (common_chat_templates).
typedef struct olm_chat_templates olm_chat_templates;
// model may be NULL when override is non-empty.
olm_chat_templates * olm_chat_templates_init(const struct llama_model * model, const char * override, char ** err);
void                 olm_chat_templates_free(olm_chat_templates * t);
char *               olm_chat_templates_source(olm_chat_templates * t);
char *               olm_chat_templates_caps(olm_chat_templates * t); // JSON object of bools
// input: JSON (see chat.go); returns JSON result or NULL with *err.
char *               olm_chat_apply(olm_chat_templates * t, const char * input_json, char ** err);

// Parse model output: params JSON (see chat.go); returns a JSON message.
char * olm_chat_parse(const char * text, bool partial, const char * params_json, char ** err);

// JSON schema (JSON text) to GBNF.
char * olm_json_schema_to_grammar(const char * schema_json, char ** err);

// Quantize: returns 0 on success; catches C++ exceptions into *err.
int olm_quantize(const char * in, const char * out, const llama_model_quantize_params * params, char ** err);

// Fitting model parameters to free device memory (llama.cpp's
// common_fit_params, what llama-server's default --fit on does). mparams
// and cparams must hold llama.cpp's defaults for what may be fitted
// (n_gpu_layers -1, no tensor_split or overrides; cparams->n_ctx 0 lets it
// pick the context size too). margin_bytes is the memory left free per
// device. Returns the common_params_fit_status (0 fitted, 1 could not fit,
// 2 error, e.g. no model at path) and sets *bufs to the buffers the fitted
// mparams may point into (tensor_split, tensor_buft_overrides): free them
// with olm_fit_free only after the model is loaded. Calls are serialized
// (common_fit_params is not thread safe: it swaps the global logger).
typedef struct olm_fit olm_fit;
int  olm_fit_params(const char * path, struct llama_model_params * mparams, struct llama_context_params * cparams,
                    size_t margin_bytes, olm_fit ** bufs);
void olm_fit_free(olm_fit * f);

#ifdef __cplusplus
}
#endif

#endif
