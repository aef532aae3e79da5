// shim.cpp implements shim.h over llama.cpp's C API and its C++ `common`
// library. It never throws across the C boundary: every exception becomes an
// error string.

#include "shim.h"

#include "chat.h"
#include "common.h"
#include "fit.h"
#include "json-schema-to-grammar.h"
#include "log.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <condition_variable>
#include <mutex>
#include <sys/syscall.h>
#include <unistd.h>
#include <thread>
#include <string>
#include <unordered_map>
#include <vector>

using ojson = nlohmann::ordered_json;

static char * dup_str(const std::string & s) {
    char * p = (char *) std::malloc(s.size() + 1);
    if (p) {
        std::memcpy(p, s.data(), s.size());
        p[s.size()] = 0;
    }
    return p;
}

static void set_err(char ** err, const std::string & msg) {
    if (err) {
        *err = dup_str(msg);
    }
}

extern "C" void olm_free(char * p) { std::free(p); }

// ---- logging ----

static std::atomic<int> g_log_min{0};
static std::mutex       g_log_mu;
static std::string      g_last_error;
static int              g_last_level = GGML_LOG_LEVEL_NONE;

static void olm_log_cb(enum ggml_log_level level, const char * text, void * /*user*/) {
    std::lock_guard<std::mutex> lk(g_log_mu);
    int lvl = level;
    if (lvl == GGML_LOG_LEVEL_CONT) {
        lvl = g_last_level;
    } else {
        g_last_level = lvl;
    }
    if (lvl == GGML_LOG_LEVEL_ERROR && text) {
        if (level != GGML_LOG_LEVEL_CONT) {
            g_last_error.clear();
        }
        if (g_last_error.size() < 4096) {
            g_last_error += text;
        }
    }
    int min = g_log_min.load(std::memory_order_relaxed);
    if (min == 0 || lvl < min || text == nullptr) {
        return;
    }
    fputs(text, stderr);
    fflush(stderr);
}

extern "C" void olm_log_init(void) {
    llama_log_set(olm_log_cb, nullptr);
    common_log_set_verbosity_thold(-1);
    common_log_pause(common_log_main());
}

extern "C" void olm_log_set_level(int min_level) {
    // only llama.cpp's and ggml's own lines: common's logger stays paused
    // (it writes some levels to stdout, which a runner process may own)
    g_log_min.store(min_level, std::memory_order_relaxed);
}

extern "C" char * olm_log_last_error(void) {
    std::lock_guard<std::mutex> lk(g_log_mu);
    if (g_last_error.empty()) {
        return nullptr;
    }
    std::string s = g_last_error;
    g_last_error.clear();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return dup_str(s);
}

// ---- callbacks ----

extern "C" bool olm_abort_cb(void * flag) {
    return __atomic_load_n((int32_t *) flag, __ATOMIC_RELAXED) != 0;
}

extern "C" bool olm_progress_cb(float /*progress*/, void * flag) {
    return __atomic_load_n((int32_t *) flag, __ATOMIC_RELAXED) == 0;
}

// ---- sampling ----

extern "C" struct llama_sampler * olm_grammar_init(const struct llama_vocab * vocab, const char * grammar, bool lazy,
                                                   const char ** patterns, size_t n_patterns,
                                                   const llama_token * tokens, size_t n_tokens, char ** err) {
    try {
        llama_sampler * s = nullptr;
        if (lazy) {
            s = llama_sampler_init_grammar_lazy_patterns(vocab, grammar, "root", patterns, n_patterns, tokens, n_tokens);
        } else {
            s = llama_sampler_init_grammar(vocab, grammar, "root");
        }
        if (!s) {
            char * last = olm_log_last_error();
            set_err(err, last ? last : "grammar does not parse");
            olm_free(last);
        }
        return s;
    } catch (const std::exception & e) {
        set_err(err, e.what());
        return nullptr;
    }
}

