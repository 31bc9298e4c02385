#!/usr/bin/env bash
# Builds the real control-plane binaries the integration tests run against: kube-apiserver and
# kubectl from k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3, all through the Go module
# proxy. Binaries are cached under the user's cache directory, keyed by version, and built once.
#
# Usage: build-binaries.sh            prints the folder holding kube-apiserver, etcd and kubectl
# Env:   TDE_K8S_VERSION, TDE_ETCD_VERSION override the pinned versions.
set -euo pipefail

K8S_VERSION="${TDE_K8S_VERSION:-1.34.4}"
ETCD_VERSION="${TDE_ETCD_VERSION:-3.6.16}"
STAGING_VERSION="0.${K8S_VERSION#1.}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/tde-operator"
OUT="$CACHE_ROOT/bin/k8s-v${K8S_VERSION}-etcd-v${ETCD_VERSION}"

log() { printf '[build-binaries] %s\n' "$*" >&2; }

if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" && -x "$OUT/kubectl" ]]; then
  echo "$OUT"
  exit 0
fi

command -v go >/dev/null || { log "Go is required to build the test binaries (install Go 1.24+)"; exit 1; }
mkdir -p "$OUT"
WORK="$CACHE_ROOT/build"
mkdir -p "$WORK"

# The checksum database is not reachable from every machine; the proxy is. Only for this build,
# fall back to no checksum database when it cannot be reached.
if ! timeout 10 go env GOSUMDB >/dev/null 2>&1 || [[ "$(go env GOSUMDB)" == "off" ]]; then
  :
elif ! timeout 10 bash -c "exec 3<>/dev/tcp/sum.golang.org/443" 2>/dev/null; then
  log "checksum database unreachable: building the test binaries with GOSUMDB=off"
  export GOSUMDB=off
fi
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0

staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

build_kube() {
  local dir="$WORK/kube-v$K8S_VERSION"
  mkdir -p "$dir"
  {
    echo "module tde.dev/testbin/kube"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m v$STAGING_VERSION"; done
    echo ")"
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (
    cd "$dir"
    log "resolving k8s.io/kubernetes v$K8S_VERSION modules"
    go mod tidy >&2
    local minor="${K8S_VERSION#1.}"
    minor="${minor%%.*}"
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
    log "building kube-apiserver v$K8S_VERSION (several minutes on two cores)"
    go build -trimpath -ldflags "$ldflags" -o "$OUT/kube-apiserver.tmp.$$" k8s.io/kubernetes/cmd/kube-apiserver >&2
    mv "$OUT/kube-apiserver.tmp.$$" "$OUT/kube-apiserver"
    log "building kubectl v$K8S_VERSION"
    go build -trimpath -ldflags "$ldflags" -o "$OUT/kubectl.tmp.$$" k8s.io/kubernetes/cmd/kubectl >&2
    mv "$OUT/kubectl.tmp.$$" "$OUT/kubectl"
  )
}

build_etcd() {
  local dir="$WORK/etcd-v$ETCD_VERSION"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module tde.dev/testbin/etcd

go 1.24.0

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (
    cd "$dir"
    log "resolving go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
    go mod tidy >&2
    log "building etcd v$ETCD_VERSION"
    go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp.$$" go.etcd.io/etcd/server/v3 >&2
    mv "$OUT/etcd.tmp.$$" "$OUT/etcd"
  )
}

[[ -x "$OUT/etcd" ]] || build_etcd
[[ -x "$OUT/kube-apiserver" && -x "$OUT/kubectl" ]] || build_kube
echo "$OUT"
