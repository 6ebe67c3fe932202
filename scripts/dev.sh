#!/usr/bin/env bash
# A Nomad dev agent (server + client) with the plugin loaded. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(bash scripts/tools.sh nomad)
work=$(mktemp -d /tmp/rmq-nomad-dev-XXXX)
trap 'rm -rf "$work"' EXIT
bash scripts/install.sh bin/rmq-driver "$work/plugins"
cat > "$work/client.hcl" <<HCL
disable_update_check = true
plugin "rmq-driver" {
  config {}
}
plugin "docker" {
  config {
    gc {
      dangling_containers {
        enabled = false
      }
    }
  }
}
HCL
echo "dev: Nomad UI/API at http://127.0.0.1:4646; try: nomad job run examples/jobs/hello.nomad.hcl" >&2
exec "$bin/nomad" agent -dev -bind 127.0.0.1 -plugin-dir "$work/plugins" -config "$work/client.hcl"
