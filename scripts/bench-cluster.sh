#!/usr/bin/env bash
# Cluster figures: new connections per second through a two-unit cluster with flow-state
# replication off and on (and their ratio), and flow records replicated per second between the two
# units over the mutual-TLS replication link (test/cluster-dp/bench-cluster.ts). Root.
# Environment: BENCH_ROUNDS (default 3), BENCH_SECONDS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx test/cluster-dp/bench-cluster.ts
