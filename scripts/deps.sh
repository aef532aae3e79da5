#!/usr/bin/env bash
# deps.sh installs the Debian packages olm's build and tests need, only when
# something is missing: cmake, ninja, ccache and a C++ compiler for llama.cpp,
# Node.js and npm for the API client tests.
set -euo pipefail
missing=()
for pair in cmake:cmake ninja:ninja-build ccache:ccache g++:g++ git:git node:nodejs npm:npm; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
