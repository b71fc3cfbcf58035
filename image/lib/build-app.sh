#!/usr/bin/env bash
# Stages the control application for the rootfs: copies the repository's
# sources, installs dependencies from the lockfile, compiles the native addon
# and the TypeScript inside the trixie build root (its node, its DPDK), then
# drops dev dependencies and sources.
# Usage: build-app.sh REPO STAGING_DIR BUILDROOT
set -euo pipefail
IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$IMAGE_DIR/lib/progress.sh"
source "$IMAGE_DIR/lib/buildroot.sh"

repo=$1 app=$2 buildroot=$3

rm -rf "$app"
mkdir -p "$app"
for path in package.json package-lock.json tsconfig.json firmware app flash-config; do
  [[ -e $repo/$path ]] || die "repository has no $path"
  cp -a "$repo/$path" "$app/"
done
rm -rf "$app/firmware/native/build" "$app/firmware/native/test/build"

note "npm dependencies at the lockfile's versions (no install scripts)"
(cd "$app" && flock /tmp/npm.lock bash "$repo/scripts/npm-install-locked.sh" --ignore-scripts)

if [[ -f $app/firmware/native/binding.gyp ]]; then
  note "node-gyp rebuild in the build root (trixie node headers, pkg-config libdpdk)"
  chroot_run "$buildroot" "$app" sh -c \
    'cd /work/firmware/native && node /work/node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir=/usr --jobs=2 --loglevel=warn' \
    || die "native addon failed to compile against trixie's DPDK"
  compgen -G "$app/firmware/native/build/Release/*.node" >/dev/null || die "node-gyp produced no .node file"
  note "addon: $(cd "$app/firmware/native/build/Release" && ls -1 ./*.node | paste -sd' ')"
else
  die "firmware/native/binding.gyp is missing: the image needs the native addon"
fi

note "tsc in the build root"
chroot_run "$buildroot" "$app" sh -c 'cd /work && node node_modules/typescript/bin/tsc -p tsconfig.json' \
  || die "TypeScript compilation failed"
[[ -f $app/dist/app/control/main.js ]] || die "tsc did not produce dist/app/control/main.js (the appliance entry point)"
# The management API serves the dashboard's static files, which tsc does not copy.
cp -a "$app/app/dashboard" "$app/dist/app/dashboard"

note "npm prune --omit=dev; dropping sources and build intermediates"
(cd "$app" && npm prune --omit=dev --no-audit --no-fund --loglevel=error)
find "$app/dist" -name '*.map' -delete
mkdir -p "$app/addon"
mv "$app"/firmware/native/build/Release/*.node "$app/addon/"
rm -rf "$app/firmware" "$app/app" "$app/flash-config" "$app/tsconfig.json"
mkdir -p "$app/firmware/native/build/Release"
mv "$app"/addon/*.node "$app/firmware/native/build/Release/"
rmdir "$app/addon"
