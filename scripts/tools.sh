#!/usr/bin/env bash
# tools.sh builds the third-party tools olm's tests run against, with the Go
# module proxy, into ${OLM_CACHE:-~/.cache/olm}/gobin (built once, then reused):
#   registry  github.com/distribution/distribution/v3/cmd/registry@v3.1.2
#   oras      oras.land/oras/cmd/oras@v1.3.6
#   crane     github.com/google/go-containerregistry/cmd/crane@v0.22.1
set -euo pipefail
cache_root=${OLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/olm}
gobin="$cache_root/gobin"
mkdir -p "$gobin"
install() {
  local name=$1 pkg=$2
  if [ -x "$gobin/$name" ] && [ "$(cat "$gobin/$name.version" 2>/dev/null)" = "$pkg" ]; then
    return
  fi
  echo "tools: building $pkg"
  GOBIN="$gobin" CGO_ENABLED=0 go install "$pkg"
  printf '%s' "$pkg" >"$gobin/$name.version"
}
install registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2
install oras oras.land/oras/cmd/oras@v1.3.6
install crane github.com/google/go-containerregistry/cmd/crane@v0.22.1