extern "C" int olm_grammar_accept(struct llama_sampler * grammar, llama_token token, char ** err) {
    try {
        llama_sampler_accept(grammar, token);
        return 0;
    } catch (const std::exception & e) {
        set_err(err, e.what());
        return -1;
    }
}

// ---- decoder thread ----
//
// llama.cpp's CPU backend (built with OpenMP) runs every graph on an OpenMP
// team that belongs to the calling OS thread. Go moves a goroutine between
// OS threads, so decoding straight from Go creates a team per thread it
// lands on, and the idle teams' workers spin against the working one.
// Locking the goroutine to its thread is worse on a busy machine (the
// locked thread must wait for the Go scheduler to hand it a P while the
// workers spin). So decodes run on a thread of olm's own (the decoder
// thread); the Go caller blocks in a plain cgo call until it is done.
//
// That hand-off costs two thread wake-ups per token (measured on the tiny
// model, 1 thread: ~485–615 µs per token against ~365–435 decoding on the
// caller's thread). A batch that llama.cpp computes on one thread starts no
// OpenMP team, so olm_decoder_run decodes it on the caller's thread.
// (Decoding with a team on the caller's thread was tried again with the
// thread that made the last 16 calls in a row as the team's owner, other
// threads handing off: 2 threads took ~1.35 ms per token instead of
// ~0.35, with ~35 context switches per token instead of ~6.)

// libgomp keeps an OpenMP thread pool per master thread and counts the
// threads of all pools: once they outnumber the CPUs, every pool's waits
// (ggml's barriers between graph nodes are OpenMP barriers) sleep in the
// kernel after a short spin. A second team in the process — a second
// context's decoder thread, an image encoded on a Go thread — made the
// tiny model's single-token decodes on 2 threads ~4× slower on the 2-CPU
// VM (330 → 1340 µs, ~37 context switches per token), for the life of the
// process. So there is one decoder thread per process, shared by all
// contexts: their multi-threaded decodes run one at a time on it, and all
// OpenMP work has one master thread.

struct olm_worker {
    std::mutex              submit; // one job at a time
    std::mutex              mu;
    std::condition_variable cv;
    int                     state = 0; // 0 idle, 1 job, 2 done
    int32_t (*fn)(void *)   = nullptr;
    void *                  arg   = nullptr;
    int32_t                 rc    = 0;
};

static void olm_worker_loop(olm_worker * w) {
    std::unique_lock<std::mutex> lk(w->mu);
    for (;;) {
        w->cv.wait(lk, [w] { return w->state == 1; });
        lk.unlock();
        int32_t rc;
        try {
            rc = w->fn(w->arg);
        } catch (const std::exception & e) {
            LOG_ERR("%s: %s\n", __func__, e.what());
            rc = -3;
        }
        lk.lock();
        w->rc    = rc;
        w->state = 2;
        w->cv.notify_all();
    }
}

// olm_worker_get returns the process's decoder thread, starting it on first
// use (NULL if no thread can be started). It lives as long as the process.
static olm_worker * olm_worker_get() {
    static std::mutex   mu;
    static olm_worker * w = nullptr;
    std::lock_guard<std::mutex> lk(mu);
    if (!w) {
        try {
            auto * nw = new olm_worker;
            std::thread(olm_worker_loop, nw).detach();
            w = nw;
        } catch (const std::exception &) {
            return nullptr;
        }
    }
    return w;
}

static int32_t olm_worker_run(olm_worker * w, int32_t (*fn)(void *), void * arg) {
    std::lock_guard<std::mutex>  one(w->submit);
    std::unique_lock<std::mutex> lk(w->mu);
    w->fn    = fn;
    w->arg   = arg;
    w->state = 1;
    w->cv.notify_all();
    w->cv.wait(lk, [w] { return w->state == 2; });
    w->state = 0;
    return w->rc;
}

// a context's handle on the decoder thread (and its counts, for tests)
struct olm_decoder {
    olm_worker *         w = nullptr;
    std::atomic<int64_t> n_direct{ 0 }, n_handoff{ 0 };
};

