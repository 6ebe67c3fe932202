#!/usr/bin/env bash
# Installs the rmq-driver plugin binary into a Nomad client's plugin_dir.
# Used by `make install`, the Packer template and the e2e tests.
#
#   scripts/install.sh [BINARY] [PLUGIN_DIR]
#
# BINARY defaults to bin/rmq-driver, PLUGIN_DIR to /opt/nomad/plugins.
# The file is written atomically (a Nomad client may be reading the dir) and
# checked by running `rmq-driver version`.
set -euo pipefail
bin=${1:-bin/rmq-driver}
dir=${2:-/opt/nomad/plugins}
[ -x "$bin" ] || { echo "install: $bin is not an executable; run make build first" >&2; exit 1; }
mkdir -p "$dir"
install -m 0755 "$bin" "$dir/.rmq-driver.tmp"
mv -f "$dir/.rmq-driver.tmp" "$dir/rmq-driver"
"$dir/rmq-driver" version >/dev/null
echo "install: $("$dir/rmq-driver" version) installed as $dir/rmq-driver" >&2
echo "install: configure it in the client with: plugin \"rmq-driver\" { config { ... } }" >&2
