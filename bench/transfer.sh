#!/usr/bin/env bash
# transfer.sh measures olm pull and push of a single-layer model against the
# real distribution registry on loopback, side by side with the oras CLI
# doing the same, and prints the time ratios (issue 3's targets: pull ≥ 1.5×
# faster than oras, push no slower, pull within 1.3× of reading the bytes
# from disk once). It also times a re-pull of an up-to-date model and counts
# the registry requests it makes.
#
# Usage: bench/transfer.sh   (after `make tools`)
# Environment: SIZE_MB (model size, default 2048), REPS (default 3),
#              BENCH_DIR (work folder, default a new one under /var/tmp),
#              PARTS (olm --parts, default olm's own).
# Every measurement alternates olm and oras and reports the median. The
# page cache is warm for both (no root needed). Run it on an idle machine:
# on a loaded one the ratio of two noisy runs is noise.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-2048}
REPS=${REPS:-3}
gobin=${OLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/olm}/gobin
for t in registry oras; do
  [ -x "$gobin/$t" ] || { echo "transfer.sh: $gobin/$t missing; run make tools" >&2; exit 1; }
done
work=${BENCH_DIR:-$(mktemp -d /var/tmp/olm-bench-transfer.XXXXXX)}
mkdir -p "$work" bench/out
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/olm" ./cmd/olm
olm=$work/olm
oras=$gobin/oras
mt=application/vnd.cncf.model.weight.v1.raw
at=application/vnd.cncf.model.manifest.v1+json

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_registry NAME: a fresh registry with empty storage; sets REG to host:port.
start_registry() {
  local name=$1 port
  port=$(free_port)
  rm -rf "$work/$name"
  mkdir -p "$work/$name/data"
  cat >"$work/$name/config.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/$name/data
http:
  addr: 127.0.0.1:$port
log:
  level: error
  accesslog:
    disabled: false
YML
  "$gobin/registry" serve "$work/$name/config.yml" >"$work/$name/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  REG=127.0.0.1:$port
}

# secs CMD...: run CMD, print its wall time in seconds.
secs() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "transfer.sh: ${SIZE_MB} MiB single-layer model, $REPS rounds, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
head -c "${SIZE_MB}M" /dev/urandom >"$work/model.gguf"
digest=$(sha256sum "$work/model.gguf" | cut -c1-64)

# The seed registry, holding the model as oras pushes it.
start_registry seed
seed=$REG
(cd "$work" && "$oras" push --plain-http "$seed/bench/model:v1" --artifact-type "$at" "model.gguf:$mt" >/dev/null)
blob=$work/seed/data/docker/registry/v2/blobs/sha256/${digest:0:2}/$digest/data
parts=()
[ -n "${PARTS:-}" ] && parts=(--parts "$PARTS")

pull_olm=() pull_oras=() push_olm=() push_oras=() readonce=() copyonce=()
for r in $(seq "$REPS"); do
  # pull
  rm -rf "$work/oras-out" && mkdir -p "$work/oras-out"
  pull_oras+=("$(cd "$work/oras-out" && secs "$oras" pull --plain-http "$seed/bench/model:v1")")
  rm -rf "$work/oras-out"
  rm -rf "$work/home"
  pull_olm+=("$(OLM_HOME=$work/home secs "$olm" pull -q "${parts[@]}" "$seed/bench/model:v1")")
  # reading the same bytes once
  readonce+=("$(secs cat "$blob")")
  copyonce+=("$(secs cp "$blob" "$work/copy")")
  rm -f "$work/copy"
  # push, each into an empty registry
  start_registry pushdst
  push_oras+=("$(cd "$work" && secs "$oras" push --plain-http "$REG/bench/model:v1" --artifact-type "$at" "model.gguf:$mt")")
  kill "${pids[-1]}"; unset 'pids[-1]'
  start_registry pushdst
  OLM_HOME=$work/home "$olm" tag "$seed/bench/model:v1" "$REG/bench/model:v1"
  push_olm+=("$(OLM_HOME=$work/home secs "$olm" push -q "$REG/bench/model:v1")")
  kill "${pids[-1]}"; unset 'pids[-1]'
  echo "round $r: pull olm ${pull_olm[-1]}s oras ${pull_oras[-1]}s | push olm ${push_olm[-1]}s oras ${push_oras[-1]}s | read once ${readonce[-1]}s, cp ${copyonce[-1]}s"
done

# Re-pull of an up-to-date model: time and registry requests.
before=$(grep -c '"GET\|"HEAD\|HEAD /v2\|GET /v2' "$work/seed/log" || true)
repull=$(OLM_HOME=$work/home secs "$olm" pull -q "$seed/bench/model:v1")
after=$(grep -c '"GET\|"HEAD\|HEAD /v2\|GET /v2' "$work/seed/log" || true)
reqs=$(tail -n $((after - before)) "$work/seed/log" | grep -o '"\(GET\|HEAD\) [^ ]*' | sed 's/"//' | tr '\n' ';')

m() { printf '%s\n' "$@" | median; }
po=$(m "${pull_olm[@]}"); pr=$(m "${pull_oras[@]}"); so=$(m "${push_olm[@]}"); sr=$(m "${push_oras[@]}")
ro=$(m "${readonce[@]}"); co=$(m "${copyonce[@]}")
mb=$SIZE_MB
{
  echo
  echo "model ${SIZE_MB} MiB, median of $REPS (seconds, MiB/s)"
  printf 'pull  olm  %6.2fs %6.0f MiB/s   oras %6.2fs %6.0f MiB/s   oras/olm = %.2fx (target >= 1.5)\n' "$po" "$(echo "$mb/$po" | bc -l)" "$pr" "$(echo "$mb/$pr" | bc -l)" "$(echo "$pr/$po" | bc -l)"
  printf 'push  olm  %6.2fs %6.0f MiB/s   oras %6.2fs %6.0f MiB/s   oras/olm = %.2fx (target >= 1.0)\n' "$so" "$(echo "$mb/$so" | bc -l)" "$sr" "$(echo "$mb/$sr" | bc -l)" "$(echo "$sr/$so" | bc -l)"
  printf 'read once (cat, warm cache) %6.2fs   olm pull / read once = %.2fx (target <= 1.3)\n' "$ro" "$(echo "$po/$ro" | bc -l)"
  printf 'copy once (cp, warm cache)  %6.2fs   olm pull / cp        = %.2fx\n' "$co" "$(echo "$po/$co" | bc -l)"
  printf 're-pull of the up-to-date model: %.3fs, %d registry request(s): %s\n' "$repull" "$((after - before))" "$reqs"
} | tee bench/out/transfer-summary.txt