struct olm_decode_job {
    llama_context * ctx;
    llama_batch     batch;
    bool            encode;
};

static int32_t olm_decode_here(void * arg) {
    auto * j = (olm_decode_job *) arg;
    try {
        return j->encode ? llama_encode(j->ctx, j->batch) : llama_decode(j->ctx, j->batch);
    } catch (const std::exception & e) {
        LOG_ERR("%s: %s\n", __func__, e.what());
        return -3;
    }
}

extern "C" olm_decoder * olm_decoder_new(void) {
    olm_worker * w = olm_worker_get();
    if (!w) {
        return nullptr;
    }
    auto * d = new olm_decoder;
    d->w     = w;
    return d;
}

extern "C" int32_t olm_decoder_run(olm_decoder * d, struct llama_context * ctx, struct llama_batch batch, bool encode) {
    // llama.cpp computes a batch of one token with n_threads, others with
    // n_threads_batch (split into micro-batches of ≥ 1 token: take both)
    const int32_t  nt  = batch.n_tokens == 1 ? llama_n_threads(ctx) : std::max(llama_n_threads(ctx), llama_n_threads_batch(ctx));
    olm_decode_job job = { ctx, batch, encode };
    if (nt <= 1) {
        d->n_direct.fetch_add(1, std::memory_order_relaxed);
        return olm_decode_here(&job);
    }
    d->n_handoff.fetch_add(1, std::memory_order_relaxed);
    return olm_worker_run(d->w, olm_decode_here, &job);
}

extern "C" int32_t olm_decoder_call(olm_decoder * d, int32_t (*fn)(void *), void * arg) {
    if (!d) {
        return fn(arg);
    }
    d->n_handoff.fetch_add(1, std::memory_order_relaxed);
    return olm_worker_run(d->w, fn, arg);
}

static int32_t olm_thread_id(void *) {
    return (int32_t) syscall(SYS_gettid);
}

extern "C" int32_t olm_decoder_thread_id(olm_decoder * d) {
    return olm_decoder_call(d, olm_thread_id, nullptr);
}

extern "C" void olm_decoder_counts(olm_decoder * d, int64_t * direct, int64_t * handoff) {
    *direct  = d->n_direct.load(std::memory_order_relaxed);
    *handoff = d->n_handoff.load(std::memory_order_relaxed);
}

extern "C" void olm_decoder_free(olm_decoder * d) {
    delete d;
}

extern "C" int32_t olm_default_threads(void) {
    return common_cpu_get_num_math();
}

struct olm_sampler {
    llama_sampler *               chain   = nullptr;
    llama_sampler *               grammar = nullptr;
    std::vector<llama_token_data> cur;

    // Repetition penalties done here instead of by llama.cpp's penalties
    // sampler, with the same arithmetic: that sampler looks every token of
    // the vocabulary up in a hash map on every step (about 0.1 ms per token
    // for 32k tokens, more for larger vocabularies); this touches only the
    // tokens of the history.
    int32_t                              pen_last_n  = 0; // 0: off
    float                                pen_repeat  = 1.0f;
    float                                pen_freq    = 0.0f;
    float                                pen_present = 0.0f;
    std::deque<llama_token>              pen_prev;
    std::unordered_map<llama_token, int> pen_count;
    std::vector<uint8_t>                 pen_mark; // by token: in pen_count
    // The chain is greedy alone (no logit bias, no grammar): pick the best
    // token straight from the logits instead of building candidates.
    bool greedy_only = false;
    bool greedy_ref  = false; // tests: pick with greedy_ref, not greedy_fast
    std::vector<float>                    blk_max; // greedy_fast: per block
    std::vector<std::pair<llama_token, float>> saved;   // greedy_fast: raw logits of penalized tokens
};

