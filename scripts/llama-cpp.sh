#!/usr/bin/env bash
# llama-cpp.sh builds the pinned llama.cpp release that olm links against.
#
# The release is taken from the npm package node-llama-cpp@3.22.1, which
# carries upstream llama.cpp as a git bundle (llama/gitRelease.bundle). The
# tarball's sha256 is checked before anything is unpacked. Static libraries and
# the comparison tools (llama-bench, llama-server, llama-quantize) are built with
# cmake into a cache outside the work tree:
#
#   ${OLM_CACHE:-~/.cache/olm}/llama.cpp-<release>[-cuda]/
#     src/      the upstream source (a clone of the bundle)
#     build/    the cmake build tree
#     lib/      links to every static library the Go binding needs (libmtmd
#               for images included)
#     bin/      links to llama-bench, llama-server, llama-quantize
#     stamp     the configuration that was built; a matching stamp means "done"
#
# and runtime/llama/llama.cpp (ignored by git) is pointed at that folder, so
# the binding's #cgo directives find it with ${SRCDIR} and a plain `go build`
# works afterwards.
#
# Environment:
#   LLAMA_CPP_DIR  use this llama.cpp checkout instead of the pinned release
#   OLM_CUDA=1     build with -DGGML_CUDA=ON (needs nvcc); the Go build then
#                  needs `-tags cuda`
#   OLM_CACHE      cache root (default ~/.cache/olm)
#   OLM_JOBS       parallel build jobs (default: number of cores)
#
# Usage: scripts/llama-cpp.sh [--print-dir]
set -euo pipefail

PKG=node-llama-cpp@3.22.1
PKG_SHA256=a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f
RELEASE=node-llama-cpp-3.22.1

repo=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${OLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/olm}
jobs=${OLM_JOBS:-$(nproc 2>/dev/null || echo 2)}
cuda=${OLM_CUDA:-0}

if [ -n "${LLAMA_CPP_DIR:-}" ]; then
  [ -f "$LLAMA_CPP_DIR/include/llama.h" ] || {
    echo "llama-cpp.sh: LLAMA_CPP_DIR=$LLAMA_CPP_DIR has no include/llama.h; point it at a llama.cpp checkout" >&2
    exit 1
  }
  src=$(cd "$LLAMA_CPP_DIR" && pwd)
  key="custom-$(printf '%s' "$src" | sha256sum | cut -c1-12)"
else
  src=""
  key="$RELEASE"
fi
[ "$cuda" = 1 ] && key="$key-cuda"
dir="$cache_root/llama.cpp-$key"

if [ "${1:-}" = "--print-dir" ]; then
  echo "$dir"
  exit 0
fi

need() { command -v "$1" >/dev/null 2>&1 || { echo "llama-cpp.sh: $1 is required ($2)" >&2; exit 1; }; }
need cmake "apt-get install cmake"
need git "apt-get install git"
need c++ "apt-get install g++"

cmake_args=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=ON
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_TOOLS=ON
  -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_UI=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF
  -DLLAMA_OPENSSL=OFF
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON
)
if [ "$cuda" = 1 ]; then
  cmake_args+=(-DGGML_CUDA=ON)
fi
if command -v ninja >/dev/null 2>&1; then
  cmake_args+=(-G Ninja)
fi
if command -v ccache >/dev/null 2>&1; then
  cmake_args+=(-DGGML_CCACHE=ON)
else
  cmake_args+=(-DGGML_CCACHE=OFF)
fi
targets=(llama ggml llama-common mtmd llama-bench llama-server llama-quantize)

stamp="$key ${cmake_args[*]} ${targets[*]}"
link_tree() {
  ln -sfn "$dir" "$repo/runtime/llama/llama.cpp"
}
if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ] && [ -z "$src" ]; then
  link_tree
  echo "llama.cpp $key: cached in $dir"
  exit 0
fi

mkdir -p "$dir"
if [ -z "$src" ]; then
  if [ ! -f "$dir/src/.olm-release" ]; then
    need npm "apt-get install npm"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "llama.cpp: fetching $PKG"
    (cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
    tgz=$(ls "$tmp"/*.tgz)
    got=$(sha256sum "$tgz" | cut -d' ' -f1)
    if [ "$got" != "$PKG_SHA256" ]; then
      echo "llama-cpp.sh: $PKG tarball sha256 is $got, want $PKG_SHA256; refusing to build it" >&2
      exit 1
    fi
    tar -xzf "$tgz" -C "$tmp" package/llama/gitRelease.bundle package/llama/binariesGithubRelease.json
    rm -rf "$dir/src.tmp"
    git -c advice.detachedHead=false clone --quiet "$tmp/package/llama/gitRelease.bundle" "$dir/src.tmp"
    cp "$tmp/package/llama/binariesGithubRelease.json" "$dir/src.tmp/.olm-release"
    rm -rf "$dir/src"
    mv "$dir/src.tmp" "$dir/src"
  fi
  src="$dir/src"
else
  ln -sfn "$src" "$dir/src"
fi

echo "llama.cpp: configuring $key (${cmake_args[*]})"
cmake -S "$src" -B "$dir/build" "${cmake_args[@]}" >"$dir/configure.log" 2>&1 || {
  tail -40 "$dir/configure.log" >&2
  exit 1
}
echo "llama.cpp: building ${targets[*]} with $jobs jobs"
cmake --build "$dir/build" --config Release -j "$jobs" --target "${targets[@]}"

# Gather the static libraries and tools under stable names.
rm -rf "$dir/lib" "$dir/bin"
mkdir -p "$dir/lib" "$dir/bin"
find "$dir/build" -name '*.a' -print0 | while IFS= read -r -d '' a; do
  ln -sfn "$a" "$dir/lib/$(basename "$a")"
done
for t in llama-bench llama-server llama-quantize; do
  found=$(find "$dir/build" -type f -name "$t" -perm -u+x | head -n1)
  [ -n "$found" ] || { echo "llama-cpp.sh: $t was not built" >&2; exit 1; }
  ln -sfn "$found" "$dir/bin/$t"
done
printf '%s' "$stamp" >"$dir/stamp"
link_tree
echo "llama.cpp $key: built in $dir"
