// Package sched decides which model runners are loaded and hands them to
// requests: olm's scheduler (Ollama's equivalent lives in its server).
//
// A request calls Get with a Spec (the model's name, its load options and
// the request's keep_alive) and receives a Lease on a ready runner, starting
// one if needed; it calls Lease.Release when done. The scheduler
//
//   - shares a runner between requests up to its number of parallel slots
//     (Options.NumParallel, default 1) and queues the rest, first come first
//     served, in a bounded queue per model, all its specs together
//     (Options.MaxQueue, default 512);
//     a full queue answers ErrQueueFull (the server's 503);
//   - keeps an idle runner loaded for the last request's keep_alive
//     (default 5 minutes; 0 unloads as soon as it is idle; negative keeps it
//     until Unload or Close);
//   - loads at most Options.MaxLoaded models (default 3): to load another it
//     evicts the least recently used idle runner, and waits while every
//     loaded runner is busy;
//   - keeps one runner per model (Spec.Name): a request whose digest or
//     load options (num_ctx, num_batch, num_gpu, num_thread, use_mmap, ...)
//     differ from the loaded runner's reloads the model, as Ollama does.
//     The old runner takes no new requests, finishes the ones in flight and
//     is stopped; the new one starts once the old process has exited, so a
//     model never holds memory twice. Requests for one model are served in
//     arrival order across specs: requests that alternate between two specs
//     reload between them (one reload per change, never starving either),
//     while consecutive requests for one spec share its runner;
//   - cancels a start that nobody waits for any more (every request that
//     wanted it gave up), stopping the runner process;
//   - notices a runner that exits: requests in flight on it fail with the
//     runner's error (runner.ErrRunnerExited), the others are unaffected,
//     and the next Get for that model starts a fresh runner.
//
// List reports the loaded models for /api/ps; Unload stops one (after its
// requests finish); Close stops all.
//
// The scheduler starts runners through a Starter, so tests use a fake one;
// ProcessStarter starts real `olm runner` child processes. It reads no
// environment variables: the command layer passes OLM_KEEP_ALIVE,
// OLM_MAX_LOADED_MODELS and OLM_NUM_PARALLEL in through Options.
//
// All methods are safe for concurrent use.
package sched