static void pen_accept(olm_sampler * s, llama_token token) {
    if (s->pen_last_n == 0 || token < 0 || (size_t) token >= s->pen_mark.size()) {
        return;
    }
    s->pen_count[token]++;
    s->pen_mark[token] = 1;
    if (s->pen_prev.size() >= (size_t) s->pen_last_n) { // drop the oldest, as llama.cpp's ring buffer
        const llama_token old = s->pen_prev.front();
        s->pen_prev.pop_front();
        if (--s->pen_count[old] == 0) {
            s->pen_count.erase(old);
            s->pen_mark[old] = 0;
        }
    }
    s->pen_prev.push_back(token);
}

static float pen_logit(const olm_sampler * s, float logit, int count) {
    if (logit <= 0) {
        logit *= s->pen_repeat;
    } else {
        logit /= s->pen_repeat;
    }
    return logit - (float(count) * s->pen_freq + float(count > 0) * s->pen_present);
}

// apply the penalties to candidates in vocabulary order (fill_candidates)
static void pen_apply(const olm_sampler * s, llama_token_data_array & arr) {
    if (s->pen_last_n == 0) {
        return;
    }
    for (const auto & [tok, count] : s->pen_count) {
        if (tok >= 0 && (size_t) tok < arr.size) {
            arr.data[tok].logit = pen_logit(s, arr.data[tok].logit, count);
        }
    }
    arr.sorted = false;
}

extern "C" void olm_sampler_set_fast(olm_sampler * s, int32_t n_vocab, int32_t last_n, float repeat, float freq, float present, bool greedy_only) {
    s->pen_last_n  = last_n > 0 && n_vocab > 0 ? last_n : 0;
    s->pen_repeat  = repeat;
    s->pen_freq    = freq;
    s->pen_present = present;
    s->pen_mark.assign(s->pen_last_n > 0 ? n_vocab : 0, 0);
    s->greedy_only = greedy_only && !s->grammar;
}

extern "C" void olm_sampler_set_greedy_ref(olm_sampler * s, bool on) {
    s->greedy_ref = on;
}

// ---- greedy ----
//
// Greedy's choice is the first token with the highest logit after the
// penalties (llama.cpp's greedy sampler: the first candidate, then every
// later one that is strictly greater). greedy_ref is that rule as a plain
// loop; greedy_fast gives the same token without a branch per vocabulary
// entry: a vectorized maximum over the logits with the penalized tokens
// masked out, the penalized tokens (at most repeat_last_n) on their own,
// then the first index holding the maximum.

static llama_token greedy_ref(const olm_sampler * s, const float * logits, int n_vocab) {
    const bool  pen   = s->pen_last_n > 0 && (int) s->pen_mark.size() == n_vocab;
    llama_token best  = 0;
    float       bestv = -INFINITY;
    for (llama_token t = 0; t < n_vocab; t++) {
        float v = logits[t];
        if (pen && s->pen_mark[t]) {
            v = pen_logit(s, v, s->pen_count.at(t));
        }
        if (t == 0 || v > bestv) {
            best  = t;
            bestv = v;
        }
    }
    return best;
}

typedef float olm_v4 __attribute__((vector_size(16)));

// greater returns, lane by lane, a where a > b, else b: a NaN in a never
// wins (the rule of the reference loop); this is x86's maxps.
static inline olm_v4 greater(olm_v4 a, olm_v4 b) {
    return a > b ? a : b;
}

static const int greedy_block = 256; // floats per block maximum

// block_max returns the highest non-NaN value of p[0..greedy_block), or
// -INFINITY when there is none.
static inline float block_max(const float * p) {
    const float ninf = -INFINITY;
    olm_v4      m0   = { ninf, ninf, ninf, ninf }, m1 = m0, m2 = m0, m3 = m0;
    for (int i = 0; i < greedy_block; i += 16) {
        olm_v4 a, b, c, d;
        memcpy(&a, p + i, sizeof a);
        memcpy(&b, p + i + 4, sizeof b);
        memcpy(&c, p + i + 8, sizeof c);
        memcpy(&d, p + i + 12, sizeof d);
        m0 = greater(a, m0);
        m1 = greater(b, m1);
        m2 = greater(c, m2);
        m3 = greater(d, m3);
    }
    m0        = greater(greater(m0, m1), greater(m2, m3));
    float m   = m0[0];
    for (int k = 1; k < 4; k++) {
        m = m0[k] > m ? m0[k] : m;
    }
    return m;
}

