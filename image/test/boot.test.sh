#!/usr/bin/env bash
# Boots the built image under QEMU (TCG, OVMF Secure Boot with the snakeoil
# test keys) and reports TAP:
#   - a unit with a freshly provisioned flash config (a NAT service in its
#     signed policy) boots; the appliance service gets ready (sd_notify); an
#     HTTP client in the lab's client namespace reaches nginx servers in the
#     server namespace through the VIP, forwarded by DPDK's virtio PMD in the
#     guest; the image's own power-on self-test (secure boot, lockdown,
#     read-only root, vfio-bound data NICs, flash config, appliance ready, ...)
#     is re-emitted check by check;
#   - flash configs the appliance must refuse (policy altered after signing,
#     unit certificate expired, unit certificate from a foreign CA): it says
#     why on the serial console;
#   - the same image with slot A's UKI signed by a foreign key does not boot.
# Usage: image/test/boot.test.sh [IMAGE_DIR]   (default /var/tmp/edgeplane-image/out;
#        the image is built there first when missing)
set -euo pipefail
TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE_DIR_SRC=$(cd "$TEST_DIR/.." && pwd)
REPO=$(cd "$IMAGE_DIR_SRC/.." && pwd)
source "$IMAGE_DIR_SRC/lib/progress.sh"
RUN=$IMAGE_DIR_SRC/qemu/run-unit.sh

OUT=${1:-/var/tmp/edgeplane-image/out}
export EDGEPLANE_LAB=edgeplane-boottest
export EDGEPLANE_UNITS=/var/tmp/edgeplane-image/boottest
SCRATCH=$(mktemp -d /var/tmp/edgeplane-boottest.XXXXXX)
# Where a boot ends for good. Not a kernel panic: panic=5 reboots the unit and the next boot goes
# on (the good unit's panics are reported), and an earlier boot's panic must not end a later wait.
BOOT_FAILURE='Security Violation|Access Denied|No bootable option|edgeplane-initrd: .*rebooting'

# Lab addresses: data NIC 0 faces the client namespace, data NIC 1 the servers.
CLIENT_IP=198.51.100.100
UNIT_CLIENT_SIDE=198.51.100.1
VIP=198.51.100.10
UNIT_SERVER_SIDE=203.0.113.1
SERVER_IPS=(203.0.113.21 203.0.113.22)
REFUSALS=(tampered-policy expired-cert foreign-ca)

