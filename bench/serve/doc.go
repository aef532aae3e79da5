// Package serve benchmarks `olm serve` end to end over HTTP:
//
//   - BenchmarkGenerateVsLlamaServer: generation tokens/s of /api/generate
//     against llama-server of the same pinned llama.cpp release, on the same
//     model, threads and context, printing olm/llama-server, streaming and
//     not. llama-server streams one event per token; olm's runner sends the
//     pieces of a model faster than ~500 tokens/s in fewer events (see
//     docs/runner.md), so on the tiny model the streaming ratio also
//     measures that choice;
//   - BenchmarkParallel: aggregate tokens/s of 4 concurrent streaming
//     clients with OLM_NUM_PARALLEL=4 against OLM_NUM_PARALLEL=1, printing
//     the ratio (continuous batching at work).
//
// Run with bench/serve.sh, or
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 60m ./bench/serve/
//
// Environment: OLM_BENCH_MODEL (a GGUF; default the generated ~106M-param
// testmodel.BenchLlama cached under ~/.cache/olm/models, then the shared
// tiny model), OLM_BENCH_THREADS (default runtime.NumCPU()), OLM_BENCH_TG
// (tokens per request, default 128), OLM_BENCH_REPS (default 3).
package serve
