#!/usr/bin/env bash
# SMFA figures: fixed affinity updates a forwarding agent installs per second, and the first-packet
# round trip agent -> manager -> agent with real TCP connections (test/smfa/bench-smfa.ts). Root.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx test/smfa/bench-smfa.ts
