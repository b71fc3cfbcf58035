#!/usr/bin/env bash
# Appliance units booted from the image under QEMU (TCG, Secure Boot) form one cluster and keep
# connections across a dead unit. Reports TAP:
#   - N units (default 3; EDGEPLANE_CLUSTER_UNITS=2 on a slower host) with flash configs from one
#     cluster authority boot; each takes its static management address from identity.json and the
#     appliance gets ready;
#   - they form one cluster over the management network (join by certificate): every unit's
#     management API, asked with an operator certificate, names the same master and all N members;
#   - HTTP from the lab's client namespace through the cluster's VIP is answered by nginx in the
#     server namespace (unicast-MAC delivery: the client's neighbour entry for the VIP and the
#     servers' for their gateway are the policy's shared MAC, the lab's data bridges flood it to
#     every unit, each forwards the work units it owns);
#   - long-lived TCP connections (checked byte streams both ways) survive QMP `quit` of the unit
#     owning some of them: no reset, every byte intact; detection and takeover times printed;
#   - a unit whose certificate comes from another cluster CA is refused, with the reason on its
#     console and on the master's.
# Usage: image/test/cluster.test.sh [IMAGE_DIR]   (default /var/tmp/edgeplane-image/out; built
#        there first when missing)
set -euo pipefail
TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE_SRC=$(cd "$TEST_DIR/.." && pwd)
REPO=$(cd "$IMAGE_SRC/.." && pwd)
source "$IMAGE_SRC/lib/progress.sh"
RUN=$IMAGE_SRC/qemu/run-unit.sh
STREAMS=$TEST_DIR/lib/tcp-streams.py
PYTHON=$(command -v /usr/bin/python3 || command -v python3)

OUT=${1:-/var/tmp/edgeplane-image/out}
export EDGEPLANE_LAB=edgeplane-clustertest
export EDGEPLANE_UNITS=/var/tmp/edgeplane-image/clustertest
SCRATCH=$(mktemp -d /var/tmp/edgeplane-clustertest.XXXXXX)
UNIT_COUNT=${EDGEPLANE_CLUSTER_UNITS:-3}
STREAM_COUNT=${EDGEPLANE_CLUSTER_STREAMS:-48}
BOOT_FAILURE='Security Violation|Access Denied|Kernel panic|edgeplane-initrd: .*rebooting|refusing to start'

# Lab addresses. Management (cluster) network on bridge brm: unit i at 192.0.2.1i, the operator's
# end in the lab namespace at 192.0.2.254. Data: every unit has its own address on both sides; the
# shared ones are the VIP (policy) and the servers' gateway (identity.json cluster address).
OPERATOR_IP=192.0.2.254
CLIENT_IP=198.51.100.100
VIP=198.51.100.10
GATEWAY=203.0.113.1
SERVER_IPS=(203.0.113.21 203.0.113.22)
POLICY=$TEST_DIR/fixtures/cluster-policy.json
SHARED_MAC=$(jq -r .cluster.delivery.mac "$POLICY")
STREAM_PORT=$(jq -r '.services[] | select(.name == "stream") | .port' "$POLICY")
UNITS=()
survivors=()
for i in $(seq 1 "$UNIT_COUNT"); do UNITS+=("u$i"); survivors+=("u$i"); done
mgmt_ip() { echo "192.0.2.1${1#u}"; }

pids=()
# The units' consoles outlive the run (a failure is read from them): the last run's are kept here.
CONSOLES=${EDGEPLANE_CLUSTER_CONSOLES:-/var/tmp/edgeplane-clustertest-consoles}
cleanup() {
  local pid unit
  rm -rf "$CONSOLES" && mkdir -p "$CONSOLES"
  for unit in "${UNITS[@]}" rogue; do
    [[ -f $EDGEPLANE_UNITS/$unit/console.log ]] && cp "$EDGEPLANE_UNITS/$unit/console.log" "$CONSOLES/$unit.log"
  done
  echo "# the units' consoles: $CONSOLES" >&2
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -f $SCRATCH/nginx.pid ]]; then kill "$(cat "$SCRATCH/nginx.pid")" 2>/dev/null || true; fi
  for unit in "${UNITS[@]}" rogue; do "$RUN" destroy "$unit" >/dev/null 2>&1 || true; done
  "$RUN" lab-down || true
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