static llama_token greedy_fast(olm_sampler * s, float * logits, int n_vocab) {
    const bool pen = s->pen_last_n > 0 && (int) s->pen_mark.size() == n_vocab;
    float      v0  = logits[0];
    if (pen && s->pen_mark[0]) {
        v0 = pen_logit(s, v0, s->pen_count.at(0));
    }
    if (std::isnan(v0)) {
        return greedy_ref(s, logits, n_vocab); // the rule keeps token 0
    }
    // the penalized tokens: best value, lowest index among equals
    llama_token pbest  = -1;
    float       pbestv = -INFINITY;
    s->saved.clear();
    if (pen) {
        for (const auto & [tok, count] : s->pen_count) {
            const float v = pen_logit(s, logits[tok], count);
            if ((pbest < 0 && !std::isnan(v)) || v > pbestv || (v == pbestv && tok < pbest)) {
                pbest  = tok;
                pbestv = v;
            }
            s->saved.emplace_back(tok, logits[tok]);
            logits[tok] = -INFINITY; // masked out of the maximum below
        }
    }
    // the others: the maximum of each block, then of the blocks
    const int nblk = n_vocab / greedy_block;
    const int tail = nblk * greedy_block;
    s->blk_max.resize(nblk + 1);
    for (int b = 0; b < nblk; b++) {
        s->blk_max[b] = block_max(logits + (size_t) b * greedy_block);
    }
    float tm = -INFINITY;
    for (int t = tail; t < n_vocab; t++) {
        tm = logits[t] > tm ? logits[t] : tm;
    }
    s->blk_max[nblk] = tm;
    int   ub = 0;
    float um = s->blk_max[0];
    for (int b = 1; b <= nblk; b++) {
        if (s->blk_max[b] > um) {
            ub = b;
            um = s->blk_max[b];
        }
    }
    for (const auto & [tok, raw] : s->saved) {
        logits[tok] = raw;
    }
    const float m = pbest >= 0 && pbestv > um ? pbestv : um;
    if (m == -INFINITY) {
        return greedy_ref(s, logits, n_vocab); // nothing above -inf: rare, keep the plain rule
    }
    llama_token best = -1;
    if (um == m) { // the first unpenalized token holding m is in block ub
        const int end = std::min(n_vocab, (ub + 1) * greedy_block);
        for (int t = ub * greedy_block; t < end; t++) {
            if (logits[t] == m && !(pen && s->pen_mark[t])) {
                best = t;
                break;
            }
        }
    }
    if (pbest >= 0 && pbestv == m && (best < 0 || pbest < best)) {
        best = pbest;
    }
    return best;
}

extern "C" olm_sampler * olm_sampler_new(struct llama_sampler * chain, struct llama_sampler * grammar) {
    auto * s    = new olm_sampler;
    s->chain    = chain;
    s->grammar  = grammar;
    return s;
}

extern "C" void olm_sampler_free(olm_sampler * s) {
    if (!s) {
        return;
    }
    if (s->chain) {
        llama_sampler_free(s->chain);
    }
    if (s->grammar) {
        llama_sampler_free(s->grammar);
    }
    delete s;
}

static void fill_candidates(olm_sampler * s, const float * logits, int n_vocab, llama_token_data_array & arr) {
    s->cur.resize(n_vocab);
    for (llama_token t = 0; t < n_vocab; t++) {
        s->cur[t] = llama_token_data{ t, logits[t], 0.0f };
    }
    arr = llama_token_data_array{ s->cur.data(), s->cur.size(), -1, false };
}

