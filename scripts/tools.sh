#!/usr/bin/env bash
# Builds the Nomad v1.6.3 and Consul v1.15.6 agents used by tests and the demo
# from the Go module proxy, into $CACHE_DIR/bin. Each binary is built only when
# missing. Prints the bin directory on stdout.
set -euo pipefail

NOMAD_VERSION=v1.6.3
NOMAD_API_VERSION=v0.0.0-20231030125810-e0497bff1437
CONSUL_VERSION=v1.15.6

CACHE_DIR=${CACHE_DIR:-$HOME/.cache/rmq-nomad-driver}
BIN="$CACHE_DIR/bin"
mkdir -p "$BIN"

log() { echo "tools: $*" >&2; }

# modsrc MODULE@VERSION -> prints the module's source dir in the module cache.
modsrc() {
  GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p'
}

build_nomad() {
  local out="$BIN/nomad-${NOMAD_VERSION#v}"
  [ -x "$out" ] && return 0
  log "building nomad $NOMAD_VERSION (about 2-4 minutes)"
  local work; work=$(mktemp -d)
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' RETURN
  cp -r "$(modsrc github.com/hashicorp/nomad@$NOMAD_VERSION)" "$work/nomad"
  chmod -R u+w "$work/nomad"
  rm -rf "$work/nomad/api"
  cp -r "$(modsrc github.com/hashicorp/nomad/api@$NOMAD_API_VERSION)" "$work/nomad/api"
  chmod -R u+w "$work/nomad/api"
  (cd "$work/nomad" && GOFLAGS=-mod=mod CGO_ENABLED=1 go build -trimpath -o "$out.tmp" .)
  mv "$out.tmp" "$out"
}

build_consul() {
  local out="$BIN/consul-${CONSUL_VERSION#v}"
  [ -x "$out" ] && return 0
  log "building consul $CONSUL_VERSION (about 2-4 minutes)"
  local work; work=$(mktemp -d)
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' RETURN
  cp -r "$(modsrc github.com/hashicorp/consul@$CONSUL_VERSION)" "$work/consul"
  chmod -R u+w "$work/consul"
  # The module zip lacks the nested modules its go.mod replaces with ./dirs.
  local sub ver
  for sub in api sdk proto-public envoyextensions troubleshoot; do
    if grep -q "github.com/hashicorp/consul/$sub => ./$sub" "$work/consul/go.mod" && [ ! -f "$work/consul/$sub/go.mod" ]; then
      ver=$(awk -v m="github.com/hashicorp/consul/$sub" '$1==m && $2 ~ /^v/ {print $2; exit}' "$work/consul/go.mod")
      rm -rf "$work/consul/$sub"
      cp -r "$(modsrc github.com/hashicorp/consul/$sub@$ver)" "$work/consul/$sub"
      chmod -R u+w "$work/consul/$sub"
    fi
  done
  (cd "$work/consul" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$out.tmp" .)
  mv "$out.tmp" "$out"
}

case "${1:-all}" in
  nomad) build_nomad ;;
  consul) build_consul ;;
  all) build_nomad; build_consul ;;
  *) echo "usage: $0 [nomad|consul|all]" >&2; exit 2 ;;
esac
ln -sf "nomad-${NOMAD_VERSION#v}" "$BIN/nomad" 2>/dev/null || true
ln -sf "consul-${CONSUL_VERSION#v}" "$BIN/consul" 2>/dev/null || true
echo "$BIN"
