#!/usr/bin/env bash
# A/B update under QEMU (TCG, Secure Boot), each case in one QEMU process
# that the appliance reboots itself.
# Rollback (update image built --without-app, its appliance never gets ready):
#   boot 1  slot A applies a signed bundle from the "edgeplane-update" disk
#           into slot B, installs edgeplane-b+3-0.efi, reboots;
#   boot 2+ systemd-boot tries slot B; the appliance there does not get
#           ready, so each trial boot reboots and spends a try;
#   last    tries exhausted (edgeplane-b+0-3.efi): slot A boots again.
# Success (update image with the application, unit provisioned like
# boot.test.sh's ready unit):
#   boot 1  slot A applies the bundle into slot B and reboots;
#   boot 2  trial boot of slot B: the appliance gets ready, boot-complete.target
#           is reached and systemd-bless-boot drops the counter (edgeplane-b.efi);
#   boot 3  after a hard reset (QMP system_reset) slot B boots again.
# Also: a bundle signed with another key is refused and nothing is switched.
# Usage: image/test/update.test.sh [IMAGE_DIR]   (IMAGE_DIR as for boot.test.sh)
set -euo pipefail
TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE_SRC=$(cd "$TEST_DIR/.." && pwd)
REPO=$(cd "$IMAGE_SRC/.." && pwd)
source "$IMAGE_SRC/lib/progress.sh"
RUN=$IMAGE_SRC/qemu/run-unit.sh

OUT=${1:-/var/tmp/edgeplane-image/out}
UPDATE_OUT=/var/tmp/edgeplane-image/out-update-test
HEALTHY_OUT=/var/tmp/edgeplane-image/out-update-test-healthy
export EDGEPLANE_LAB=edgeplane-updatetest
export EDGEPLANE_UNITS=/var/tmp/edgeplane-image/updatetest
SCRATCH=$(mktemp -d /var/tmp/edgeplane-updatetest.XXXXXX)