extern "C" int olm_sampler_sample(olm_sampler * s, struct llama_context * ctx, int32_t idx, llama_token * out, char ** err) {
    try {
        float * logits = llama_get_logits_ith(ctx, idx); // greedy_fast masks and restores some
        if (!logits) {
            set_err(err, "no logits for output " + std::to_string(idx));
            return -1;
        }
        const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
        if (s->greedy_only) {
            // greedy's choice (the first of the highest logits) after the
            // penalties, without building the candidates
            const llama_token best = s->greedy_ref ? greedy_ref(s, logits, n_vocab) : greedy_fast(s, logits, n_vocab);
            llama_sampler_accept(s->chain, best);
            pen_accept(s, best);
            *out = best;
            return 0;
        }
        llama_token_data_array arr;
        fill_candidates(s, logits, n_vocab, arr);
        pen_apply(s, arr);
        llama_sampler_apply(s->chain, &arr);
        if (arr.selected < 0 || arr.selected >= (int64_t) arr.size) {
            set_err(err, "sampler chain selected no token");
            return -1;
        }
        llama_token id = arr.data[arr.selected].id;
        if (s->grammar) {
            // cheap check: is the chosen token allowed?
            llama_token_data       one     = { id, 1.0f, 0.0f };
            llama_token_data_array one_arr = { &one, 1, -1, false };
            llama_sampler_apply(s->grammar, &one_arr);
            if (std::isinf(one_arr.data[0].logit) && one_arr.data[0].logit < 0) {
                // no: constrain all candidates, then sample again
                fill_candidates(s, logits, n_vocab, arr);
                pen_apply(s, arr);
                llama_sampler_apply(s->grammar, &arr);
                bool any = false;
                for (size_t i = 0; i < arr.size; i++) {
                    if (!(std::isinf(arr.data[i].logit) && arr.data[i].logit < 0)) {
                        any = true;
                        break;
                    }
                }
                if (!any) {
                    set_err(err, "grammar allows no token here");
                    return -1;
                }
                llama_sampler_apply(s->chain, &arr);
                if (arr.selected < 0 || arr.selected >= (int64_t) arr.size) {
                    set_err(err, "sampler chain selected no token");
                    return -1;
                }
                id = arr.data[arr.selected].id;
            }
            llama_sampler_accept(s->grammar, id);
        }
        llama_sampler_accept(s->chain, id);
        pen_accept(s, id);
        *out = id;
        return 0;
    } catch (const std::exception & e) {
        set_err(err, e.what());
        return -1;
    }
}

extern "C" int olm_sampler_accept(olm_sampler * s, llama_token token, bool grammar, char ** err) {
    try {
        if (grammar && s->grammar) {
            llama_sampler_accept(s->grammar, token);
        }
        llama_sampler_accept(s->chain, token);
        pen_accept(s, token);
        return 0;
    } catch (const std::exception & e) {
        set_err(err, e.what());
        return -1;
    }
}

extern "C" void olm_sampler_reset(olm_sampler * s) {
    llama_sampler_reset(s->chain);
    s->pen_prev.clear();
    s->pen_count.clear();
    std::fill(s->pen_mark.begin(), s->pen_mark.end(), 0);
    if (s->grammar) {
        llama_sampler_reset(s->grammar);
    }
}

// ---- chat templates ----

struct olm_chat_templates {
    common_chat_templates_ptr tmpls;
};

extern "C" olm_chat_templates * olm_chat_templates_init(const struct llama_model * model, const char * override, char ** err) {
    try {
        std::string ov = override ? override : "";
        if (!model && ov.empty()) {
            set_err(err, "no model and no template");
            return nullptr;
        }
        auto * t  = new olm_chat_templates;
        t->tmpls  = common_chat_templates_init(model, ov);
        if (!t->tmpls) {
            delete t;
            set_err(err, "template does not parse");
            return nullptr;
        }
        return t;
    } catch (const std::exception & e) {
        set_err(err, e.what());
        return nullptr;
    }
}

extern "C" void olm_chat_templates_free(olm_chat_templates * t) { delete t; }

extern "C" char * olm_chat_templates_source(olm_chat_templates * t) {
    try {
        return dup_str(common_chat_templates_source(t->tmpls.get()));
    } catch (const std::exception &) {
        return dup_str("");
    }
}

