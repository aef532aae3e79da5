#!/usr/bin/env bash
# serve.sh benchmarks `olm serve` over HTTP (see bench/serve/doc.go):
# /api/generate tokens/s against llama-server of the same llama.cpp release
# (same model, threads, context), and 4 concurrent streaming clients with
# OLM_NUM_PARALLEL=4 against 1. Prints tokens/s and ratios; the output is
# kept in bench/out/serve.txt.
#
# Usage: bench/serve.sh
# Environment: OLM_BENCH_MODEL, OLM_BENCH_THREADS, OLM_BENCH_TG, OLM_BENCH_REPS,
#              OLM_BENCH_OLM (a prebuilt olm to measure instead of building
#              this tree, e.g. an older commit's for before/after).
# Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f runtime/llama/llama.cpp/stamp ] || scripts/llama-cpp.sh
mkdir -p bench/out
go test -tags "${TAGS:-}" -run '^$' -bench . -benchtime 1x -timeout 60m ./bench/serve/ | tee bench/out/serve.txt
