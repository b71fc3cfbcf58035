#!/usr/bin/env bash
# Runs appliance units under QEMU (TCG) with OVMF Secure Boot and the Debian
# snakeoil test keys enrolled, inside a lab network namespace:
#
#   lab netns "$LAB":  bridge c <- tap of each unit's data NIC 0 -> veth -> netns $LAB-client
#                      bridge s <- tap of each unit's data NIC 1 -> veth -> netns $LAB-server
#                      bridge m <- tap of each unit's management NIC (cluster network)
#
# Data NICs are multi-queue virtio-net behind an emulated IOMMU (intel-iommu),
# because Debian's kernel has no VFIO no-IOMMU mode.
#
# Commands:
#   start NAME --image RAW [--flash-config IMG] [--update BUNDLE] [--vars FD] [--memory MiB]
#             [--rtc-base DATE]
#       boots unit NAME from a copy-on-write overlay of RAW (kept in the unit's
#       state dir, so A/B updates persist across reboots and restarts).
#       --update attaches an update bundle as a disk with serial
#       "edgeplane-update", which the appliance applies at boot.
#       --rtc-base sets the guest's clock (QEMU -rtc base=, e.g. 2030-01-01T00:00:00)
#       to show what the unit does when certificates are out of date.
#   wait NAME REGEX [TIMEOUT_S]   waits for REGEX on the unit's serial console,
#       prints seconds from QEMU start; exit 1 on timeout or QEMU exit.
#   running NAME                   exit 0 while the unit's QEMU runs (or is power-cycled).
#   stop NAME                      kills the unit's QEMU.
#   destroy NAME                   stop + remove its state (disk overlay, vars).
#   power-watch NAME               (started by start, in the background) the lab's
#       power switch: when a unit's console shows "reboot: Restarting system" and
#       its next boot does not reach the initrd within EDGEPLANE_POWER_WATCH_S
#       (default 240 s), QEMU is killed and started again on the same disk, vars
#       and console (appended). Warm resets under TCG with SMM now and then hang
#       in the firmware, where no watchdog runs; each power cycle is logged in
#       the unit's power-cycles.log.
#   lab-down                       removes the lab namespaces (after all units stop).
# Environment: EDGEPLANE_LAB (netns name, default edgeplane-lab),
#   EDGEPLANE_UNITS (state dirs, default /var/tmp/edgeplane-image/units),
#   EDGEPLANE_POWER_WATCH_S (see power-watch; 0 turns the power switch off).
set -euo pipefail
QEMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$QEMU_DIR/../lib/progress.sh"

LAB=${EDGEPLANE_LAB:-edgeplane-lab}
UNITS=${EDGEPLANE_UNITS:-/var/tmp/edgeplane-image/units}
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd

in_lab() { ip netns exec "$LAB" "$@"; }

lab_up() {
  ip netns list | grep -qw "^$LAB" && return 0
  ip netns add "$LAB"
  in_lab ip link set lo up
  local segment peer
  for segment in c s m; do
    in_lab ip link add "br$segment" type bridge
    in_lab ip link set "br$segment" up
  done
  for segment in client server; do
    peer=$LAB-$segment
    ip netns add "$peer"
    ip netns exec "$peer" ip link set lo up
    in_lab ip link add "v$segment" type veth peer name eth0 netns "$peer"
    in_lab ip link set "v$segment" master "br${segment:0:1}" up
    ip netns exec "$peer" ip link set eth0 up
  done
}

lab_down() {
  local ns
  for ns in "$LAB-client" "$LAB-server" "$LAB"; do
    ip netns list | grep -qw "^$ns" && ip netns del "$ns"
  done
  return 0
}

# A stable locally administered MAC per unit and NIC.
mac_for() { printf '52:54:%s:%02x' "$(printf '%s' "$1" | md5sum | sed 's/^\(..\)\(..\)\(..\).*/\1:\2:\3/')" "$2"; }

add_tap() {
  local tap=$1 bridge=$2; shift 2
  in_lab ip tuntap add dev "$tap" mode tap "$@"
  in_lab ip link set "$tap" master "$bridge" up
}

