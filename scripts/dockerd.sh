#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock: installs Debian's
# docker.io when dockerd is absent and starts dockerd when it is not running.
# Safe to run many times and from several processes at once.
set -euo pipefail

log() { echo "dockerd: $*" >&2; }

if docker version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

exec 9>/tmp/rmq-nomad-driver-dockerd.lock
flock 9

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker.io >&2
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /tmp/rmq-nomad-driver-dockerd.log)"
  $SUDO sh -c 'nohup dockerd >/tmp/rmq-nomad-driver-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /tmp/rmq-nomad-driver-dockerd.log"; exit 1; }
log "ready"