cleanup() {
  "$RUN" destroy ab >/dev/null 2>&1 || true
  "$RUN" destroy forged >/dev/null 2>&1 || true
  "$RUN" destroy healthy >/dev/null 2>&1 || true
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
check() { local description=$1; shift; if "$@"; then result ok "$description"; else result fail "$description"; fi; }
# The console of the unit "healthy" from line $1 on (one boot and what follows it), without CRs.
# (Its readers use grep >/dev/null, not -q: an early exit would fail the pipe under pipefail.)
console_from() { tail -n +"$1" "$EDGEPLANE_UNITS/healthy/console.log" | tr -d '\r'; }
# Firmware boots beyond one per reboot/reset the test asked for or power cycle by the lab
# were resets by the watchdog.
report_watchdog_resets() {
  local boots restarts cycles=0 log=$EDGEPLANE_UNITS/healthy/power-cycles.log
  boots=$(console_from 1 | grep -c 'BdsDxe: starting' || true)
  restarts=$(console_from 1 | grep -c 'reboot: Restarting system' || true)
  [[ ! -f $log ]] || cycles=$(wc -l < "$log")
  if ((boots > restarts + cycles + 1)); then
    echo "# $((boots - restarts - cycles - 1)) boot(s) of unit healthy hung and were reset by the watchdog"
  fi
}
since_start() { awk -v t0="$(cat "$EDGEPLANE_UNITS/healthy/started")" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t0 }'; }
# Waits for REGEX on unit healthy's console from line FROM on; prints seconds since QEMU start.
wait_from() {
  local from=$1 pattern=$2 deadline=$((SECONDS + $3))
  until console_from "$from" | grep -E "$pattern" >/dev/null; do
    if ((SECONDS >= deadline)) || ! "$RUN" running healthy; then
      note "unit healthy: no /$pattern/ after console line $from"
      return 1
    fi
    sleep 2
  done
  since_start
}

# Warm reboots that hung in the firmware and were power-cycled by the lab (run-unit.sh power-watch).
report_power_cycles() {
  local log=$EDGEPLANE_UNITS/$1/power-cycles.log
  [[ -f $log ]] || return 0
  sed "s/^/# unit $1: /" "$log"
}

echo "TAP version 14"
[[ -f $OUT/edgeplane.raw ]] || die "no image in $OUT: run image/build.sh first"
base_version=$(sed -n '1s/^# edgeplane image \([^ ]*\),.*/\1/p' "$OUT/edgeplane.manifest")
update_version="$base_version.update"
healthy_version="$base_version.healthy"
step "building the update image ($update_version, without application)"
EDGEPLANE_IMAGE_VERSION=$update_version "$IMAGE_SRC/build.sh" --without-app "$UPDATE_OUT" >&2
"$IMAGE_SRC/update/make-bundle.sh" "$UPDATE_OUT" "$SCRATCH/update.tar"
step "building the healthy update image ($healthy_version, with application)"
EDGEPLANE_IMAGE_VERSION=$healthy_version "$IMAGE_SRC/build.sh" "$HEALTHY_OUT" >&2
"$IMAGE_SRC/update/make-bundle.sh" "$HEALTHY_OUT" "$SCRATCH/healthy.tar"

step "provisioning a flash config"
(cd "$REPO" &&
  npx tsx flash-config/cli.ts authority init --out "$SCRATCH/authority" --cluster updatetest &&
  npx tsx flash-config/cli.ts unit create --authority "$SCRATCH/authority" --unit-id unit1 \
    --mgmt-addr 192.0.2.11 --data-addr 198.51.100.11 --policy "$TEST_DIR/fixtures/policy.json" \
    --out "$SCRATCH/unit1" --image "$SCRATCH/unit1.img" &&
  # As boot.test.sh's unit that gets ready: both data addresses, the signed NAT policy.
  npx tsx flash-config/cli.ts unit create --authority "$SCRATCH/authority" --unit-id unit2 \
    --mgmt-addr 192.0.2.12 --data-addr 198.51.100.1 --data-addr 203.0.113.1 \
    --policy "$TEST_DIR/fixtures/nat-policy.json" --out "$SCRATCH/unit2" --image "$SCRATCH/unit2.img") >&2 2>/dev/null

step "forged bundle: same payload, manifest signed by a key the image does not trust"
mkdir "$SCRATCH/forged"
tar -xf "$SCRATCH/update.tar" -C "$SCRATCH/forged"
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$SCRATCH/forged.key" 2>/dev/null
openssl dgst -sha256 -sign "$SCRATCH/forged.key" -out "$SCRATCH/forged/manifest.sig" "$SCRATCH/forged/manifest"
tar -C "$SCRATCH/forged" -cf "$SCRATCH/forged.tar" manifest manifest.sig uki-a.efi uki-b.efi root.erofs
"$RUN" start forged --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/unit1.img" --update "$SCRATCH/forged.tar"
console=$EDGEPLANE_UNITS/forged/console.log
"$RUN" wait forged 'edgeplane-selftest: done' 600 >/dev/null || true
check "forged bundle refused for its signature" grep -qa 'refusing update: manifest signature does not verify' "$console"
check "after the forged bundle, only slot A has a boot entry" \
  grep -qa '^# image version: .*, boot entries: edgeplane-a.efi$' <(tr -d '\r' < "$console")
"$RUN" destroy forged

step "signed bundle: update to slot B, trial boots, rollback to slot A"
"$RUN" start ab --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/unit1.img" --update "$SCRATCH/update.tar"
console=$EDGEPLANE_UNITS/ab/console.log
"$RUN" wait ab 'slot b holds' 600 >/dev/null || true
check "slot A wrote the bundle into slot B" grep -qa "edgeplane-update: slot b holds $update_version" "$console"
"$RUN" wait ab 'mounting .*edgeplane-root-b' 420 >/dev/null || true
check "the next boot runs slot B (trial)" grep -qa 'mounting .*(edgeplane-root-b)' "$console"
# Three trial boots of B, then A: wait for a self-test that ran on slot A
# after B was tried.
if seconds=$("$RUN" wait ab 'boot entries: edgeplane-a.efi edgeplane-b\+0-3.efi' 1800); then
  echo "# rolled back ${seconds}s after QEMU start"
fi
# The update service also runs once the boot was assessed, possibly after the self-test.
"$RUN" wait ab "version $update_version was already applied" 300 >/dev/null || true
report_power_cycles ab
tr -d '\r' < "$console" > "$SCRATCH/console.txt"
trials=$(grep -c 'mounting .*(edgeplane-root-b)' "$SCRATCH/console.txt" || true)
check "slot B was tried 3 times (tried $trials)" test "$trials" = 3
check "each failed trial boot rebooted to spend a try" \
  test "$(grep -c 'appliance failed on a trial boot; rebooting' "$SCRATCH/console.txt" || true)" -ge 3
check "after the tries ran out, slot A booted again with B marked bad (edgeplane-b+0-3.efi)" \
  grep -q "^# image version: $base_version, boot entries: edgeplane-a.efi edgeplane-b+0-3.efi$" "$SCRATCH/console.txt"
check "slot A did not apply the same bundle again" grep -q "version $update_version was already applied" "$SCRATCH/console.txt"
"$RUN" destroy ab

step "healthy bundle: update to slot B, appliance ready there, boot blessed, reset stays on slot B"
"$RUN" start healthy --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/unit2.img" --update "$SCRATCH/healthy.tar"
"$RUN" wait healthy 'slot b holds' 900 >/dev/null || true
check "slot A wrote the healthy bundle into slot B" eval 'console_from 1 | grep "edgeplane-update: slot b holds $healthy_version" >/dev/null'
# 420 s: a reboot that hangs before init is reset by the armed watchdog (RebootWatchdogSec=3min).
b_mounted=$("$RUN" wait healthy 'mounting .*edgeplane-root-b' 420) || true
b_line=$(console_from 1 | grep -n -m 1 'mounting .*(edgeplane-root-b)' | cut -d: -f1 || true)
b_line=${b_line:-999999999}
check "the next boot runs slot B (trial, ${b_mounted:-?}s after QEMU start)" test "$b_line" != 999999999
report_watchdog_resets
# Boot counting gives slot B three trial boots: the update is good when one of them gets the
# appliance ready. A trial that failed is reported with what the appliance said on it.
# (awk reads to the end: an early-exiting reader would fail the pipe under pipefail.)
line_of_first() { console_from "$1" | awk -v re="$2" '$0 ~ re && !found { print NR; found = 1 }'; }
trial_outcome='Started edgeplane.service|appliance failed on a trial boot'
ready=""
if [[ $b_line != 999999999 ]]; then
  ready=$(wait_from "$b_line" "$trial_outcome" 900) || true
  while failed_trial=$(line_of_first "$b_line" "$trial_outcome") && [[ -n $failed_trial ]] &&
      console_from "$b_line" | sed -n "${failed_trial}p" | grep 'appliance failed on a trial boot' >/dev/null; do
    echo "# a trial boot of slot B failed; what the appliance said on it:"
    console_from "$b_line" | head -n "$failed_trial" | grep -aE 'edgeplane(\[|\.service|:)|refusing|Watchdog|rror' |
      tail -n 25 | sed 's/^/#   /' || true
    after=$((b_line + failed_trial))
    wait_from "$after" 'mounting .*edgeplane-root-b' 420 >/dev/null || break
    b_line=$((after + $(line_of_first "$after" 'mounting .*edgeplane-root-b') - 1))
    ready=$(wait_from "$b_line" "$trial_outcome" 900) || true
  done
fi
check "the appliance service became ready on a trial boot of slot B (${ready:-?}s after QEMU start)" \
  eval 'outcome=$(line_of_first "$b_line" "$trial_outcome") && [[ -n $outcome ]] &&
        console_from "$b_line" | sed -n "${outcome}p" | grep "Started edgeplane.service" >/dev/null'
[[ $b_line == 999999999 ]] || wait_from "$b_line" 'edgeplane-selftest: done' 300 >/dev/null || true
console_from "$b_line" | sed -n 's/^# \(image version: \)/# trial boot of slot B: \1/p'
check "slot B's self-test runs $healthy_version with 0 failed (appliance ready, boot-complete.target reached)" \
  eval 'console_from "$b_line" | grep "^# image version: $healthy_version, " >/dev/null &&
        console_from "$b_line" | grep "^edgeplane-selftest: done, 0 failed" >/dev/null'
# systemd-bless-boot renames the entry right after boot-complete.target, before the
# self-test; the ESP is vfat without sync: give writeback (dirty_expire 30 s) time
# before the hard reset.
sleep 35
reset_line=$(($(wc -l < "$EDGEPLANE_UNITS/healthy/console.log") + 1))
reset_at=$(since_start)
step "hard reset of the unit (QMP system_reset) ${reset_at}s after QEMU start"
printf '%s\n' '{"execute": "qmp_capabilities"}' '{"execute": "system_reset"}' |
  socat - "UNIX-CONNECT:$EDGEPLANE_UNITS/healthy/qmp.sock" >/dev/null
again=$(wait_from "$reset_line" 'Started edgeplane.service|Failed to start edgeplane.service|refusing to start' 900) || true
wait_from "$reset_line" 'edgeplane-selftest: done' 300 >/dev/null || true
check "after the reset slot B boots again (ready $(awk -v a="${again:-0}" -v r="$reset_at" 'BEGIN { printf "%.1f", a - r }')s after the reset)" \
  eval 'console_from "$reset_line" | grep "mounting .*(edgeplane-root-b)" >/dev/null &&
        ! console_from "$reset_line" | grep "mounting .*(edgeplane-root-a)" >/dev/null'
check "the boot was blessed: boot entries edgeplane-a.efi edgeplane-b.efi (counter dropped), running $healthy_version" \
  eval 'console_from "$reset_line" | grep "^# image version: $healthy_version, boot entries: edgeplane-a.efi edgeplane-b.efi$" >/dev/null'
check "after the reset the appliance is ready on slot B and its self-test passes" \
  eval 'console_from "$reset_line" | grep "Started edgeplane.service" >/dev/null &&
        console_from "$reset_line" | grep "^edgeplane-selftest: done, 0 failed" >/dev/null'
# What the appliance said about itself after the reset, when that check fails (the console log
# goes away with the unit).
if ! console_from "$reset_line" | grep "^edgeplane-selftest: done, 0 failed" >/dev/null; then
  console_from "$reset_line" | grep -aE '^not ok |^# |edgeplane.service|edgeplane-selftest: done' | tail -n 40 | sed 's/^/# after reset: /'
fi
wait_from "$reset_line" "version $healthy_version was already applied" 300 >/dev/null || true
check "the blessed slot B does not apply the same bundle again" \
  eval 'console_from "$reset_line" | grep "version $healthy_version was already applied" >/dev/null'
report_power_cycles healthy
echo "# healthy update: slot B mounted ${b_mounted:-?}s, ready on slot B ${ready:-?}s after QEMU start; after the reset ready again at ${again:-?}s"
"$RUN" destroy healthy

echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[[ $failed == 0 ]]