start_unit() {
  local name=$1; shift
  local image='' flash_config='' update='' vars=$OVMF_VARS memory=2048 rtc_base=utc
  while (($#)); do
    case $1 in
      --image) image=$2; shift 2 ;;
      --flash-config) flash_config=$2; shift 2 ;;
      --update) update=$2; shift 2 ;;
      --vars) vars=$2; shift 2 ;;
      --memory) memory=$2; shift 2 ;;
      --rtc-base) rtc_base=$2; shift 2 ;;
      *) die "start: unknown option $1" ;;
    esac
  done
  [[ -f $image || -f $UNITS/$name/disk.qcow2 ]] || die "start $name: --image RAW is required for a new unit"
  [[ -z $flash_config || -f $flash_config ]] || die "start $name: flash-config image $flash_config not found"
  [[ -f $OVMF_CODE ]] || die "OVMF Secure Boot firmware missing: apt-get install ovmf"
  local state=$UNITS/$name
  mkdir -p "$state"
  [[ ! -f $state/qemu.pid ]] || ! kill -0 "$(cat "$state/qemu.pid")" 2>/dev/null || die "unit $name is already running"
  if [[ ! -f $state/disk.qcow2 ]]; then
    qemu-img create -q -f qcow2 -F raw -b "$(realpath "$image")" "$state/disk.qcow2"
    cp "$vars" "$state/OVMF_VARS.fd"
  fi
  lab_up
  # Interface names are limited to 15 characters: a short per-unit id.
  local id
  id=$(printf '%s' "$name" | md5sum | cut -c1-6)
  local tap
  for tap in "m$id" "c$id" "s$id"; do
    in_lab ip link del "$tap" 2>/dev/null || true
  done
  add_tap "m$id" brm
  add_tap "c$id" brc multi_queue
  add_tap "s$id" brs multi_queue

  local extra_disks=()
  if [[ -n $flash_config ]]; then
    extra_disks=(-drive "if=none,id=flash,format=raw,readonly=on,file=$(realpath "$flash_config")"
                -device virtio-blk-pci,drive=flash,addr=0x5)
  fi
  if [[ -n $update ]]; then
    extra_disks+=(-drive "if=none,id=update,format=raw,readonly=on,file=$(realpath "$update")"
                 -device virtio-blk-pci,drive=update,serial=edgeplane-update,addr=0x8)
  fi
  local data_nic_options=mq=on,vectors=6,iommu_platform=on,disable-legacy=on,ats=on
  local qemu_args=(
    -name "edgeplane-$name" -nodefaults -display none -daemonize -pidfile "$state/qemu.pid"
    -machine q35,smm=on -accel tcg,thread=multi -cpu max -smp 2 -m "$memory" -rtc "base=$rtc_base"
    -global driver=cfi.pflash01,property=secure,value=on -global ICH9-LPC.disable_s3=1
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
    -drive "if=pflash,format=raw,unit=1,file=$state/OVMF_VARS.fd"
    -device intel-iommu,intremap=on,caching-mode=on,device-iotlb=on
    -drive "if=none,id=disk,format=qcow2,file=$state/disk.qcow2"
    -device virtio-blk-pci,drive=disk,bootindex=1,addr=0x4
    "${extra_disks[@]}"
    -netdev "tap,id=mgmt,ifname=m$id,script=no,downscript=no"
    -device "virtio-net-pci,netdev=mgmt,mac=$(mac_for "$name" 0),addr=0x3"
    -netdev "tap,id=data0,ifname=c$id,script=no,downscript=no,queues=2"
    -device "virtio-net-pci,netdev=data0,mac=$(mac_for "$name" 1),addr=0x6,$data_nic_options"
    -netdev "tap,id=data1,ifname=s$id,script=no,downscript=no,queues=2"
    -device "virtio-net-pci,netdev=data1,mac=$(mac_for "$name" 2),addr=0x7,$data_nic_options"
    -device i6300esb -action watchdog=reset
    # Appended, so a power cycle keeps one console for the unit's whole life.
    -chardev "file,id=console,path=$state/console.log,append=on" -serial chardev:console
    -qmp "unix:$state/qmp.sock,server=on,wait=off"
  )
  declare -p qemu_args > "$state/qemu.args"
  : > "$state/console.log"
  date +%s.%N > "$state/started"
  launch_qemu "$name"
  note "unit $name started (pid $(cat "$state/qemu.pid")), console $state/console.log"
  if ((${EDGEPLANE_POWER_WATCH_S:-240} > 0)); then
    # Detached from the caller's stdout, which a command substitution may be reading.
    setsid "${BASH_SOURCE[0]}" power-watch "$name" </dev/null >/dev/null 2>&1 &
    echo $! > "$state/power-watch.pid"
  fi
}

