#!/usr/bin/env bash
# Builds the tests' health tools from their source beside this script, our own Go modules whose
# dependencies come from the Go module proxy: health-tools/ (pinning sigs.k8s.io/cli-utils v0.37.2
# and github.com/yuin/gopher-lua v1.1.1) gives `kstatus` (what kstatus computes for an object) and
# `argo-health` (an Argo CD health.lua run in Argo CD's Lua environment); flux-health/ (pinning
# github.com/fluxcd/pkg/runtime v0.117.0) gives `flux-health` (Flux's evaluator of a
# Kustomization's healthCheckExprs). Cached under the user's cache directory in a folder named
# after a hash of the sources, so an edit rebuilds and an unchanged source is built once.
#
# Usage: build-health-tools.sh        prints the folder holding kstatus and argo-health
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCES=(health-tools flux-health)
TOOL_LOG_NAME=build-health-tools
# shellcheck source=go-build-lib.sh
source "$HERE/go-build-lib.sh"

hash="$(cd "$HERE" && find "${SOURCES[@]}" -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 | sort -z |
  xargs -0 sha256sum | sha256sum | cut -c1-12)"
OUT="$CACHE_ROOT/bin/health-tools-$hash"

built() { [[ -x "$OUT/kstatus" && -x "$OUT/argo-health" && -x "$OUT/flux-health" ]]; }
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
# go.sum files are committed: -mod=readonly fails instead of changing them
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
build() { # MODULE_DIR PACKAGE NAME
  log "building $3"
  (cd "$HERE/$1" && go build -trimpath -ldflags "-s -w" -o "$OUT/$3.tmp.$$" "$2" >&2)
  mv "$OUT/$3.tmp.$$" "$OUT/$3"
}
build health-tools ./cmd/kstatus kstatus
build health-tools ./cmd/argo-health argo-health
build flux-health . flux-health
echo "$OUT"
