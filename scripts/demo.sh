#!/usr/bin/env bash
# `make demo`: a whole RocketMQ-on-Nomad setup on this machine.
#
# Starts a Consul agent, the UCloud simulator seeded with a small account
# (examples/ucloudsim/demo.json), a Nomad agent (server + client, simulated
# UHost uhost-demo-1) with the plugin, then runs the example jobs:
#   - cluster "demo", private mode: 2 NameServers + 2 Brokers, found through
#     the plugin's NameServer address endpoint;
#   - cluster "pub", public mode: 2 NameServers behind the simulated ULB,
#     1 Broker with its EIP bound to the host.
# Prints the addresses it serves and keeps running until Ctrl-C, then stops
# everything it started, however its output is redirected (make demo | tee
# log: Ctrl-C kills tee first, and the cleanup must not die writing to the
# closed pipe). DEMO_EXIT_WHEN_READY=1 stops right after printing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CONSUL_PORT=${DEMO_CONSUL_PORT:-18500}
NOMAD_PORT=${DEMO_NOMAD_PORT:-14646}
SIM_PORT=${DEMO_SIM_PORT:-18900}
NSADDR_PORT=${DEMO_NSADDR_PORT:-18080}
METRICS_PORT=${DEMO_METRICS_PORT:-19176}

# What the script says goes to stderr and to DEMO_LOG (kept after the
# demo, for when stderr was a pipe that is gone). During the cleanup a
# failed write to stderr falls back to the terminal, or is dropped.
DEMO_LOG=
say() {
  local line="demo: $*"
  if [ -n "$DEMO_LOG" ]; then printf '%s\n' "$line" >>"$DEMO_LOG" 2>/dev/null || true; fi
  printf '%s\n' "$line" >&2 2>/dev/null || { printf '%s\n' "$line" >/dev/tty; } 2>/dev/null || true
}

bash scripts/dockerd.sh
BIN=$(bash scripts/tools.sh all)
IMAGE=$(bash images/rocketmq/build.sh --print-tag 2>/dev/null | tail -1)
bash images/rocketmq/build.sh >&2
[ -x bin/rmq-driver ] || make build >&2
BRIDGE_IP=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)

WORK=$(mktemp -d /tmp/rmq-demo-XXXX)
DEMO_LOG=$WORK.log
PIDS=()
export NOMAD_ADDR=http://127.0.0.1:$NOMAD_PORT CONSUL_HTTP_ADDR=127.0.0.1:$CONSUL_PORT

