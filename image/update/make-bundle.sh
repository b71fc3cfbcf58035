#!/usr/bin/env bash
# Packs a built image's slot contents into a signed update bundle:
#   manifest       version and sha256 of every payload file
#   manifest.sig   ECDSA P-256/SHA-256 signature of manifest by the update key
#   uki-a.efi, uki-b.efi   Secure Boot signed UKIs booting slot A or B
#   root.erofs     the read-only root filesystem (last: streamed into the slot)
# The bundle is a plain tar so the appliance can stream it from a file or a
# raw block device (a USB stick or, under QEMU, a virtio disk).
# Usage: image/update/make-bundle.sh IMAGE_OUT_DIR BUNDLE.tar
set -euo pipefail
IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$IMAGE_DIR/lib/progress.sh"
source "$IMAGE_DIR/lib/update-key.sh"

out=${1:?usage: make-bundle.sh IMAGE_OUT_DIR BUNDLE.tar}
bundle=${2:?usage: make-bundle.sh IMAGE_OUT_DIR BUNDLE.tar}
for file in root.erofs uki/edgeplane-a.efi uki/edgeplane-b.efi edgeplane.manifest; do
  [[ -f $out/$file ]] || die "$out/$file missing: build the image first (image/build.sh $out)"
done
key=$(update_signing_key)
version=$(sed -n '1s/^# edgeplane image \([^ ]*\),.*/\1/p' "$out/edgeplane.manifest")
[[ -n $version ]] || die "cannot read the image version from $out/edgeplane.manifest"

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
cp "$out/uki/edgeplane-a.efi" "$staging/uki-a.efi"
cp "$out/uki/edgeplane-b.efi" "$staging/uki-b.efi"
ln -s "$(realpath "$out/root.erofs")" "$staging/root.erofs"
{
  echo "version $version"
  echo "root-size $(stat -c %s "$out/root.erofs")"
  (cd "$staging" && sha256sum -b uki-a.efi uki-b.efi && sha256sum -b "$(realpath root.erofs)" | sed 's| \*/.*| *root.erofs|')
} > "$staging/manifest"
openssl dgst -sha256 -sign "$key" -out "$staging/manifest.sig" "$staging/manifest"
tar -C "$staging" --dereference --owner=0 --group=0 -cf "$bundle" manifest manifest.sig uki-a.efi uki-b.efi root.erofs
note "bundle $bundle: version $version, $(human_size "$(stat -c %s "$bundle")"), signed by $key"