extern "C" char * olm_chat_templates_caps(olm_chat_templates * t) {
    try {
        ojson out = ojson::object();
        for (const auto & kv : common_chat_templates_get_caps(t->tmpls.get())) {
            out[kv.first] = kv.second;
        }
        out["supports_thinking"] = common_chat_templates_support_enable_thinking(t->tmpls.get());
        return dup_str(out.dump());
    } catch (const std::exception &) {
        return dup_str("{}");
    }
}

static const char * trigger_type_name(common_grammar_trigger_type t) {
    switch (t) {
        case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN:        return "token";
        case COMMON_GRAMMAR_TRIGGER_TYPE_WORD:         return "word";
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN:      return "pattern";
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: return "pattern_full";
    }
    return "word";
}

// input JSON:
// { "messages": [OpenAI messages], "tools": [OpenAI tools], "tool_choice": "auto",
//   "parallel_tool_calls": bool, "json_schema": "<schema text>", "grammar": "...",
//   "add_generation_prompt": bool, "continue_final": bool, "enable_thinking": bool,
//   "extract_thinking": bool, "kwargs": {name: "<json text>"}, "now": unix seconds }
extern "C" char * olm_chat_apply(olm_chat_templates * t, const char * input_json, char ** err) {
    try {
        ojson in = ojson::parse(input_json);
        common_chat_templates_inputs inputs;
        inputs.messages = common_chat_msgs_parse_oaicompat(common_json::parse(in.value("messages", ojson::array()).dump()));
        if (in.contains("tools") && !in["tools"].is_null()) {
            inputs.tools = common_chat_tools_parse_oaicompat(common_json::parse(in["tools"].dump()));
        }
        inputs.tool_choice          = common_chat_tool_choice_parse_oaicompat(in.value("tool_choice", std::string("auto")));
        inputs.parallel_tool_calls  = in.value("parallel_tool_calls", false);
        inputs.json_schema          = in.value("json_schema", std::string());
        inputs.grammar              = in.value("grammar", std::string());
        inputs.add_generation_prompt = in.value("add_generation_prompt", true);
        if (in.value("continue_final", false)) {
            inputs.continue_final_message = COMMON_CHAT_CONTINUATION_AUTO;
            inputs.add_generation_prompt  = false;
        }
        inputs.enable_thinking  = in.value("enable_thinking", true);
        inputs.reasoning_format = in.value("extract_thinking", true) ? COMMON_REASONING_FORMAT_DEEPSEEK : COMMON_REASONING_FORMAT_NONE;
        if (in.contains("kwargs") && in["kwargs"].is_object()) {
            for (const auto & kv : in["kwargs"].items()) {
                inputs.chat_template_kwargs[kv.key()] = kv.value().get<std::string>();
            }
        }
        if (in.contains("now") && in["now"].is_number()) {
            inputs.now = std::chrono::system_clock::time_point(std::chrono::seconds(in["now"].get<int64_t>()));
        }

        common_chat_params p = common_chat_templates_apply(t->tmpls.get(), inputs);

        ojson out;
        out["prompt"]       = p.prompt;
        out["grammar"]      = p.grammar;
        out["grammar_lazy"] = p.grammar_lazy;
        ojson trig = ojson::array();
        for (const auto & g : p.grammar_triggers) {
            ojson j;
            j["type"]  = trigger_type_name(g.type);
            j["value"] = g.value;
            j["token"] = g.token;
            trig.push_back(j);
        }
        out["grammar_triggers"]   = trig;
        out["preserved_tokens"]   = p.preserved_tokens;
        out["additional_stops"]   = p.additional_stops;
        out["format"]             = (int) p.format;
        out["format_name"]        = common_chat_format_name(p.format);
        out["parser"]             = p.parser;
        out["generation_prompt"]  = p.generation_prompt;
        out["supports_thinking"]  = p.supports_thinking;
        out["thinking_start_tag"] = p.thinking_start_tag;
        out["thinking_end_tags"]  = p.thinking_end_tags;
        return dup_str(out.dump());
    } catch (const std::exception & e) {
        set_err(err, e.what());
        return nullptr;
    }
}

