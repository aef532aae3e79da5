// Package npm runs the unmodified `ollama` and `openai` npm clients against
// a real `olm serve`: its test builds olm, creates a model from the shared
// tiny GGUF in a temporary OLM_HOME, starts the server on a free loopback
// port and runs client.mjs (generate, chat streaming and not, embed, list,
// show, ps, JSON-schema output that must parse and validate, the OpenAI
// chat/completions/embeddings/models endpoints).
//
// The packages are pinned in package.json and package-lock.json; install
// them with `make npm` (npm ci). Outside CI a missing node, node_modules or
// llama.cpp build skips the test with instructions; with CI=true it fails.
package npm
