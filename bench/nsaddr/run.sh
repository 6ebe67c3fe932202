#!/usr/bin/env bash
# NameServer address endpoint benchmark (docs/benchmarks.md, section
# "NameServer address endpoint"): the endpoint vs the seed's constant-string
# Go server under wrk, alternated in one run; p50/p99 at a fixed 1k req/s;
# propagation time of Consul changes. Needs wrk and the Consul test agent
# (make tools). Tunables: NSADDR_BENCH_ROUNDS, NSADDR_BENCH_DURATION,
# NSADDR_BENCH_CONNECTIONS, NSADDR_BENCH_THREADS, NSADDR_BENCH_RATE,
# NSADDR_BENCH_RATE_DURATION, NSADDR_BENCH_CHANGES.
set -euo pipefail
cd "$(dirname "$0")/../.."
export RMQ_BENCH=1 RMQ_REQUIRE_AGENTS=1
out=$(go test -count=1 -timeout 15m -run 'TestBenchNsaddr$' -v ./bench/nsaddr/ 2>&1) || {
  echo "$out" | tail -50 >&2
  echo "bench: nsaddr benchmark failed" >&2
  exit 1
}
echo "$out" | grep '^BENCH'
