#!/usr/bin/env bash
# Installs what the main job and the tests need, idempotently: Debian packages, npm dependencies,
# the native addon and the compiled TypeScript. Safe to run again; does nothing when all is current.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "setup needs root (apt, network namespaces, DPDK)" >&2; exit 1; }

packages=(
  dpdk dpdk-dev pkg-config build-essential python3 # the data plane and its build
  iproute2 ethtool iputils-ping curl nginx-light wrk # namespace topologies and their peers
  python3-scapy tcpdump                              # pcap replay tests
  clang libclang-rt-14-dev valgrind                  # sanitizers and fuzzing of the C parsers
  dosfstools mtools e2fsprogs                        # flash-config partition images
  chromium                                           # dashboard tests (playwright-core drives /usr/bin/chromium)
  bird2                                              # BGP speaker and peer of the SMFA advertise test
  mmdebstrap qemu-system-x86 qemu-utils ovmf sbsigntool fdisk openssl cpio xz-utils socat # image build + QEMU boot tests (image/)
)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  flock /tmp/apt.lock sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${missing[*]}"
fi

# A lockfile newer than the installed tree means the dependencies changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies from package-lock.json"
  flock /tmp/npm.lock bash scripts/npm-install-locked.sh
fi

stale() { # stale TARGET DIR...: TARGET is missing or older than a source file under DIR...
  [ ! -f "$1" ] && return 0
  local target=$1; shift
  [ -n "$(find "$@" \( -name '*.c' -o -name '*.cc' -o -name '*.h' -o -name '*.gyp' -o -name '*.ts' \) -newer "$target" -print -quit)" ]
}
if stale firmware/native/build/Release/edgeplane.node firmware/native/src firmware/native/include firmware/native/binding.gyp; then
  echo "setup: building the native addon"
  npm run --silent build:native >/dev/null
fi
if stale dist/app/control/main.js app firmware flash-config; then
  echo "setup: compiling TypeScript"
  npm run --silent build:ts
fi