cleanup() {
  if [[ -f $SCRATCH/nginx.pid ]]; then kill "$(cat "$SCRATCH/nginx.pid")" 2>/dev/null || true; fi
  "$RUN" destroy good >/dev/null 2>&1 || true
  for unit in "${REFUSALS[@]}"; do "$RUN" destroy "$unit" >/dev/null 2>&1 || true; done
  "$RUN" destroy foreign-key >/dev/null 2>&1 || true
  "$RUN" lab-down || true
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

n=0
failed=0
result() {
  local status=$1 description=$2
  n=$((n + 1))
  if [[ $status == ok ]]; then echo "ok $n - $description"; else failed=$((failed + 1)); echo "not ok $n - $description"; fi
}

echo "TAP version 14"
if [[ ! -f $OUT/edgeplane.raw ]]; then
  step "no image in $OUT: building it"
  "$IMAGE_DIR_SRC/build.sh" "$OUT" >&2
fi

flash_config() { (cd "$REPO" && npx tsx flash-config/cli.ts "$@") >&2; }
# An ext4 EPFLASHCFG partition image from a directory, as `unit create --image` writes it.
partition_image() { mke2fs -q -F -t ext4 -O ^has_journal -L EPFLASHCFG -E root_owner=0:0 -d "$1" "$2" 4M >&2; }

step "provisioning flash configs with the flash-config tool"
unit_args=(--mgmt-addr 192.0.2.11 --data-addr "$UNIT_CLIENT_SIDE" --data-addr "$UNIT_SERVER_SIDE"
           --policy "$TEST_DIR/fixtures/nat-policy.json")
flash_config authority init --out "$SCRATCH/authority" --cluster boottest
flash_config unit create --authority "$SCRATCH/authority" --unit-id unit1 "${unit_args[@]}" \
  --out "$SCRATCH/unit1" --image "$SCRATCH/unit1.img"
# Refused: the policy's first server port changed after signing.
cp -a "$SCRATCH/unit1" "$SCRATCH/tampered-policy"
sed -i '0,/"port": 8080/s//"port": 8081/' "$SCRATCH/tampered-policy/policy.json"
partition_image "$SCRATCH/tampered-policy" "$SCRATCH/tampered-policy.img"
# Refused: a certificate valid for one day, booted with the clock three days ahead.
flash_config unit create --authority "$SCRATCH/authority" --unit-id unit2 "${unit_args[@]}" \
  --valid-days 1 --out "$SCRATCH/expired-cert" --image "$SCRATCH/expired-cert.img"
# Refused: unit1's identity with a key and certificate issued by another cluster's CA.
flash_config authority init --out "$SCRATCH/rogue-authority" --cluster rogue
flash_config unit create --authority "$SCRATCH/rogue-authority" --unit-id unit1 "${unit_args[@]}" --out "$SCRATCH/rogue-unit1"
cp -a "$SCRATCH/unit1" "$SCRATCH/foreign-ca"
cp "$SCRATCH/rogue-unit1/unit.crt" "$SCRATCH/rogue-unit1/unit.key" "$SCRATCH/foreign-ca/"
partition_image "$SCRATCH/foreign-ca" "$SCRATCH/foreign-ca.img"

step "boot: signed image, Secure Boot on, NAT service in the flash config's policy"
"$RUN" destroy good >/dev/null 2>&1 || true
"$RUN" start good --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/unit1.img"
console=$EDGEPLANE_UNITS/good/console.log

step "lab: client $CLIENT_IP, nginx servers ${SERVER_IPS[*]} port 8080 (up before the appliance resolves them)"
client=(ip netns exec "$EDGEPLANE_LAB-client")
server=(ip netns exec "$EDGEPLANE_LAB-server")
"${client[@]}" ip address add "$CLIENT_IP/24" dev eth0
for ip in "${SERVER_IPS[@]}"; do "${server[@]}" ip address add "$ip/24" dev eth0; done
"${server[@]}" ip route add default via "$UNIT_SERVER_SIDE"
printf '%s\n' "daemon on;" "pid $SCRATCH/nginx.pid;" "error_log $SCRATCH/nginx-error.log;" \
  "events { worker_connections 64; }" \
  'http { access_log off; server { listen 8080; default_type text/plain; return 200 "served by $server_addr\n"; } }' \
  > "$SCRATCH/nginx.conf"
"${server[@]}" nginx -c "$SCRATCH/nginx.conf"

settled=$("$RUN" wait good "Started edgeplane.service|Failed to start edgeplane.service|refusing to start|$BOOT_FAILURE" 900 || true)
panics=$(grep -ac 'Kernel panic' "$console" || true)
if ((panics > 0)); then
  echo "# unit good: $panics kernel panic(s) on the way, each rebooted by panic=5:"
  grep -a 'Kernel panic' "$console" | tr -d '\r' | sed 's/^/#   /'
fi
if grep -qa 'Started edgeplane.service' "$console"; then
  result ok "appliance service ready (sd_notify READY=1) ${settled}s after QEMU start"
else
  result fail "appliance service ready (settled after ${settled:-?}s)"
  # What the unit said (the console goes away with it); a firmware failure has no edgeplane lines.
  { grep -aE 'edgeplane|EAL|DPDK|BdsDxe|Access Denied|Security Violation|No bootable' "$console" || tail -n 30 "$console"; } |
    tail -n 30 | tr -d '\r' | sed 's/^/# /'
fi

# The appliance logs the DPDK ports it found as "<PCI address> (port N, <driver>, <MAC>)".
drivers=$(grep -aoE '0000:00:0[67]\.0 \(port [0-9]+, [a-z_0-9]+' "$console" | sort -u | sed 's/ (port [0-9]*, / -> /' | paste -sd, || true)
echo "# DPDK ports: ${drivers:-none logged}"
if [[ $drivers == *"0000:00:06.0 -> net_virtio"* && $drivers == *"0000:00:07.0 -> net_virtio"* ]]; then
  result ok "both data NICs are DPDK ports driven by the virtio PMD (net_virtio)"
else
  result fail "both data NICs are DPDK ports driven by the virtio PMD (net_virtio)"
fi

step "HTTP through the VIP: client namespace -> guest data plane -> server namespace"
bodies=()
body=''
for _ in $(seq 1 12); do
  # A fresh source port each time: Maglev spreads the connections over both servers.
  if body=$("${client[@]}" curl -sS --max-time 5 "http://$VIP/" 2>&1); then bodies+=("$body"); fi
  ((${#bodies[@]} >= 6)) && break
  ((${#bodies[@]} > 0)) || sleep 5
done
answered=$(printf '%s\n' "${bodies[@]}" | sed -n 's/^served by //p' | sort | uniq -c | awk '{ print $2 " x" $1 }' | paste -sd' ')
echo "# ${#bodies[@]} responses, from: ${answered:-nobody} (last: ${body:-nothing})"
if ((${#bodies[@]} > 0)) && ! printf '%s\n' "${bodies[@]}" | grep -qvE '^served by 203\.0\.113\.2[12]$'; then
  result ok "curl http://$VIP/ in the client namespace is answered by the nginx servers behind the NAT service"
else
  result fail "curl http://$VIP/ in the client namespace is answered by the nginx servers behind the NAT service"
fi

if seconds=$("$RUN" wait good "edgeplane-selftest: done|$BOOT_FAILURE" 300) \
   && grep -qa 'edgeplane-selftest: done' "$console"; then
  result ok "signed image boots to the self-test in ${seconds}s from QEMU start"
  # Re-emit the appliance's own checks as ours.
  while IFS= read -r line; do
    case $line in
      "ok "*) result ok "selftest: ${line#ok [0-9]* - }" ;;
      "not ok "*) result fail "selftest: ${line#not ok [0-9]* - }" ;;
      "# "*) echo "$line" ;;
    esac
  done < <(tr -d '\r' < "$console" | sed -n '/^TAP version 14/,/^1\.\./p')
else
  result fail "signed image boots to the self-test"
  tail -n 40 "$console" | tr -d '\r' | sed 's/^/# /'
fi

# WatchdogSec=30s: the service outlives it only while WATCHDOG=1 keeps arriving (every 15 s).
watch_until=$(awk -v ready="${settled:-0}" 'BEGIN { printf "%d", ready + 40 }')
since_start=$(awk -v t0="$(cat "$EDGEPLANE_UNITS/good/started")" -v now="$(date +%s.%N)" 'BEGIN { printf "%d", now - t0 }')
((since_start >= watch_until)) || sleep $((watch_until - since_start))
if ! grep -qaE 'edgeplane.service: (Watchdog timeout|Main process exited|Failed)' "$console" \
   && body=$("${client[@]}" curl -sS --max-time 5 "http://$VIP/" 2>&1) && [[ $body == "served by 203.0.113."* ]]; then
  result ok "40 s after ready (WatchdogSec=30s) the appliance still runs and forwards ($body)"
else
  result fail "40 s after ready (WatchdogSec=30s) the appliance still runs and forwards"
  grep -a 'edgeplane.service' "$console" | tail -n 5 | tr -d '\r' | sed 's/^/# /' || true
fi
"$RUN" stop good
kill "$(cat "$SCRATCH/nginx.pid")" && rm -f "$SCRATCH/nginx.pid"

step "boot: flash configs the appliance must refuse (three units at once)"
declare -A expect=(
  [tampered-policy]='refusing to start: flash config /flash-config/policy\.json: signature in policy\.json\.sig does not verify'
  [expired-cert]='refusing to start: flash config /flash-config/unit\.crt: expired at'
  [foreign-ca]="refusing to start: flash config /flash-config/unit\.crt: .*'CN=rogue cluster CA"
)
"$RUN" start tampered-policy --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/tampered-policy.img"
"$RUN" start expired-cert --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/expired-cert.img" \
  --rtc-base "$(date -u -d '+3 days' +%Y-%m-%dT%H:%M:%S)"
"$RUN" start foreign-ca --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/foreign-ca.img"
for unit in "${REFUSALS[@]}"; do
  unit_console=$EDGEPLANE_UNITS/$unit/console.log
  seconds=$("$RUN" wait "$unit" "refusing to start|Started edgeplane.service|$BOOT_FAILURE" 1200 || true)
  line=$(grep -aoE "${expect[$unit]}.*" "$unit_console" | tr -d '\r' | head -n 1 || true)
  if [[ -n $line ]] && ! grep -qa 'Started edgeplane.service' "$unit_console"; then
    result ok "$unit: the appliance refuses and says why on the console (${seconds}s): ${line#refusing to start: }"
  else
    result fail "$unit: the appliance refuses with /${expect[$unit]}/"
    grep -a 'edgeplane' "$unit_console" | tail -n 10 | tr -d '\r' | sed 's/^/# /' || true
  fi
  "$RUN" stop "$unit"
done

step "boot: slot A's UKI re-signed with a foreign key"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=not-enrolled \
  -keyout "$SCRATCH/foreign.key" -out "$SCRATCH/foreign.crt" 2>/dev/null
cp "$OUT/uki/edgeplane-a.efi" "$SCRATCH/unsigned.efi"
sbattach --remove "$SCRATCH/unsigned.efi" >/dev/null
sbsign --key "$SCRATCH/foreign.key" --cert "$SCRATCH/foreign.crt" --output "$SCRATCH/foreign.efi" "$SCRATCH/unsigned.efi" 2>/dev/null
cp --sparse=always "$OUT/edgeplane.raw" "$SCRATCH/foreign.raw"
esp_start=$(sfdisk --dump "$SCRATCH/foreign.raw" | sed -n 's/.*start= *\([0-9]*\),.*name="ESP".*/\1/p')
mcopy -o -i "$SCRATCH/foreign.raw@@$((esp_start * 512))" "$SCRATCH/foreign.efi" ::/EFI/Linux/edgeplane-a.efi
"$RUN" destroy foreign-key >/dev/null 2>&1 || true
"$RUN" start foreign-key --image "$SCRATCH/foreign.raw" --flash-config "$SCRATCH/unit1.img"
console=$EDGEPLANE_UNITS/foreign-key/console.log
"$RUN" wait foreign-key "Security Violation|Access Denied|EFI stub:|Linux version" 300 >/dev/null || true
if grep -qaE 'Security Violation|Access Denied' "$console" && ! grep -qaE 'EFI stub:|Linux version' "$console"; then
  result ok "firmware refuses a UKI signed with a key not in db ($(grep -aoE 'Security Violation|Access Denied' "$console" | head -n 1))"
else
  result fail "firmware refuses a UKI signed with a key not in db"
  tail -n 20 "$console" | tr -d '\r' | sed 's/^/# /'
fi
"$RUN" stop foreign-key

echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[[ $failed == 0 ]]
