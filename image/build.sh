#!/usr/bin/env bash
# Builds the edgeplane firmware image: a GPT disk with an ESP (systemd-boot and
# one signed UKI per slot), read-only erofs root slots A and B, an empty
# flash-config partition and a data partition. Everything comes from Debian
# trixie packages (mmdebstrap) and the npm registry; the native addon is
# compiled inside the trixie build root against its DPDK.
#
# Usage: image/build.sh [--without-app] [OUT_DIR]   (default /var/tmp/edgeplane-image/out)
#   --without-app  boot-chain-only image with no control application or addon
#                  (the appliance service then fails and says so); for working
#                  on the image while the application cannot be built.
# Environment:
#   EDGEPLANE_SB_KEY / EDGEPLANE_SB_CERT / EDGEPLANE_SB_KEY_PASS
#       Secure Boot signing key (default: Debian's OVMF snakeoil test key).
#   EDGEPLANE_UPDATE_KEY      private key signing update bundles; its public half
#       goes into the image (default: a development key, see lib/update-key.sh).
#   EDGEPLANE_IMAGE_VERSION   version stamped into the UKIs; systemd-boot boots
#       the highest one first, so it must grow (default: commit time + hash).
#   EDGEPLANE_MIRROR          Debian mirror (default http://deb.debian.org/debian).
set -euo pipefail

IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$IMAGE_DIR/.." && pwd)
# shellcheck source=lib/progress.sh
source "$IMAGE_DIR/lib/progress.sh"
source "$IMAGE_DIR/lib/buildroot.sh"
source "$IMAGE_DIR/lib/update-key.sh"

WITH_APP=yes
if [[ ${1:-} == --without-app ]]; then WITH_APP=no; shift; fi
OUT=${1:-/var/tmp/edgeplane-image/out}
CACHE=/var/tmp/edgeplane-image/cache
WORK=$OUT/work
MIRROR=${EDGEPLANE_MIRROR:-http://deb.debian.org/debian}
SB_KEY=${EDGEPLANE_SB_KEY:-/usr/share/ovmf/PkKek-1-snakeoil.key}
SB_CERT=${EDGEPLANE_SB_CERT:-/usr/share/ovmf/PkKek-1-snakeoil.pem}
SB_KEY_PASS=${EDGEPLANE_SB_KEY_PASS-snakeoil}
VERSION=${EDGEPLANE_IMAGE_VERSION:-$(git -C "$REPO" log -1 --format=%cd-g%h --date=format:%Y%m%d.%H%M%S)}

[[ $(id -u) == 0 ]] || die "must run as root (mmdebstrap --mode=root, chroot)"
for tool in mmdebstrap npm openssl; do
  command -v "$tool" >/dev/null || die "missing host tool '$tool' (apt-get install mmdebstrap nodejs openssl)"
done
[[ -r $SB_KEY && -r $SB_CERT ]] || die "Secure Boot key/cert not readable: $SB_KEY $SB_CERT (apt-get install ovmf for the test key)"

step "edgeplane image $VERSION -> $OUT"
rm -rf "$WORK"
mkdir -p "$WORK" "$CACHE"

step "1/8 build root (trixie, cached by package list)"
BUILDROOT=$(ensure_buildroot "$CACHE" "$IMAGE_DIR/packages/buildroot.list" "$MIRROR")
KVER=$(basename "$(ls -d "$BUILDROOT"/lib/modules/*)")
note "kernel $KVER, DPDK $(chroot "$BUILDROOT" pkg-config --modversion libdpdk), node $(chroot "$BUILDROOT" node --version)"

step "2/8 control application and native addon"
APP=$WORK/app
if [[ $WITH_APP == yes ]]; then
  "$IMAGE_DIR/lib/build-app.sh" "$REPO" "$APP" "$BUILDROOT"
else
  note "--without-app: no control application in this image"
  mkdir -p "$APP"
fi
report_size "$APP"

step "3/8 root filesystem (trixie minbase)"
ROOTFS=$WORK/rootfs
mapfile -t rootfs_packages < <(grep -v '^\s*\(#\|$\)' "$IMAGE_DIR/packages/rootfs.list")
mapfile -t addon_packages < <(addon_runtime_packages "$BUILDROOT" "$APP")
note "DPDK libraries the addon links: ${addon_packages[*]:-(no addon)}"
include=$(IFS=,; echo "${rootfs_packages[*]}${addon_packages:+,${addon_packages[*]}}")
mmdebstrap --variant=minbase --mode=root --quiet \
  --include="$include" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='chroot "$1" dpkg-query -W > "$1/.manifest"' \
  trixie "$ROOTFS" "$MIRROR"
mv "$ROOTFS/.manifest" "$WORK/rootfs.manifest"
install_appliance "$IMAGE_DIR" "$ROOTFS" "$APP" "$BUILDROOT" "$KVER" "$VERSION"
openssl pkey -in "$(update_signing_key)" -pubout -out "$ROOTFS/usr/lib/edgeplane/update-key.pem"
report_size "$ROOTFS"

step "4/8 erofs root image"
chroot_run "$BUILDROOT" "$WORK" mkfs.erofs --quiet -zlz4hc -T0 --all-root /work/root.erofs /work/rootfs
report_size "$WORK/root.erofs"
(( $(stat -c %s "$WORK/root.erofs") < 384 * 1024 * 1024 )) || die "root.erofs does not fit the 384 MiB slot"

step "5/8 initrd (busybox + virtio/erofs modules)"
build_initrd "$IMAGE_DIR" "$BUILDROOT" "$KVER" "$WORK/initrd.cpio.gz"
report_size "$WORK/initrd.cpio.gz"

step "6/8 signed UKIs and systemd-boot"
openssl pkey -in "$SB_KEY" -passin "pass:$SB_KEY_PASS" -out "$WORK/sb.key"
cp "$SB_CERT" "$WORK/sb.crt"
build_esp "$BUILDROOT" "$WORK" "$KVER" "$VERSION"
rm -f "$WORK/sb.key"
report_size "$WORK/esp"

step "7/8 GPT disk image (systemd-repart)"
rm -f "$WORK/edgeplane.raw"
# The same version yields the same partition and filesystem UUIDs.
seed=$(printf 'edgeplane-%s' "$VERSION" | sha256sum)
seed=${seed:0:8}-${seed:8:4}-${seed:12:4}-${seed:16:4}-${seed:20:12}
cp -r "$IMAGE_DIR/repart.d" "$WORK/repart.d"
chroot_run "$BUILDROOT" "$WORK" systemd-repart --offline=yes --empty=create --size=auto --sector-size=512 \
  --definitions=/work/repart.d --seed="$seed" --no-pager /work/edgeplane.raw \
  > "$WORK/repart.log" 2>&1 || { cat "$WORK/repart.log" >&2; die "systemd-repart failed"; }
chroot_run "$BUILDROOT" "$WORK" sfdisk --dump /work/edgeplane.raw | sed -n 's/^\/work\///p' | while read -r line; do note "$line"; done

step "8/8 outputs and manifest"
mv "$WORK/edgeplane.raw" "$OUT/edgeplane.raw"
cp "$WORK/root.erofs" "$OUT/root.erofs"
rm -rf "$OUT/uki" && cp -r "$WORK/uki" "$OUT/uki"
write_manifest "$OUT/edgeplane.manifest" "$VERSION" "$BUILDROOT" "$WORK/rootfs.manifest" "$OUT"
report_size "$OUT/edgeplane.raw"
note "manifest: $OUT/edgeplane.manifest"
step "done"