INTERRUPTED=0
cleanup() {
  local rc=$?
  # Nothing may stop the cleanup half-way: not a closed stdout/stderr
  # (SIGPIPE; writes then fail with EPIPE, and say ignores that), not a
  # second Ctrl-C, not a failing command.
  trap '' PIPE INT TERM HUP
  trap - EXIT
  set +e
  if [ "$rc" -ne 0 ] && [ "$INTERRUPTED" = 0 ]; then
    say "failed (exit $rc); last lines of the agents' logs:"
    for f in "$WORK"/*.log; do { echo "--- $f"; tail -n 15 "$f"; } >&2 2>/dev/null; done
  fi
  say "stopping jobs and agents (up to a minute; log: $DEMO_LOG)"
  for j in rocketmq-pub-broker rocketmq-pub-namesrv rocketmq-broker rocketmq-namesrv; do
    "$BIN/nomad" job stop -purge -detach "$j" >/dev/null 2>&1 || true
  done
  for _ in $(seq 1 60); do
    [ -z "$(docker ps -q --filter label=com.github.rmqnomad.driver=rocketmq --filter label=com.github.rmqnomad.node_id="${NODE_ID:-none}")" ] && break
    sleep 1
  done
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill -INT "${PIDS[$i]}" 2>/dev/null || true; done
  sleep 3
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  pkill -KILL -f "$WORK/plugins/rmq-driver" 2>/dev/null || true
  [ -n "${NODE_ID:-}" ] && docker rm -f $(docker ps -aq --filter label=com.github.rmqnomad.node_id="$NODE_ID") >/dev/null 2>&1 || true
  # The Nomad client mounts tmpfs secrets/private dirs in task dirs.
  grep " $WORK/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r umount 2>/dev/null || true
  rm -rf "$WORK"
  say "stopped"
}
# The agents run in their own sessions (setsid) so that Ctrl-C reaches only
# this script, which then stops the jobs before the agents. SIGPIPE (the
# reader of our output is gone) is handled, not left to kill the script
# before it cleans up.
trap 'INTERRUPTED=1; exit 130' INT TERM HUP
trap 'INTERRUPTED=1; exit 141' PIPE
trap cleanup EXIT
say "working in $WORK (agents' logs), this script's log $DEMO_LOG"

say "starting Consul on 127.0.0.1:$CONSUL_PORT"
cat > "$WORK/consul.hcl" <<HCL
disable_update_check = true
ports {
  http     = $CONSUL_PORT
  dns      = -1
  grpc     = -1
  grpc_tls = -1
  serf_lan = $((CONSUL_PORT + 1))
  serf_wan = $((CONSUL_PORT + 2))
  server   = $((CONSUL_PORT + 3))
}
HCL
setsid "$BIN/consul" agent -dev -bind 127.0.0.1 -client 127.0.0.1 -config-file "$WORK/consul.hcl" >"$WORK/consul.log" 2>&1 &
PIDS+=($!)

say "starting the UCloud simulator on 127.0.0.1:$SIM_PORT"
setsid bin/rmq-driver ucloud-sim -listen "127.0.0.1:$SIM_PORT" -seed examples/ucloudsim/demo.json >"$WORK/sim.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$CONSUL_PORT/v1/status/leader" 2>/dev/null | grep -q : && break
  sleep 0.5
done
# The seed's KV layout: which EIP each broker of cluster "pub" binds.
"$BIN/consul" kv put brokerEip/pub/eipId/0 eip-demo-broker-0 >/dev/null
"$BIN/consul" kv put brokerEip/pub/eip/0 203.0.113.10 >/dev/null

bash scripts/install.sh bin/rmq-driver "$WORK/plugins" 2>/dev/null
# The simulator's private key, in a file as docs/reference.md recommends:
# an inline private_key would show at /v1/agent/self.
(umask 077 && printf '%s\n' demo-private-key-not-a-secret >"$WORK/ucloud-private-key")
cat > "$WORK/nomad.hcl" <<HCL
name                 = "demo-1"
data_dir             = "$WORK/nomad"
bind_addr            = "127.0.0.1"
disable_update_check = true
plugin_dir           = "$WORK/plugins"
ports {
  http = $NOMAD_PORT
  rpc  = $((NOMAD_PORT + 1))
  serf = $((NOMAD_PORT + 2))
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
server {
  enabled          = true
  bootstrap_expect = 1
}
client {
  enabled = true
  # Task ports on the docker bridge's address: reachable from this machine
  # and from inside containers (brokers reach NameServers and nsaddr).
  network_interface = "docker0"
}
consul {
  address = "127.0.0.1:$CONSUL_PORT"
}
plugin "rmq-driver" {
  config {
    ucloud {
      region            = "cn-bj2"
      project_id        = "org-demo"
      public_key        = "demo-public-key"
      private_key_file  = "$WORK/ucloud-private-key"
      base_url          = "http://127.0.0.1:$SIM_PORT"
      metadata_endpoint = "http://127.0.0.1:$SIM_PORT/metadata/uhost-demo-1"
      allowed_eip_ids   = ["eip-demo-broker-0", "eip-demo-broker-1", "eip-demo-broker-2"]
      allowed_ulb_ids   = ["ulb-demo"]
    }
    consul {
      address = "127.0.0.1:$CONSUL_PORT"
    }
    nsaddr {
      enabled         = true
      listen          = "0.0.0.0:$NSADDR_PORT"
      default_cluster = "demo"
    }
    metrics_listen = "127.0.0.1:$METRICS_PORT"
  }
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
say "starting Nomad (server + client) on 127.0.0.1:$NOMAD_PORT"
setsid "$BIN/nomad" agent -config "$WORK/nomad.hcl" >"$WORK/nomad.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 120); do
  "$BIN/nomad" node status -json 2>/dev/null | grep -q '"Status": "ready"' && break
  sleep 0.5
done
NODE_ID=$("$BIN/nomad" node status -json | sed -n 's/^ *"ID": "\([^"]*\)".*/\1/p' | head -1)

NSADDR="$BRIDGE_IP:$NSADDR_PORT"
run() { "$BIN/nomad" job run -detach -var "image=$IMAGE" "$@" >/dev/null; }
say "running the example jobs (image $IMAGE)"
run examples/jobs/private-namesrv.nomad.hcl
run -var "nsaddr=$NSADDR" -var distinct_hosts=false examples/jobs/private-broker.nomad.hcl
run examples/jobs/public-namesrv.nomad.hcl
run -var "nsaddr=$NSADDR" -var count=1 examples/jobs/public-broker.nomad.hcl

say "waiting for the clusters (NameServers in Consul, brokers registered)"
for _ in $(seq 1 180); do
  a=$(curl -fsS "http://127.0.0.1:$NSADDR_PORT/rocketmq/demo" 2>/dev/null || true)
  b=$(curl -fsS "http://127.0.0.1:$NSADDR_PORT/rocketmq/pub" 2>/dev/null || true)
  [[ "$a" == *";"* && "$b" == *";"* ]] && break
  sleep 1
done
first_ns=${a%%;*}
# route NS TOPIC: the NameServer's route of TOPIC (asks the NameServer
# only: the public broker's EIP is simulated and must not be dialled).
route() { docker run --rm --network host "$IMAGE" mqadmin topicRoute -n "$1" -t "$2" 2>/dev/null || true; }
# routed NS BROKER: BROKER has registered with NS (its own topic is routed).
routed() { [[ "$(route "$1" "$2")" =~ \"brokerName\"\ ?:\ ?\"$2\" ]]; }
for _ in $(seq 1 120); do
  routed "$first_ns" broker-0 && routed "$first_ns" broker-1 && routed "${b%%;*}" broker-0 && break
  sleep 2
done

cat <<TXT

================ rocketmq-nomad-driver demo is up ================
Nomad UI/API:        $NOMAD_ADDR        (export NOMAD_ADDR=$NOMAD_ADDR)
Consul:              http://$CONSUL_HTTP_ADDR
UCloud simulator:    http://127.0.0.1:$SIM_PORT   (state: /_sim/state)
Plugin metrics:      http://127.0.0.1:$METRICS_PORT/metrics

NameServer address endpoint (RocketMQ "address server"):
  http://127.0.0.1:$NSADDR_PORT/rocketmq/demo  -> $(curl -fsS "http://127.0.0.1:$NSADDR_PORT/rocketmq/demo" 2>/dev/null || echo "(not ready)")
  http://127.0.0.1:$NSADDR_PORT/rocketmq/pub   -> $(curl -fsS "http://127.0.0.1:$NSADDR_PORT/rocketmq/pub" 2>/dev/null || echo "(not ready)")
  Java clients: -Drocketmq.namesrv.domain=127.0.0.1:$NSADDR_PORT -Drocketmq.namesrv.domain.subgroup=demo

Cluster "demo" (private mode), as the NameServers see it:
$(docker run --rm --network host "$IMAGE" mqadmin clusterList -n "$first_ns" 2>/dev/null | sed 's/^/  /' || echo "  (mqadmin failed)")

Cluster "pub" (public mode): the broker registered its EIP (simulated, so
not reachable from here; the NameServer's route of broker-0):
$(route "${b%%;*}" broker-0 | grep -E '"(brokerName|cluster)"|:[0-9]+"' | sed 's/^ */  /' || echo "  (mqadmin failed)")
and the simulated UCloud account holds:
$(curl -fsS "http://127.0.0.1:$SIM_PORT/_sim/state" | python3 -c '
import json, sys
s = json.load(sys.stdin)
for e in s.get("eips", []):
    print("  EIP %-20s %-15s %s" % (e["id"], e["ip"], ("bound to " + e["resource_id"]) if e.get("resource_id") else "free"))
for lb in s.get("ulbs", []):
    for vs in lb.get("vservers", []):
        print("  ULB %s VServer %s (port %d) backends:" % (lb["id"], vs["id"], vs["frontend_port"]))
        for b in vs.get("backends", []):
            print("    %s %s:%d (%s)" % (b["id"], b.get("private_ip", "?"), b["port"], b["resource_id"]))
')

A tenant's cluster with Terraform (examples/terraform/tenant; needs terraform
and the ucloud and consul providers), dry run against this simulator and Consul:
  cd examples/terraform/tenant && terraform init
  export UCLOUD_PUBLIC_KEY=demo-public-key UCLOUD_PRIVATE_KEY=demo-private-key-not-a-secret
  terraform apply -var cluster=orders -var region=cn-bj2 -var project_id=org-demo \\
    -var ucloud_base_url=http://127.0.0.1:$SIM_PORT -var consul_address=127.0.0.1:$CONSUL_PORT
  (terraform destroy with the same -var flags removes it; jobs on its EIPs need its
  plugin_allow_list output in a client's config: see the module's README)

Try:  nomad job status; nomad alloc logs -job rocketmq-broker
Stop: Ctrl-C (stops the jobs, agents and simulator, removes the containers)
==================================================================
TXT

if [ "${DEMO_EXIT_WHEN_READY:-0}" = 1 ]; then exit 0; fi
while sleep 3600; do :; done
