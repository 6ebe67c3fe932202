#!/bin/bash
# Builds the local Docker image rmq-nomad/rocketmq:<RocketMQ version> without
# any image registry: a Debian root file system made with debootstrap, the
# Debian OpenJDK 17 JRE, and the RocketMQ jars from Maven Central, joined
# with `docker import`.
#
#   images/rocketmq/build.sh              build (or reuse) the image
#   images/rocketmq/build.sh --print-tag  print the image tag and exit
#   images/rocketmq/build.sh --print-keyed-tag
#                                         print the tag of this very content
#                                         (tag:<version>-<build key>)
#   images/rocketmq/build.sh --rebuild    re-assemble and re-import the image
#                                         (reuses the cached JRE root fs + jars)
#
# Everything slow is cached under ${CACHE_DIR:-$HOME/.cache/rmq-nomad-driver}:
#   rocketmq-image/jre-rootfs-<suite>-<key>.tar   Debian + JRE (debootstrap)
#   rocketmq-image/lib-<version>-<key>/           RocketMQ jars (Maven)
#   rocketmq-image/rocketmq-<version>-<key>.tar   the image's file system
#   m2/                                           Maven's local repository
# The keys are hashes of the inputs, so a change to the package list, the pom,
# the entrypoint or this script is picked up on the next run. If the image is
# present and current, the script does nothing; if only the final tarball is
# there, it is imported again (seconds).
#
# Needs root (debootstrap, chroot, mount), debootstrap, tar, docker and Maven
# (mvn) with a JDK; reaches only Debian's mirrors and Maven Central.
# Environment: CACHE_DIR, MAVEN_REPO_LOCAL (default $CACHE_DIR/m2),
# DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR (default: from /etc/apt/sources*),
# RMQ_IMAGE_TAG (default rmq-nomad/rocketmq:<version>: another tag keeps a
# work-in-progress image apart from the one other checkouts use).
set -euo pipefail

ROCKETMQ_VERSION=5.3.3
IMAGE_REPO=rmq-nomad/rocketmq
TAG=${RMQ_IMAGE_TAG:-$IMAGE_REPO:$ROCKETMQ_VERSION}
SUITE=bookworm
# The JRE and nothing else: bash, coreutils, mawk, sed and grep come with the
# minbase variant and are all the entrypoint needs.
PACKAGES=(openjdk-17-jre-headless)
# Bump when the way the root fs is made changes (invalidates its cache).
ROOTFS_RECIPE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${CACHE_DIR:-$HOME/.cache/rmq-nomad-driver}
CACHE=$CACHE_ROOT/rocketmq-image
MAVEN_REPO=${MAVEN_REPO_LOCAL:-$CACHE_ROOT/m2}

START=$SECONDS
log() { printf '[rocketmq-image %3ds] %s\n' $((SECONDS - START)) "$*" >&2; }
die() { log "error: $*"; exit 1; }
# Debian's Maven 3.8 prints colour codes even in batch mode.
strip_ansi() { sed -u 's/\x1b\[[0-9;]*m//g'; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
}

REBUILD=0
PRINT_KEYED=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --print-tag) echo "$TAG"; exit 0 ;;
    --print-keyed-tag) PRINT_KEYED=1 ;;
    --rebuild) REBUILD=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
  shift
done

sha() { sha256sum | cut -c1-16; }

