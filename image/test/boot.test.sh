#!/usr/bin/env bash
# Boots the built image under QEMU (TCG, OVMF Secure Boot with the snakeoil
# test keys) and reports TAP:
#   - a unit with a freshly provisioned flash config boots; the image's own
#     power-on self-test (secure boot, lockdown, read-only root, vfio-bound data
#     NICs, flash config, appliance ready, ...) is re-emitted check by check;
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
BOOT_FAILURE='Security Violation|Access Denied|No bootable option|Kernel panic|edgeplane-initrd: .*rebooting'

cleanup() {
  "$RUN" destroy good >/dev/null 2>&1 || true
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

step "provisioning a flash config with the flash-config tool"
(cd "$REPO" &&
  npx tsx flash-config/cli.ts authority init --out "$SCRATCH/authority" --cluster boottest &&
  npx tsx flash-config/cli.ts unit create --authority "$SCRATCH/authority" --unit-id unit1 \
    --mgmt-addr 192.0.2.11 --data-addr 198.51.100.11 --policy "$TEST_DIR/fixtures/policy.json" \
    --out "$SCRATCH/unit1" --image "$SCRATCH/unit1.img") >&2

step "boot: signed image, Secure Boot on"
"$RUN" destroy good >/dev/null 2>&1 || true
"$RUN" start good --image "$OUT/edgeplane.raw" --flash-config "$SCRATCH/unit1.img"
console=$EDGEPLANE_UNITS/good/console.log
settled=$("$RUN" wait good "Started edgeplane.service|Failed to start edgeplane.service|$BOOT_FAILURE" 600 || true)
if grep -qa 'Started edgeplane.service' "$console"; then
  echo "# appliance service ready ${settled}s after QEMU start"
else
  echo "# appliance service did not become ready (settled after ${settled:-?}s)"
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
"$RUN" stop good

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