// params JSON: { "format": int, "parser": "...", "generation_prompt": "...",
//                "extract_thinking": bool, "parse_tool_calls": bool }
extern "C" char * olm_chat_parse(const char * text, bool partial, const char * params_json, char ** err) {
    try {
        ojson in = ojson::parse(params_json);
        common_chat_parser_params pp;
        int format = in.value("format", 0);
        if (format < 0 || format >= COMMON_CHAT_FORMAT_COUNT) {
            set_err(err, "unknown chat format " + std::to_string(format));
            return nullptr;
        }
        pp.format            = (common_chat_format) format;
        pp.reasoning_format  = in.value("extract_thinking", false) ? COMMON_REASONING_FORMAT_DEEPSEEK : COMMON_REASONING_FORMAT_NONE;
        pp.generation_prompt = in.value("generation_prompt", std::string());
        pp.parse_tool_calls  = in.value("parse_tool_calls", false);
        std::string parser   = in.value("parser", std::string());
        if (!parser.empty()) {
            pp.parser.load(parser);
        }
        common_chat_msg msg = common_chat_parse(text, partial, pp);
        ojson out;
        out["role"]              = msg.role.empty() ? "assistant" : msg.role;
        out["content"]           = msg.content;
        out["reasoning_content"] = msg.reasoning_content;
        ojson calls = ojson::array();
        for (const auto & tc : msg.tool_calls) {
            ojson c;
            c["id"]        = tc.id;
            c["name"]      = tc.name;
            c["arguments"] = tc.arguments;
            calls.push_back(c);
        }
        out["tool_calls"] = calls;
        return dup_str(out.dump());
    } catch (const std::exception & e) {
        set_err(err, e.what());
        return nullptr;
    }
}

extern "C" char * olm_json_schema_to_grammar(const char * schema_json, char ** err) {
    try {
        return dup_str(json_schema_to_grammar(common_json::parse(schema_json)));
    } catch (const std::exception & e) {
        set_err(err, e.what());
        return nullptr;
    }
}

extern "C" int olm_quantize(const char * in, const char * out, const llama_model_quantize_params * params, char ** err) {
    try {
        uint32_t rc = llama_model_quantize(in, out, params);
        if (rc != 0) {
            char * last = olm_log_last_error();
            set_err(err, last ? last : "llama_model_quantize failed");
            olm_free(last);
            return -1;
        }
        return 0;
    } catch (const std::exception & e) {
        set_err(err, e.what());
        return -1;
    }
}

// ---- fitting params to free device memory ----

struct olm_fit {
    std::vector<float>                            tensor_split;
    std::vector<llama_model_tensor_buft_override> overrides;
};

static std::mutex g_fit_mu;

extern "C" int olm_fit_params(const char * path, struct llama_model_params * mparams, struct llama_context_params * cparams,
                              size_t margin_bytes, olm_fit ** bufs) {
    *bufs = nullptr;
    std::lock_guard<std::mutex> lk(g_fit_mu);
    try {
        auto * f = new olm_fit;
        f->tensor_split.assign(std::max<size_t>(1, llama_max_devices()), 0.0f);
        f->overrides.assign(std::max<size_t>(1, llama_max_tensor_buft_overrides()), llama_model_tensor_buft_override{nullptr, nullptr});
        *bufs = f;
        std::vector<size_t> margins(std::max<size_t>(1, llama_max_devices()), margin_bytes);
        return (int) common_fit_params(path, mparams, cparams, f->tensor_split.data(), f->overrides.data(),
                                       margins.data(), 4096, nullptr, GGML_LOG_LEVEL_ERROR);
    } catch (const std::exception &) {
        // common_fit_params catches its own errors; this is bad_alloc
        return COMMON_PARAMS_FIT_STATUS_ERROR;
    }
}

extern "C" void olm_fit_free(olm_fit * f) {
    delete f;
}
