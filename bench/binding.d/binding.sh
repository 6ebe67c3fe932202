#!/usr/bin/env bash
# Binding benchmarks: eipbind's BenchmarkBind and ulbbind's
# BenchmarkRegister against the UCloud simulator (real SDK) and a real Consul
# agent, at 0 ms and 50 ms of added API latency. Prints one line per case:
#
#   BENCH binding <kind> latency=<ms> scenario=<s> op_ms=.. api_ms=.. consul_ms=..
#         overhead_ms=.. overhead_max_ms=.. own_ms=.. calls=.. target_overhead_ms=50 ok=yes|no
#
# overhead_ms is the wall time of the operation minus the time the simulator
# spent serving its API calls (so: our code + SDK/HTTP client + Consul).
# Exits 1 if any mean overhead exceeds the target. See docs/benchmarks.md.
# Needs a Consul binary (make tools). BENCH_TIME overrides -benchtime (30x).
set -euo pipefail
cd "$(dirname "$0")/../.."
benchtime="${BENCH_TIME:-30x}"
target=50
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() { # kind package benchmark
  if ! go test -count=1 -run '^$' -bench "^$3\$" -benchtime "$benchtime" "./$2/" >"$out" 2>&1; then
    cat "$out" >&2
    echo "bench: $3 in ./$2 failed" >&2
    exit 1
  fi
  awk -v kind="$1" -v target="$target" '
    /^Benchmark/ {
      split($1, parts, "/"); lat = parts[2]; sub(/^latency=/, "", lat); sub(/ms$/, "", lat)
      scen = parts[3]; sub(/-[0-9]+$/, "", scen)
      delete v
      for (i = 3; i < NF; i += 2) {
        key = $(i + 1); gsub(/-/, "_", key); sub(/^(bind|register)_ms$/, "op_ms", key)
        v[key] = $i
      }
      n = split("op_ms api_ms consul_ms overhead_ms overhead_max_ms own_ms calls", keys, " ")
      line = sprintf("BENCH binding %s latency=%sms scenario=%s", kind, lat, scen)
      for (k = 1; k <= n; k++) line = line sprintf(" %s=%s", keys[k], v[keys[k]])
      ok = (v["overhead_ms"] + 0 <= target) ? "yes" : "no"
      if (ok == "no") bad = 1
      print line sprintf(" target_overhead_ms=%d ok=%s", target, ok)
    }
    END { exit bad }' "$out"
}

status=0
run eip eipbind BenchmarkBind || status=1
run ulb ulbbind BenchmarkRegister || status=1
exit $status
