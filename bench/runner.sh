#!/usr/bin/env bash
# runner.sh measures continuous batching in the runner (runtime/runner):
# aggregate generation tokens/s of 4 concurrent requests on a runner with 4
# slots against 1 request alone, on the compute-bound benchmark model
# (testmodel.BenchLlama, ~106M parameters F16, generated once into
# ~/.cache/olm/models), and the same ratio for llama.cpp's bare decode of 4
# sequences against 1 (the ceiling on this machine). Target: ≥ 2.5× on CPU.
# Then one request at a time through the runner against the bare binding
# loop (BenchmarkGenerate: tokens/s, ratio and CPU µs per token) on the
# bench model and the tiny one, whose ratio is the runner's overhead.
#
# Usage: bench/runner.sh
# Environment: OLM_BENCH_THREADS (threads; default llama.cpp's choice),
#              OLM_BENCH_TOKENS (tokens per request, default 64),
#              OLM_BENCH_MODEL (another GGUF, e.g. a quantized copy),
#              BENCHTIME (go test -benchtime, default 5x); TAGS=cuda.
# Run it on an otherwise idle machine: the ratio of two noisy runs is noise.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f runtime/llama/llama.cpp/stamp ] || scripts/llama-cpp.sh
mkdir -p bench/out
go test -tags "${TAGS:-}" -run '^$' -bench 'ParallelSlots|DecodeCeiling|Generate' -benchtime "${BENCHTIME:-5x}" -timeout 30m \
  ./runtime/runner/engine/ 2>&1 | grep -v 'runner: ' | tee bench/out/runner.txt
