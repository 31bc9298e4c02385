#!/usr/bin/env bash
# Builds the tests' health tools from their source beside this script (health-tools/: our own
# Go module, pinning sigs.k8s.io/cli-utils v0.37.2 and github.com/yuin/gopher-lua v1.1.1, whose
# modules come from the Go module proxy): `kstatus` (what Flux's kstatus computes for an object)
# and `argo-health` (an Argo CD health.lua run in Argo CD's Lua environment). Cached under the
# user's cache directory in a folder named after a hash of the source, so an edit rebuilds and an
# unchanged source is built once.
#
# Usage: build-health-tools.sh        prints the folder holding kstatus and argo-health
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/health-tools"
TOOL_LOG_NAME=build-health-tools
# shellcheck source=go-build-lib.sh
source "$HERE/go-build-lib.sh"

hash="$(cd "$SRC" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 | sort -z |
  xargs -0 sha256sum | sha256sum | cut -c1-12)"
OUT="$CACHE_ROOT/bin/health-tools-$hash"

built() { [[ -x "$OUT/kstatus" && -x "$OUT/argo-health" ]]; }
if built; then
  echo "$OUT"
  exit 0
fi

require_go "the health tools"
lock_build health-tools
if built; then
  echo "$OUT"
  exit 0
fi
go_build_env
mkdir -p "$OUT"
(
  cd "$SRC"
  # go.sum is committed: -mod=readonly fails instead of changing it
  export GOFLAGS="${GOFLAGS:-} -mod=readonly"
  for tool in kstatus argo-health; do
    log "building $tool"
    go build -trimpath -ldflags "-s -w" -o "$OUT/$tool.tmp.$$" "./cmd/$tool" >&2
    mv "$OUT/$tool.tmp.$$" "$OUT/$tool"
  done
)
echo "$OUT"
