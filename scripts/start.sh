#!/usr/bin/env bash
# The main job (npm start): the control application driving the data plane in front of a demo
# network - a client and two nginx servers in network namespaces - until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

config=out/demo/config.json
mkdir -p out/demo
trap 'echo "tearing the demo network down"; node --import tsx test/netns/demo.ts down' EXIT
node --import tsx test/netns/demo.ts up --config "$config"

cat <<EOF
Demo network is up: client 10.0.1.2 -> VIP 10.0.1.100:80 -> nginx on 10.0.2.11 and 10.0.2.12.
Send traffic from another shell:
  sudo ip netns exec epdemo-client curl http://10.0.1.100/
  sudo ip netns exec epdemo-client curl -o /dev/null http://10.0.1.100/data/random-100MiB.bin
  curl http://127.0.0.1:9180/healthz ; curl http://127.0.0.1:9180/metrics
Configuration: $config. Ctrl-C stops the appliance and removes the demo network.
EOF

# In the background so that a SIGTERM to this script, not only a terminal's Ctrl-C, stops it gracefully.
node dist/app/control/main.js --config "$config" &
control=$!
trap 'kill -TERM "$control" 2>/dev/null || true' INT TERM
status=0
wait "$control" || status=$?
if kill -0 "$control" 2>/dev/null; then # the first wait only ended because a signal arrived
  status=0
  wait "$control" || status=$?
fi
exit "$status"