launch_qemu() {
  local state=$UNITS/$1
  local qemu_args
  source "$state/qemu.args"
  in_lab qemu-system-x86_64 "${qemu_args[@]}"
}

# Whether the console shows PATTERN from line FROM on. (Not tail | grep -q: under pipefail
# grep's early exit makes tail's SIGPIPE a "no".)
console_has_since() {
  awk -v from="$2" -v pattern="$3" 'NR >= from && index($0, pattern) { found = 1 } END { exit !found }' "$1"
}

# The line number of the console's last "Restarting system" whose boot has not
# reached the initrd yet, or nothing.
restart_in_progress() {
  local console=$1 last
  last=$(grep -an 'reboot: Restarting system' "$console" | tail -n 1 | cut -d: -f1)
  [[ -n $last ]] || return 0
  console_has_since "$console" "$last" 'edgeplane-initrd: mounting' || echo "$last"
}

power_watch() {
  local name=$1 limit=${EDGEPLANE_POWER_WATCH_S:-240}
  local state=$UNITS/$name
  local watched_line='' since=0 line pid stage
  while pid=$(cat "$state/qemu.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; do
    line=$(restart_in_progress "$state/console.log")
    if [[ -z $line ]]; then
      watched_line=''
    elif [[ $line != "$watched_line" ]]; then
      watched_line=$line since=$SECONDS
    elif ((SECONDS - since >= limit)); then
      stage='in the firmware'
      if console_has_since "$state/console.log" "$line" 'BdsDxe: starting'; then
        stage='between boot loader and initrd'
      fi
      echo "$(date -u +%FT%TZ) boot after console line $line hung $stage for ${limit}s: power cycle" \
        >> "$state/power-cycles.log"
      : > "$state/power-cycling"
      kill "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
      launch_qemu "$name"
      rm -f "$state/power-cycling"
      since=$SECONDS
    fi
    sleep 5
  done
}

# True while the unit's QEMU runs or the power switch is cycling it.
unit_running() {
  local state=$UNITS/$1
  [[ -f $state/power-cycling ]] || kill -0 "$(cat "$state/qemu.pid" 2>/dev/null)" 2>/dev/null
}

wait_unit() {
  local name=$1 pattern=$2 timeout=${3:-600}
  local state=$UNITS/$name
  local started
  started=$(cat "$state/started")
  local deadline=$((SECONDS + timeout))
  until grep -qaE "$pattern" "$state/console.log"; do
    if ! unit_running "$name"; then
      note "unit $name: QEMU exited before /$pattern/"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      note "unit $name: no /$pattern/ within ${timeout}s; last console lines:"
      tail -n 15 "$state/console.log" | tr -d '\r' | sed 's/^/      | /' >&2
      return 1
    fi
    sleep 1
  done
  local seconds
  seconds=$(awk -v t0="$started" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t0 }')
  note "unit $name: /$pattern/ after ${seconds}s from QEMU start"
  echo "$seconds"
}

stop_unit() {
  local state=$UNITS/$1
  if [[ -f $state/power-watch.pid ]]; then
    kill "$(cat "$state/power-watch.pid")" 2>/dev/null || true
    rm -f "$state/power-watch.pid"
  fi
  if [[ -f $state/qemu.pid ]]; then
    local pid
    pid=$(cat "$state/qemu.pid")
    if kill "$pid" 2>/dev/null; then
      while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    rm -f "$state/qemu.pid"
  fi
  local id tap
  id=$(printf '%s' "$1" | md5sum | cut -c1-6)
  for tap in "m$id" "c$id" "s$id"; do
    in_lab ip link del "$tap" 2>/dev/null || true
  done
}

command=${1:-}
shift || true
case $command in
  start) start_unit "$@" ;;
  wait) wait_unit "$@" ;;
  stop) stop_unit "$1" ;;
  power-watch) power_watch "$1" ;;
  running) unit_running "$1" ;;
  destroy) stop_unit "$1"; rm -rf "${UNITS:?}/$1" ;;
  lab-down) lab_down ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
