// Package engine is the runner side of package runner: it loads one GGUF
// model through runtime/llama and serves runner's protocol on a unix socket.
// `olm runner` is a thin wrapper around Main.
//
// # Slots and continuous batching
//
// The engine has LoadOptions.Parallel slots (default 1) that share one
// llama.cpp context: the context holds NumCtx × Parallel tokens and every
// slot is a sequence of its own with NumCtx tokens. A single decode loop
// serves all slots: each step builds one batch holding the next token of
// every generating slot, then fills the rest of the batch (NumBatch tokens)
// with prompt chunks of slots that are still reading their prompt, decodes
// it once, and samples one token for each slot that produced logits. So a
// long prompt never stalls the other slots for more than one batch, and
// concurrent requests share the matrix multiplications of each step.
//
// Requests beyond the number of slots wait in the engine, first come first
// served (the scheduler in runtime/sched normally keeps them out).
//
// # Per-slot behaviour
//
//   - Sampling: each request gets its own sampler chain (runtime/llama's
//     Sampler, covering every Ollama option and grammars).
//   - Stop strings: generated text is held back while it could still be the
//     start of a stop string, so a stop string is never streamed; the text
//     before it is. Incomplete UTF-8 sequences are held back too.
//   - Prompt cache: a slot keeps its KV cache after a request; a new request
//     goes to the free slot whose cache shares the longest prefix with its
//     prompt, and only the rest of the prompt is evaluated.
//   - Prompts longer than the slot's context are truncated like Ollama does:
//     the first num_keep tokens are kept, then the most recent tokens, to
//     3/4 of the context so there is room to answer; the final event says
//     Truncated. When generation fills the context, a request with a
//     num_predict limit shifts the context (drops half of the tokens after
//     num_keep) and goes on; an unlimited request ends with done_reason
//     "length" rather than running forever.
//   - Cancellation: a request whose connection closes is dropped at the
//     next step of the loop, within one decoded token, and its slot freed.
//
// # Images and LoRA adapters
//
// With a projector (LoadOptions.Projector) a prompt may hold images:
// runtime/llama decodes them (in Go) and libmtmd tokenizes the prompt into
// text and image chunks. The task's prompt holds one placeholder per image
// position (negative, made from the image's hash and the position in it);
// the loop decodes an image on its own, before the step's shared batch,
// when its slot reaches it (text before it was decoded in an earlier step).
// The prompt cache reuses an image when the next prompt has the same image
// at the same place (the next turn of a chat); prompts with images are not
// truncated. LoRA adapters are loaded with the model and
// applied to the generation and embedding contexts.
//
// # Embeddings
//
// Embeddings use a second llama.cpp context created on first use (or the
// only one, for an embedding-only load) with the model's pooling, or mean
// pooling for generative models that declare none. Vectors are
// L2-normalized. Up to 8 inputs that fit in the context together are
// embedded in one decode, one sequence each.
package engine
