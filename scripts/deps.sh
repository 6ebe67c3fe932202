#!/usr/bin/env bash
# Installs the Debian packages the tests, the demo and the benchmarks need
# when they are missing: docker.io (the engine), debootstrap (the RocketMQ
# image's Java root file system), wrk (benchmarks), Maven and a JDK (the
# RocketMQ jars and the Java test client). Safe to run many times.
set -euo pipefail
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v javac >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${need[*]}" >&2
exec 9>/tmp/rmq-nomad-driver-apt.lock
flock 9
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
