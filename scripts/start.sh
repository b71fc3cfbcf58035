#!/usr/bin/env bash
# The main job (npm start): a three-unit appliance cluster in network namespaces - each unit the
# control application (dist/app/control/main.js) with its own flash config - in front of a client
# and two nginx servers, until Ctrl-C. It prints how to send traffic through the VIP and how to
# operate the cluster with the edgeplane CLI and the dashboard (test/netns/cluster-demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# In the background so that a SIGTERM to this script, not only a terminal's Ctrl-C, tears it down.
node --import tsx test/netns/cluster-demo.ts &
demo=$!
trap 'kill -TERM "$demo" 2>/dev/null || true' INT TERM
status=0
wait "$demo" || status=$?
if kill -0 "$demo" 2>/dev/null; then # the first wait only ended because a signal arrived
  status=0
  wait "$demo" || status=$?
fi
exit "$status"
