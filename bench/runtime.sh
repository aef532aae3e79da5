#!/usr/bin/env bash
# runtime.sh compares olm's llama.cpp binding (runtime/llama) with llama.cpp's
# own llama-bench of the same pinned release: same model, threads, context
# and batch sizes (-p 512 -n 128, 5 repetitions, best of three alternating
# rounds). It prints tokens/s for prompt processing (pp) and generation (tg)
# and the ratio olm/llama-bench, first on the compute-bound benchmark model
# (testmodel.BenchLlama, ~106M parameters, generated once into
# ~/.cache/olm/models), then on the tiny model, where the difference per
# token is the binding's overhead.
#
# Usage: bench/runtime.sh            (after scripts/llama-cpp.sh)
# Environment: OLM_BENCH_MODEL, OLM_BENCH_THREADS, OLM_BENCH_PP, OLM_BENCH_TG,
#              OLM_BENCH_REPS (see runtime/llama/bench_test.go); TAGS=cuda.
# Run it on an otherwise idle machine: the ratio of two noisy runs is noise.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f runtime/llama/llama.cpp/stamp ] || scripts/llama-cpp.sh
mkdir -p bench/out
{
  go test -tags "${TAGS:-}" -run '^$' -bench 'VsLlamaBench' -benchtime 1x -timeout 60m ./runtime/llama/
  go test -tags "${TAGS:-}" -run '^$' -bench 'DecodeToken|Sample' ./runtime/llama/
} | tee bench/out/runtime.txt
