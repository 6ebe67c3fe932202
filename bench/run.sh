#!/usr/bin/env bash
# `make bench`: prints the project's benchmark figures. Each section is
# described, with its last measured figures, in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export RMQ_REQUIRE_AGENTS=1 RMQ_BENCH=1

echo "== driver start latency and idle RSS (rocketmq vs docker driver)"
go test -count=1 -timeout 20m -tags e2e -run 'TestBenchStartup$' -v ./e2e/ | grep '^BENCH' || { echo "bench: startup benchmark failed" >&2; exit 1; }

for extra in bench/*.d/*.sh; do
  [ -e "$extra" ] || continue
  echo "== $(basename "$extra" .sh)"
  bash "$extra"
done
