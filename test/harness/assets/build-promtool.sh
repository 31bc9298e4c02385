#!/usr/bin/env bash
# Builds promtool (github.com/prometheus/prometheus/cmd/promtool) from the Go module proxy for the
# alert and metric tests (`promtool test rules`, `promtool check metrics`), once, cached under the
# user's cache directory keyed by version (the approach of build-helm.sh). The service-discovery
# plugins are left out (build tag remove_all_sd): promtool's rule and metric checks need none.
#
# Usage: build-promtool.sh        prints the path of the promtool binary
# Env:   TDE_PROMETHEUS_VERSION overrides the pinned Go module version (v0.3XX.Y is Prometheus 3.XX.Y).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOL_LOG_NAME=build-promtool
# shellcheck source=go-build-lib.sh
source "$HERE/go-build-lib.sh"

PROM_VERSION="${TDE_PROMETHEUS_VERSION:-0.316.0}"
OUT="$CACHE_ROOT/bin/promtool-v${PROM_VERSION}"

if [[ -x "$OUT/promtool" ]]; then
  echo "$OUT/promtool"
  exit 0
fi

require_go promtool
lock_build promtool
if [[ -x "$OUT/promtool" ]]; then
  echo "$OUT/promtool"
  exit 0
fi
go_build_env
# module v0.MNN.P is Prometheus M.NN.P (v0.316.0 is 3.16.0)
minor="${PROM_VERSION#0.}"
minor="${minor%%.*}"
semver="$((minor / 100)).$((minor % 100)).${PROM_VERSION##*.}"
build_from_proxy "promtool-v$PROM_VERSION" github.com/prometheus/prometheus "$PROM_VERSION" \
  github.com/prometheus/prometheus/cmd/promtool "$OUT/promtool" \
  "-s -w -X github.com/prometheus/common/version.Version=$semver" remove_all_sd
echo "$OUT/promtool"
