#!/usr/bin/env bash
# A/B update under QEMU (TCG, Secure Boot), all in one QEMU process that the
# appliance reboots itself:
#   boot 1  slot A applies a signed bundle from the "edgeplane-update" disk
#           into slot B, installs edgeplane-b+3-0.efi, reboots;
#   boot 2+ systemd-boot tries slot B; the appliance there does not get
#           ready, so each trial boot reboots and spends a try;
#   last    tries exhausted (edgeplane-b+0-3.efi): slot A boots again.
# Also: a bundle signed with another key is refused and nothing is switched.
# The update image is built --without-app, so its appliance can never get ready.
# Usage: image/test/update.test.sh [IMAGE_DIR]   (IMAGE_DIR as for boot.test.sh)
set -euo pipefail
TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE_SRC=$(cd "$TEST_DIR/.." && pwd)
REPO=$(cd "$IMAGE_SRC/.." && pwd)
source "$IMAGE_SRC/lib/progress.sh"
RUN=$IMAGE_SRC/qemu/run-unit.sh

OUT=${1:-/var/tmp/edgeplane-image/out}
UPDATE_OUT=/var/tmp/edgeplane-image/out-update-test
export EDGEPLANE_LAB=edgeplane-updatetest
export EDGEPLANE_UNITS=/var/tmp/edgeplane-image/updatetest
SCRATCH=$(mktemp -d /var/tmp/edgeplane-updatetest.XXXXXX)

cleanup() {
  "$RUN" destroy ab >/dev/null 2>&1 || true
  "$RUN" destroy forged >/dev/null 2>&1 || true
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

echo "TAP version 14"
[[ -f $OUT/edgeplane.raw ]] || die "no image in $OUT: run image/build.sh first"
base_version=$(sed -n '1s/^# edgeplane image \([^ ]*\),.*/\1/p' "$OUT/edgeplane.manifest")
update_version="$base_version.update"
step "building the update image ($update_version, without application)"
EDGEPLANE_IMAGE_VERSION=$update_version "$IMAGE_SRC/build.sh" --without-app "$UPDATE_OUT" >&2
"$IMAGE_SRC/update/make-bundle.sh" "$UPDATE_OUT" "$SCRATCH/update.tar"

step "provisioning a flash config"
(cd "$REPO" &&
  npx tsx flash-config/cli.ts authority init --out "$SCRATCH/authority" --cluster updatetest &&
  npx tsx flash-config/cli.ts unit create --authority "$SCRATCH/authority" --unit-id unit1 \
    --mgmt-addr 192.0.2.11 --data-addr 198.51.100.11 --policy "$TEST_DIR/fixtures/policy.json" \
    --out "$SCRATCH/unit1" --image "$SCRATCH/unit1.img") >&2 2>/dev/null

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
"$RUN" wait ab 'mounting .*edgeplane-root-b' 300 >/dev/null || true
check "the next boot runs slot B (trial)" grep -qa 'mounting .*(edgeplane-root-b)' "$console"
# Three trial boots of B, then A: wait for a self-test that ran on slot A
# after B was tried.
if seconds=$("$RUN" wait ab 'boot entries: edgeplane-a.efi edgeplane-b\+0-3.efi' 1500); then
  echo "# rolled back ${seconds}s after QEMU start"
fi
# The update service also runs once the boot was assessed, possibly after the self-test.
"$RUN" wait ab "version $update_version was already applied" 300 >/dev/null || true
tr -d '\r' < "$console" > "$SCRATCH/console.txt"
trials=$(grep -c 'mounting .*(edgeplane-root-b)' "$SCRATCH/console.txt" || true)
check "slot B was tried 3 times (tried $trials)" test "$trials" = 3
check "each failed trial boot rebooted to spend a try" \
  test "$(grep -c 'appliance failed on a trial boot; rebooting' "$SCRATCH/console.txt" || true)" -ge 3
check "after the tries ran out, slot A booted again with B marked bad (edgeplane-b+0-3.efi)" \
  grep -q "^# image version: $base_version, boot entries: edgeplane-a.efi edgeplane-b+0-3.efi$" "$SCRATCH/console.txt"
check "slot A did not apply the same bundle again" grep -q "version $update_version was already applied" "$SCRATCH/console.txt"
"$RUN" destroy ab

echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[[ $failed == 0 ]]
