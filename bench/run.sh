#!/usr/bin/env bash
# run.sh runs every side-by-side benchmark and keeps their output in
# bench/out/: the runtime binding against llama-bench, continuous batching in
# the runner, olm serve against llama-server, olm pull/push against the oras
# CLI, and the create/quantize/convert benchmarks (go test -bench). Each prints
# its own ratios. Run on an otherwise idle machine; expect tens of minutes,
# most of it generating and moving the benchmark models once.
#
# Usage: bench/run.sh [runtime|runner|serve|transfer|build|convert ...]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
which=("$@")
[ ${#which[@]} -gt 0 ] || which=(runtime runner serve transfer build convert)
for b in "${which[@]}"; do
  echo "== $b"
  case $b in
    runtime|runner|serve|transfer) bash "bench/$b.sh" 2>&1 | tee "bench/out/$b.txt" ;;
    build) go test -run XXX -bench 'Create2GB|QuantizeQ4KM' -benchtime 1x ./build 2>&1 | tee bench/out/build.txt ;;
    convert) go test -run XXX -bench 'Convert$' -benchtime 1x ./convert 2>&1 | tee bench/out/convert.txt ;;
    *) echo "bench/run.sh: unknown benchmark $b (runtime, runner, serve, transfer, build, convert)" >&2; exit 2 ;;
  esac
done
