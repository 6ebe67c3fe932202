#!/usr/bin/env bash
# `make bench`: prints the project's benchmark figures, each section as
# `BENCH ...` lines. docs/benchmarks.md holds the last measured figures and
# what each one means. Sections: startup, memory, failover, rocketmq,
# binding, convergence, replication, proxy, nsaddr; `bench/run.sh failover
# nsaddr` runs only those. The mass reschedule section (about 10 minutes)
# and the broker moves section (about 20 minutes) run only when named:
# `bench/run.sh mass` or `make bench SECTIONS="mass moves"`.
set -euo pipefail
cd "$(dirname "$0")/.."
export RMQ_REQUIRE_AGENTS=1 RMQ_BENCH=1

e2e_bench() { # NAME TEST
  echo "== $1"
  out=$(go test -count=1 -timeout "${BENCH_TIMEOUT:-60m}" -tags e2e -run "^$2\$" -v ./e2e/ 2>&1) || {
    echo "$out" | tail -40 >&2
    echo "bench: $1 failed" >&2
    return 1
  }
  echo "$out" | grep '^BENCH'
}

want() { [ $# -eq 0 ] || [[ " ${SECTIONS} " == *" $1 "* ]]; }
SECTIONS="$*"

rc=0
if [ -z "$SECTIONS" ] || want startup; then e2e_bench "driver start latency, rocketmq vs docker, private and public mode (RMQ_BENCH_RUNS rounds, default 30)" "(TestBenchStartup|TestBenchStartupPublic)" || rc=1; fi
if [ -z "$SECTIONS" ] || want memory; then e2e_bench "plugin memory and goroutines with 0, 10 and 100 tasks on one client" "(TestBenchMemory|TestBenchMemoryBound)" || rc=1; fi
if [ -z "$SECTIONS" ] || want failover; then e2e_bench "failover: drain to EIP bound on the new host" TestBenchFailover || rc=1; fi
if [ -z "$SECTIONS" ] || want rocketmq; then e2e_bench "RocketMQ cluster: job run to first message, memory" TestBenchRocketMQ || rc=1; fi
if [ -z "$SECTIONS" ] || want binding; then echo "== binding overhead per bind"; bash bench/binding.d/binding.sh || rc=1; fi
if [ -z "$SECTIONS" ] || want replication; then e2e_bench "replicated broker group: host death and drain, single-master control, public mode and replica state" "(TestReplicatedBrokerGroup|TestSingleMasterLosesAckedKeys|TestPublicReplicatedGroup)" || rc=1; fi
if [ -z "$SECTIONS" ] || want convergence; then
  echo "== convergence: drift repair, host death, Consul outage (3 clients, simulator)"
  out=$(go test -count=1 -timeout 30m -tags e2e -run '^(TestDriftIsRepaired|TestNodeLossConverges|TestStopDuringConsulOutage)$' -v ./e2e/ 2>&1) || {
    echo "$out" | grep -E '^(---|\s+\S+_test\.go:)' >&2; echo "bench: convergence failed" >&2; rc=1; }
  echo "$out" | grep '^BENCH' || true
  echo "== re-check cost: API calls of one pass over 100 bound tasks"
  go test -count=1 -run '^TestReconcileCost$' -v ./driver/ 2>&1 | grep '^BENCH' || rc=1
fi
if [ -z "$SECTIONS" ] || want proxy; then e2e_bench "gRPC proxies: job run to first message, throughput vs remoting" TestBenchProxy || rc=1; fi
if [ -z "$SECTIONS" ] || want nsaddr; then echo "== NameServer address endpoint vs a constant-string Go server"; bash bench/nsaddr/run.sh || rc=1; fi
if want moves && [ -n "$SECTIONS" ]; then
  BENCH_TIMEOUT=90m e2e_bench "broker moves: registration, producer error windows and store size on a drain and a host death, one and two broker groups" TestBenchMoves || rc=1
fi
if want mass && [ -n "$SECTIONS" ]; then
  echo "== mass reschedule under an account-wide API rate limit"
  out=$(go test -count=1 -timeout 60m -run '^$' -bench '^BenchmarkMassReschedule$' -benchtime 1x ./bench/mass/ 2>&1) || {
    echo "$out" | tail -40 >&2
    echo "bench: mass reschedule failed" >&2
    rc=1
  }
  echo "$out" | grep -o 'BENCH mass .*'
fi
exit $rc