ROOTFS_KEY=$(printf '%s\n' "$SUITE" "$ROOTFS_RECIPE" "${PACKAGES[@]}" | sha)
LIB_KEY=$( (echo "$ROCKETMQ_VERSION"; cat "$HERE/pom.xml") | sha)
IMAGE_KEY=$( (echo "$ROOTFS_KEY $LIB_KEY"; cat "$HERE/build.sh" "$HERE/entrypoint.sh" "$HERE"/conf/*) | sha)
ROOTFS_TAR=$CACHE/jre-rootfs-$SUITE-$ROOTFS_KEY.tar
LIB_DIR=$CACHE/lib-$ROCKETMQ_VERSION-$LIB_KEY
IMAGE_TAR=$CACHE/rocketmq-$ROCKETMQ_VERSION-$IMAGE_KEY.tar
# KEYED_TAG names this very content: checkouts of different versions on one
# Docker engine (tests of several branches at once) each use their own,
# while TAG is the one users run.
KEYED_TAG=$TAG-$IMAGE_KEY
if [[ $PRINT_KEYED == 1 ]]; then
  echo "$KEYED_TAG"
  exit 0
fi
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
JAVA_HOME_IN_IMAGE=/usr/lib/jvm/java-17-openjdk-$ARCH

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info fails)"

image_key() { docker image inspect -f '{{ index .Config.Labels "rmq-nomad.build-key" }}' "$TAG" 2>/dev/null || true; }

if [[ $REBUILD == 0 && "$(image_key)" == "$IMAGE_KEY" ]]; then
  log "$TAG is up to date (build key $IMAGE_KEY); nothing to do"
  docker tag "$TAG" "$KEYED_TAG"
  echo "$TAG"
  exit 0
fi
if [[ $REBUILD == 0 ]] && docker image inspect "$KEYED_TAG" >/dev/null 2>&1; then
  log "$KEYED_TAG exists (build key $IMAGE_KEY); tagging it $TAG"
  docker tag "$KEYED_TAG" "$TAG"
  echo "$TAG"
  exit 0
fi

mkdir -p "$CACHE"
# One build at a time per cache directory.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/.lock; waiting"
  flock 9
fi

# --- cleanup of work directories (also those of an interrupted earlier run) --
WORK=
cleanup_dir() {
  local dir=$1 m
  [[ -n "$dir" && -d "$dir" ]] || return 0
  # Unmount anything still mounted below it (deepest first) before deleting.
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
  if awk -v d="$dir/" 'index($2, d) == 1 { f = 1 } END { exit !f }' /proc/mounts; then
    log "warning: cannot unmount everything below $dir; leaving it"
    return 0
  fi
  rm -rf --one-file-system "$dir"
}
on_exit() {
  local rc=$?
  cleanup_dir "$WORK"
  rm -rf "$CACHE"/*.tmp."$$" 2>/dev/null || true
  if [[ $rc != 0 ]]; then log "failed (exit $rc)"; fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM
for stale in "$CACHE"/work.*; do
  [[ -d "$stale" ]] && { log "removing stale work dir $stale"; cleanup_dir "$stale"; }
done

# --- 1. Debian + JRE root fs ---------------------------------------------------
mirror_from_sources() {
  # $1: a regexp the URL path must match (/debian or /debian-security).
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  {
    grep -hsE '^[[:space:]]*deb[[:space:]]' "${files[@]}" | sed -E 's/\[[^]]*\]//' | awk '{ print $2 }'
    grep -hsE '^[[:space:]]*URIs:' "${files[@]}" | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//' | tr ' ' '\n'
  } 2>/dev/null | grep -E "^https?://[^ ]*$1/?\$" | head -1 | sed 's#/$##' || true
}

build_rootfs() {
  local mirror security dir
  [[ $(id -u) == 0 ]] || die "building the JRE root fs needs root (debootstrap, chroot, mount)"
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  mirror=${DEBIAN_MIRROR:-$(mirror_from_sources '/debian')}
  mirror=${mirror:-http://deb.debian.org/debian}
  security=${DEBIAN_SECURITY_MIRROR:-$(mirror_from_sources '/debian-security')}
  security=${security:-http://deb.debian.org/debian-security}

  WORK=$(mktemp -d "$CACHE/work.XXXXXX")
  dir=$WORK/rootfs
  log "debootstrap --variant=minbase $SUITE from $mirror (about 30 s)"
  debootstrap --variant=minbase "$SUITE" "$dir" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

  cat >"$dir/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
EOF
  cp -L /etc/resolv.conf "$dir/etc/resolv.conf"
  # No daemons may start inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 755 "$dir/usr/sbin/policy-rc.d"
  mount -t proc proc "$dir/proc"

  local chroot_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 HOME=/root)
  log "apt-get install --no-install-recommends ${PACKAGES[*]} in the chroot (about 1-2 min)"
  {
    chroot "$dir" "${chroot_env[@]}" apt-get update -q &&
      chroot "$dir" "${chroot_env[@]}" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" &&
      chroot "$dir" "${chroot_env[@]}" apt-get clean
  } >"$WORK/apt.log" 2>&1 || { tail -n 30 "$WORK/apt.log" >&2; die "apt-get in the chroot failed"; }
  chroot "$dir" "${chroot_env[@]}" java -version 2>&1 | head -1 | sed 's/^/  /' >&2
  umount "$dir/proc"

  # Keep the image small and free of host details.
  rm -f "$dir/usr/sbin/policy-rc.d"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/var/cache/debconf/*-old \
    "$dir"/var/log/apt/* "$dir"/var/log/*.log "$dir"/tmp/* "$dir"/root/.cache \
    "$dir"/usr/share/man/* "$dir"/usr/share/info/*
  : >"$dir/etc/resolv.conf"
  echo rocketmq >"$dir/etc/hostname"

  log "writing $ROOTFS_TAR"
  tar --numeric-owner -C "$dir" -cf "$ROOTFS_TAR.tmp.$$" .
  mv "$ROOTFS_TAR.tmp.$$" "$ROOTFS_TAR"
  cleanup_dir "$WORK"
  WORK=
  # Drop root fs tarballs of other recipes.
  find "$CACHE" -maxdepth 1 -name "jre-rootfs-*.tar" ! -path "$ROOTFS_TAR" -delete
}

# --- 2. RocketMQ jars ------------------------------------------------------------
fetch_jars() {
  command -v mvn >/dev/null || die "Maven is not installed (apt-get install maven)"
  local tmp=$LIB_DIR.tmp.$$
  rm -rf "$tmp"
  log "mvn dependency:copy-dependencies for RocketMQ $ROCKETMQ_VERSION (repository $MAVEN_REPO)"
  mvn -B -q -f "$HERE/pom.xml" -Dmaven.repo.local="$MAVEN_REPO" \
    -Drocketmq.version="$ROCKETMQ_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | strip_ansi >&2 ||
    die "Maven could not fetch the RocketMQ jars"
  [[ -f "$tmp/rocketmq-broker-$ROCKETMQ_VERSION.jar" ]] || die "rocketmq-broker-$ROCKETMQ_VERSION.jar missing after Maven"
  [[ -f "$tmp/rocketmq-proxy-$ROCKETMQ_VERSION.jar" ]] || die "rocketmq-proxy-$ROCKETMQ_VERSION.jar missing after Maven"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
  find "$CACHE" -maxdepth 1 -type d -name "lib-*" ! -path "$LIB_DIR" -exec rm -rf {} +
  log "$(find "$LIB_DIR" -name '*.jar' | wc -l) jars, $(du -sh "$LIB_DIR" | cut -f1)"
}

# --- 3. the image's file system ----------------------------------------------------
assemble() {
  local stage opt
  WORK=$(mktemp -d "$CACHE/work.XXXXXX")
  stage=$WORK/stage
  opt=$stage/opt/rocketmq
  mkdir -p "$opt/bin" "$opt/lib" "$opt/conf"
  install -m 755 "$HERE/entrypoint.sh" "$opt/bin/entrypoint.sh"
  printf '#!/bin/sh\nexec /opt/rocketmq/bin/entrypoint.sh mqadmin "$@"\n' >"$opt/bin/mqadmin"
  chmod 755 "$opt/bin/mqadmin"
  install -m 644 "$HERE"/conf/* "$opt/conf/"
  cp "$LIB_DIR"/*.jar "$opt/lib/"
  printf 'rocketmq=%s\nbuild-key=%s\n' "$ROCKETMQ_VERSION" "$IMAGE_KEY" >"$opt/VERSION"

  log "writing $IMAGE_TAR"
  cp "$ROOTFS_TAR" "$IMAGE_TAR.tmp.$$"
  tar --numeric-owner --owner=0 --group=0 -C "$stage" -rf "$IMAGE_TAR.tmp.$$" ./opt/rocketmq
  mv "$IMAGE_TAR.tmp.$$" "$IMAGE_TAR"
  cleanup_dir "$WORK"
  WORK=
  find "$CACHE" -maxdepth 1 -name "rocketmq-*.tar" ! -path "$IMAGE_TAR" -delete
}

# --- 4. docker import ------------------------------------------------------------------
import_image() {
  local old new
  old=$(docker image inspect -f '{{ .Id }}' "$TAG" 2>/dev/null || true)
  log "docker import $IMAGE_TAR as $TAG"
  new=$(docker import \
    --change "ENV PATH=/opt/rocketmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV JAVA_HOME=$JAVA_HOME_IN_IMAGE" \
    --change "ENV ROCKETMQ_HOME=/opt/rocketmq" \
    --change "ENV LANG=C.UTF-8" \
    --change "WORKDIR /opt/rocketmq" \
    --change "LABEL rmq-nomad.build-key=$IMAGE_KEY" \
    --change "LABEL rmq-nomad.tag=$TAG" \
    --change "LABEL org.opencontainers.image.version=$ROCKETMQ_VERSION" \
    --change "LABEL org.opencontainers.image.title=rmq-nomad-rocketmq" \
    --change 'ENTRYPOINT ["/opt/rocketmq/bin/entrypoint.sh"]' \
    --message "rmq-nomad RocketMQ $ROCKETMQ_VERSION (build key $IMAGE_KEY)" \
    "$IMAGE_TAR" "$TAG")
  # Drop the image this one replaces, and earlier ones left untagged because a
  # container still used them then (failures ignored: still in use).
  if [[ -n "$old" && "$old" != "$new" ]]; then
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
  docker images -q --no-trunc -f dangling=true -f label=rmq-nomad.build-key -f "label=rmq-nomad.tag=$TAG" |
    while read -r id; do docker image rm "$id" >/dev/null 2>&1 || true; done
  # Smoke test: the JRE runs and the entrypoint is in place.
  docker run --rm --network none --entrypoint /bin/sh "$TAG" -c \
    'test -x /opt/rocketmq/bin/entrypoint.sh && "$JAVA_HOME/bin/java" -version' >/dev/null 2>&1 ||
    die "smoke test of $TAG failed (java -version in the image)"
  log "$TAG ready ($(docker image inspect -f '{{ .Size }}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
}

if [[ $REBUILD == 1 ]]; then
  rm -f "$IMAGE_TAR"
fi
if [[ ! -f "$IMAGE_TAR" ]]; then
  if [[ -f "$ROOTFS_TAR" ]]; then
    log "using cached JRE root fs $ROOTFS_TAR"
  else
    build_rootfs
  fi
  if [[ -f "$LIB_DIR/rocketmq-broker-$ROCKETMQ_VERSION.jar" ]]; then
    log "using cached jars $LIB_DIR"
  else
    fetch_jars
  fi
  assemble
else
  log "using cached image tarball $IMAGE_TAR"
fi
import_image
docker tag "$TAG" "$KEYED_TAG"
echo "$TAG"
