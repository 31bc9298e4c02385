# Shared by build-health-tools.sh and build-promtool.sh (sourced, not run): the cache layout, a
# lock so two builds of one tool (two test runs, two worktrees) never write the same folder at
# once, and the module settings every tool build uses.
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/tde-operator"

log() { printf '[%s] %s\n' "$TOOL_LOG_NAME" "$*" >&2; }

require_go() {
  command -v go >/dev/null || { log "Go is required to build $1 for the tests (install Go 1.24+)"; exit 1; }
}

# lock_build NAME: holds an exclusive lock on CACHE_ROOT/locks/NAME.lock until the script exits.
# A second build of the same tool waits here, then finds the first one's result in the cache.
lock_build() {
  mkdir -p "$CACHE_ROOT/locks"
  exec 9>"$CACHE_ROOT/locks/$1.lock"
  if ! flock -n 9; then
    log "another build of $1 is running: waiting for it"
    flock 9
  fi
}

# The proxy is reachable from every machine, the checksum database not always: only for these
# builds, and only when it cannot be reached, go without it (go.sum files still pin what they list).
go_build_env() {
  if [[ "$(go env GOSUMDB)" != "off" ]] && ! timeout 10 bash -c "exec 3<>/dev/tcp/sum.golang.org/443" 2>/dev/null; then
    log "checksum database unreachable: building with GOSUMDB=off"
    export GOSUMDB=off
  fi
  export CGO_ENABLED=0
}

# build_from_proxy NAME MODULE VERSION PACKAGE OUTFILE LDFLAGS [TAGS]: builds PACKAGE of MODULE at
# VERSION (from the module proxy) in a throw-away module under CACHE_ROOT/build/NAME, into OUTFILE
# (written under a temporary name and moved, so a cut build never looks finished).
build_from_proxy() {
  local name="$1" module="$2" version="$3" package="$4" outfile="$5" ldflags="$6" tags="${7:-}"
  local work="$CACHE_ROOT/build/$name"
  mkdir -p "$work" "$(dirname "$outfile")"
  printf 'module tde.dev/testbin/%s\n\ngo 1.24.0\n\nrequire %s v%s\n' "${name%%-v*}" "$module" "$version" >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >"$work/tools.go"
  (
    cd "$work"
    export GOFLAGS="${GOFLAGS:-} -mod=mod"
    log "resolving $module v$version modules"
    go mod tidy >&2
    log "building $package v$version (a few minutes on two cores)"
    go build -trimpath ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$outfile.tmp.$$" "$package" >&2
    mv "$outfile.tmp.$$" "$outfile"
  )
}
