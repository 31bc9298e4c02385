#!/usr/bin/env bash
# Builds Helm (helm.sh/helm/v3/cmd/helm) from the Go module proxy for the chart tests, once, and
# caches it under the user's cache directory keyed by version (the same approach as
# build-binaries.sh). A `helm` already on PATH with the pinned major version is not used on
# purpose: the tests pin one version so lint results do not drift between machines.
#
# Usage: build-helm.sh            prints the path of the helm binary
# Env:   TDE_HELM_VERSION overrides the pinned version.
set -euo pipefail

HELM_VERSION="${TDE_HELM_VERSION:-3.19.5}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/tde-operator"
OUT="$CACHE_ROOT/bin/helm-v${HELM_VERSION}"

log() { printf '[build-helm] %s\n' "$*" >&2; }

if [[ -x "$OUT/helm" ]]; then
  echo "$OUT/helm"
  exit 0
fi

command -v go >/dev/null || { log "Go is required to build helm for the chart tests (install Go 1.24+)"; exit 1; }
mkdir -p "$OUT"
WORK="$CACHE_ROOT/build/helm-v$HELM_VERSION"
mkdir -p "$WORK"

# The checksum database is not reachable from every machine; the proxy is. Only for this build,
# fall back to no checksum database when it cannot be reached.
if [[ "$(go env GOSUMDB)" == "off" ]]; then
  :
elif ! timeout 10 bash -c "exec 3<>/dev/tcp/sum.golang.org/443" 2>/dev/null; then
  log "checksum database unreachable: building helm with GOSUMDB=off"
  export GOSUMDB=off
fi
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0

cat >"$WORK/go.mod" <<MOD
module tde.dev/testbin/helm

go 1.24.0

require helm.sh/helm/v3 v$HELM_VERSION
MOD
cat >"$WORK/tools.go" <<'GO'
//go:build tools

package tools

import _ "helm.sh/helm/v3/cmd/helm"
GO

(
  cd "$WORK"
  log "resolving helm.sh/helm/v3 v$HELM_VERSION modules"
  go mod tidy >&2
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  log "building helm v$HELM_VERSION (a few minutes on two cores)"
  go build -trimpath -ldflags "$ldflags" -o "$OUT/helm.tmp.$$" helm.sh/helm/v3/cmd/helm >&2
  mv "$OUT/helm.tmp.$$" "$OUT/helm"
)
echo "$OUT/helm"