n=0
failed=0
result() {
  n=$((n + 1))
  if [[ $1 == ok ]]; then echo "ok $n - $2"; else failed=$((failed + 1)); echo "not ok $n - $2"; fi
}
console() { tr -d '\r' < "$EDGEPLANE_UNITS/$1/console.log"; }
now() { date +%s.%N; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
lab=(ip netns exec "$EDGEPLANE_LAB")
client=(ip netns exec "$EDGEPLANE_LAB-client")
server=(ip netns exec "$EDGEPLANE_LAB-server")
# The management API of a unit, as the operator (mutual TLS with a certificate from the cluster CA).
api() {
  "${lab[@]}" curl -sS --max-time 10 --cacert "$SCRATCH/operator/ca.crt" --cert "$SCRATCH/operator/operator.crt" \
    --key "$SCRATCH/operator/operator.key" "https://$(mgmt_ip "$1"):8443$2"
}

echo "TAP version 14"
if [[ ! -f $OUT/edgeplane.raw ]]; then
  step "no image in $OUT: building it"
  "$IMAGE_SRC/build.sh" "$OUT" >&2
fi

step "provisioning ${UNIT_COUNT} units from one cluster authority, and one from another"
flash_config() { (cd "$REPO" && npx tsx flash-config/cli.ts "$@") >&2; }
flash_config authority init --out "$SCRATCH/authority" --cluster clustertest
flash_config authority init --out "$SCRATCH/rogue-authority" --cluster clustertest
provision() {
  local authority=$1 unit=$2 i=${2#u}
  [[ $unit == rogue ]] && i=$((UNIT_COUNT + 1))
  flash_config unit create --authority "$authority" --unit-id "$unit" --mgmt-addr "192.0.2.1$i" \
    --data-addr "198.51.100.$((1 + i))" --data-addr "203.0.113.$((1 + i))" --cluster-addr "$GATEWAY" \
    --policy "$POLICY" --out "$SCRATCH/$unit" --image "$SCRATCH/$unit.img"
}
for unit in "${UNITS[@]}"; do provision "$SCRATCH/authority" "$unit"; done
provision "$SCRATCH/rogue-authority" rogue
(cd "$REPO" && npx tsx app/cli/edgeplane.ts operator-cert --authority "$SCRATCH/authority" --name clustertest \
  --role read-only --out "$SCRATCH/operator") >&2

step "booting ${UNITS[*]} at once"
for unit in "${UNITS[@]}"; do
  "$RUN" destroy "$unit" >/dev/null 2>&1 || true
  "$RUN" start "$unit" --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/$unit.img"
done

step "lab: flooding data bridges, operator on the management network, client, nginx and stream servers"
# Unicast-MAC delivery: nobody sends from the shared MAC except a new master's gratuitous ARP, and
# a bridge that learnt it from that would deliver to the master only: the data bridges never learn.
for bridge in brc brs; do "${lab[@]}" ip link set "$bridge" type bridge ageing_time 0; done
"${lab[@]}" ip link set brm type bridge mcast_snooping 0
"${lab[@]}" ip address add "$OPERATOR_IP/24" dev brm
"${client[@]}" ip address add "$CLIENT_IP/24" dev eth0
"${client[@]}" ip neigh replace "$VIP" lladdr "$SHARED_MAC" dev eth0 nud permanent
for ip in "${SERVER_IPS[@]}"; do "${server[@]}" ip address add "$ip/24" dev eth0; done
"${server[@]}" ip route add default via "$GATEWAY"
"${server[@]}" ip neigh replace "$GATEWAY" lladdr "$SHARED_MAC" dev eth0 nud permanent
printf '%s\n' "daemon on;" "pid $SCRATCH/nginx.pid;" "error_log $SCRATCH/nginx-error.log;" \
  "events { worker_connections 64; }" \
  'http { access_log off; server { listen 8080; default_type text/plain; return 200 "served by $server_addr\n"; } }' \
  > "$SCRATCH/nginx.conf"
"${server[@]}" nginx -c "$SCRATCH/nginx.conf"
"${server[@]}" "$PYTHON" "$STREAMS" serve "$STREAM_PORT" 2>"$SCRATCH/stream-server.log" &
pids+=($!)

for unit in "${UNITS[@]}"; do
  seconds=$("$RUN" wait "$unit" "Started edgeplane.service|Failed to start edgeplane.service|$BOOT_FAILURE" 900 || true)
  address=$(console "$unit" | grep -oE 'edgeplane: management NIC .*: .* from .*' | head -n 1 || true)
  # grep >/dev/null, not -q: an early exit would fail the pipe under pipefail (a false "not ready").
  if console "$unit" | grep 'Started edgeplane.service' >/dev/null && [[ $address == *": $(mgmt_ip "$unit")/24 from"* ]] \
     && ! console "$unit" | grep 'not clustering' >/dev/null; then
    result ok "$unit: appliance ready ${seconds}s after QEMU start, ${address#edgeplane: }"
  else
    result fail "$unit: appliance ready with its management address from identity.json (settled after ${seconds:-?}s: ${address:-no management NIC line})"
    console "$unit" | grep -E 'edgeplane|networkd' | tail -n 20 | sed 's/^/# /'
  fi
done

step "one cluster: every unit's management API (operator certificate) names the same master and all members"
deadline=$((SECONDS + 240))
views=''
until ((SECONDS >= deadline)); do
  views=$(for unit in "${UNITS[@]}"; do
    api "$unit" /api/cluster 2>/dev/null | jq -r --arg unit "$unit" \
      '"\($unit): role \(.role), master \(.masterId), members \([.members[] | "\(.id)=\(.health)"] | sort | join(","))"' 2>/dev/null \
      || echo "$unit: no answer"
  done)
  masters=$(sed -n 's/.* master \([^,]*\), .*/\1/p' <<<"$views" | sort -u)
  if [[ $(wc -l <<<"$masters") == 1 && $masters != null ]] \
     && [[ $(grep -c "members $(printf '%s=ok,' "${UNITS[@]}" | sed 's/,$//')\$" <<<"$views") == "$UNIT_COUNT" ]]; then
    break
  fi
  sleep 5
done
sed 's/^/# /' <<<"$views"
master=$(sed -n 's/.* master \([^,]*\), .*/\1/p' <<<"$views" | sort -u | head -n 1)
if [[ $(grep -c "members $(printf '%s=ok,' "${UNITS[@]}" | sed 's/,$//')\$" <<<"$views") == "$UNIT_COUNT" \
      && $(sed -n 's/.* master \([^,]*\), .*/\1/p' <<<"$views" | sort -u | wc -l) == 1 ]]; then
  joins=$(for unit in "${UNITS[@]}"; do console "$unit" | grep -oE '"joinedInMs":[0-9]+' | tail -n 1 | sed "s/\"joinedInMs\":/$unit joined in /; s/\$/ ms/"; done | paste -sd, || true)
  result ok "one cluster of ${UNIT_COUNT}: master $master, every member's API lists ${UNITS[*]} healthy (${joins:-$master founded it})"
else
  result fail "one cluster of ${UNIT_COUNT} with one master (management API views above)"
fi

step "HTTP through the cluster's VIP: client namespace -> the owning unit's data plane -> nginx"
bodies=()
body=''
for _ in $(seq 1 20); do
  if body=$("${client[@]}" curl -sS --max-time 5 "http://$VIP/" 2>&1); then bodies+=("$body"); fi
  ((${#bodies[@]} >= 8)) && break
  ((${#bodies[@]} > 0)) || sleep 3
done
answered=$(printf '%s\n' "${bodies[@]}" | sed -n 's/^served by //p' | sort | uniq -c | awk '{ print $2 " x" $1 }' | paste -sd' ')
echo "# ${#bodies[@]} responses, from: ${answered:-nobody} (last: ${body:-nothing})"
if ((${#bodies[@]} >= 8)) && ! printf '%s\n' "${bodies[@]}" | grep -vE '^served by 203\.0\.113\.2[12]$' >/dev/null; then
  result ok "curl http://$VIP/ from the client namespace is answered by the nginx servers behind the cluster (${#bodies[@]} of ${#bodies[@]})"
else
  result fail "curl http://$VIP/ from the client namespace is answered by the nginx servers behind the cluster"
fi

step "$STREAM_COUNT long-lived TCP connections through the VIP; then QMP quit of a unit owning some"
"${client[@]}" "$PYTHON" "$STREAMS" clients "$VIP" "$STREAM_PORT" "$STREAM_COUNT" "$SCRATCH/stream-ports" \
  > "$SCRATCH/stream-report" 2>"$SCRATCH/stream-clients.log" &
clients_pid=$!
pids+=("$clients_pid")
deadline=$((SECONDS + 120))
until [[ -s $SCRATCH/stream-ports ]] || ((SECONDS >= deadline)) || ! kill -0 "$clients_pid" 2>/dev/null; do sleep 1; done
if [[ ! -s $SCRATCH/stream-ports ]]; then
  result fail "$STREAM_COUNT connections through $VIP:$STREAM_PORT opened"
  sed 's/^/# /' "$SCRATCH/stream-clients.log" | tail -n 5
else
  sleep 5 # a few replication rounds (20 ms batches) for every connection
  # Which member owns each connection: every unit's own view (the cluster-wide one, asked from one
  # unit, leaves out a member that answers its peers too late).
  owners=$(for unit in "${UNITS[@]}"; do
    api "$unit" "/api/flows?service=stream&scope=unit&limit=1000" | jq -r --arg unit "$unit" '.flows[] | "\(.client) \($unit)"' || true
  done | sort -u)
  echo "# owners of the stream connections: $(awk '{ print $2 }' <<<"$owners" | sort | uniq -c | awk '{ print $2 "=" $1 }' | paste -sd' ')"
  # The victim: the member (not the master, when another owns some) owning the most connections.
  victim=$(awk -v master="$master" '{ count[$2]++ } END { for (u in count) print (u == master ? 0 : 1), count[u], u }' <<<"$owners" \
    | sort -k1,1nr -k2,2nr | head -n 1 | awk '{ print $3 }')
  victim_ports=$(awk -v v="$victim" '$2 == v { sub(/.*:/, "", $1); print $1 }' <<<"$owners")
fi
if [[ -z ${victim_ports:-} ]]; then
  result fail "the management API names the owners of the $STREAM_COUNT connections (owners: ${owners:-none})"
else
  survivors=()
  for unit in "${UNITS[@]}"; do [[ $unit == "$victim" ]] || survivors+=("$unit"); done
  declare -A console_lines
  for unit in "${survivors[@]}"; do console_lines[$unit]=$(wc -l < "$EDGEPLANE_UNITS/$unit/console.log"); done
  kill -USR1 "$clients_pid"
  killed_at=$(now)
  printf '%s\n' '{"execute": "qmp_capabilities"}' '{"execute": "quit"}' | socat - "UNIX-CONNECT:$EDGEPLANE_UNITS/$victim/qmp.sock" >/dev/null
  note "killed $victim (QMP quit; master $master), owner of $(wc -w <<<"$victim_ports") connections"
  # Host-side times of the survivors' first log lines after the kill (console latency included).
  detected_at='' taken_at=''
  # A starved guest's console runs up to ~30 s behind its journal: give the lines time to show.
  deadline=$((SECONDS + 120))
  while ((SECONDS < deadline)) && [[ -z $detected_at || -z $taken_at ]]; do
    for unit in "${survivors[@]}"; do
      since=$(tail -n +"$((console_lines[$unit] + 1))" "$EDGEPLANE_UNITS/$unit/console.log")
      if [[ -z $detected_at ]] && grep -qE '"msg":"(member lost|master lost)"' <<<"$since"; then
        detected_at=$(now); detection=$(grep -oE '"msg":"(member lost|master lost)"' <<<"$since" | head -n 1 | cut -d'"' -f4)" on $unit"
      fi
      if [[ -z $taken_at ]] && grep -q '"msg":"held packets released"' <<<"$since"; then taken_at=$(now); takeover="on $unit"; fi
    done
    sleep 0.2
  done
  # The connections go on (or break) on the survivors. TCP backs off while nothing answers
  # (retransmissions ~13, 25 and 51 s after the loss): a takeover after ~25 s on starved TCG
  # guests shows only at the retransmission ~51 s after the kill.
  sleep 60
  kill -TERM "$clients_pid"
  wait "$clients_pid" || true
  report=$(jq -s -c --argjson killed "$killed_at" --arg victims "$victim_ports" '
    ($victims | split("\n") | map(select(. != "") | tonumber)) as $v |
    { total: length,
      intact: map(select(.bad == false and .closed == false and .error == null and .receivedSinceMark > 0)) | length,
      broken: map(select(.bad or .closed or .error != null or .receivedSinceMark == 0) | "\(.port): bad=\(.bad) closed=\(.closed) error=\(.error) since=\(.receivedSinceMark)")[:5],
      victimResumeMs: map(select((.port as $p | $v | index($p)) and .resumedAt > 0) | ((.resumedAt - $killed) * 1000 | floor)) | sort,
      victimNeverResumed: map(select((.port as $p | $v | index($p)) and .resumedAt == 0)) | length,
      bytes: (map(.received + .sent) | add) }' "$SCRATCH/stream-report")
  echo "# streams: $report"
  resumes=$(jq -r '(.victimResumeMs | if length > 0 then "median \(.[length / 2 | floor]) ms, max \(.[-1]) ms" else "none measured" end)
    + (if .victimNeverResumed > 0 then " (\(.victimNeverResumed) never resumed)" else "" end)' <<<"$report")
  detection_text='not seen' takeover_text='not seen'
  [[ -z $detected_at ]] || detection_text="$(ms_between "$killed_at" "$detected_at") ms ($detection)"
  [[ -z $taken_at ]] || takeover_text="$(ms_between "$killed_at" "$taken_at") ms (first held packets released $takeover)"
  times="detection $detection_text, takeover $takeover_text; the victim's connections resumed after $resumes"
  if [[ $(jq .total <<<"$report") == "$STREAM_COUNT" && $(jq .intact <<<"$report") == "$STREAM_COUNT" && -n $victim_ports && -n $detected_at ]]; then
    result ok "all $STREAM_COUNT connections survive QMP quit of $victim (owner of $(wc -w <<<"$victim_ports")): no reset, every byte checked ($(jq .bytes <<<"$report") bytes); $times"
  else
    result fail "all $STREAM_COUNT connections survive QMP quit of ${victim:-?} ($(jq -c '{total, intact, broken}' <<<"$report")); $times"
    for unit in "${survivors[@]}"; do console "$unit" | grep -E '"component":"cluster"' | tail -n 8 | cut -c1-300 | sed "s/^/# $unit: /"; done
  fi
  # The survivors' view: the victim is gone, one master remains.
  after=$(api "${survivors[0]}" /api/cluster | jq -r '"master \(.masterId), members \([.members[] | select(.health == "ok") | .id] | sort | join(","))"' || echo 'no answer')
  master=$(api "${survivors[0]}" /api/cluster | jq -r .masterId || true)
  expected="members $(printf '%s,' "${survivors[@]}" | sed 's/,$//')"
  if [[ $after == *"$expected" ]]; then result ok "after the kill the cluster is ${after}"; else result fail "after the kill the cluster is ${survivors[*]} (${after})"; fi
fi

step "a unit with a certificate from another cluster CA is refused"
"$RUN" destroy rogue >/dev/null 2>&1 || true
"$RUN" start rogue --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/rogue.img"
seconds=$("$RUN" wait rogue '"msg":"join refused"|'"$BOOT_FAILURE" 900 || true)
# A pino line on the console: "[  t] edgeplane[pid]: {json}".
log_field() { grep -a "$1" | head -n 1 | sed 's/^[^{]*//' | jq -r "$2" 2>/dev/null || true; }
rogue_reason=$(console rogue | log_field '"msg":"join refused"' .reason)
master_reason=''
deadline=$((SECONDS + 30))
until [[ -n $master_reason ]] || ((SECONDS >= deadline)); do
  master_reason=$(console "$master" 2>/dev/null | grep -aE '"unit":"rogue"|[":]192\.0\.2\.1'"$((UNIT_COUNT + 1))"'"' | log_field '"msg":"join refused"' .reason)
  [[ -n $master_reason ]] || sleep 2
done
if [[ $rogue_reason == *'does not verify with the cluster CA'* && $master_reason == *'does not verify with the cluster CA'* ]]; then
  result ok "rogue is refused ${seconds}s after QEMU start; on its console: \"$rogue_reason\"; on master $master's: \"$master_reason\""
else
  result fail "rogue (foreign CA) is refused with the reason on both consoles (rogue: ${rogue_reason:-none}; master ${master:-?}: ${master_reason:-none})"
  console rogue | grep -E 'edgeplane|cluster' | tail -n 10 | cut -c1-300 | sed 's/^/# /'
fi
members=$(api "${survivors[0]}" /api/cluster | jq -r '[.members[].id] | sort | join(",")' || true)
if [[ $members != *rogue* ]]; then result ok "the cluster's members are still ${members}"; else result fail "rogue is not a member (${members})"; fi

echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[[ $failed == 0 ]]
