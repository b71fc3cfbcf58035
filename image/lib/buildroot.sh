# Build steps that run inside the Debian trixie build root, so the image is
# made with trixie's systemd (ukify, repart), DPDK, kernel and signing tools
# whatever the host runs.

# Runs a command in the build root with $2 bind-mounted at /work.
chroot_run() {
  local root=$1 work=$2; shift 2
  mkdir -p "$root/work"
  mount --bind "$work" "$root/work"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
  local rc=0
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@" || rc=$?
  umount -R "$root/dev"
  umount "$root/proc"
  umount "$root/work"
  return "$rc"
}

# Prints the build root's path, creating it when the package list changed.
ensure_buildroot() {
  local cache=$1 list=$2 mirror=$3
  local key root
  key=$(grep -v '^\s*\(#\|$\)' "$list" | sort | sha256sum | cut -c1-16)
  root=$cache/buildroot-$key
  if [[ -f $root/.complete ]]; then
    note "reusing $root (built $(date -r "$root/.complete" '+%F %T'))" >&2
  else
    rm -rf "$root" "$root.partial"
    note "mmdebstrap trixie into $root (about 90 s)" >&2
    mmdebstrap --variant=minbase --mode=root --quiet \
      --include="$(grep -v '^\s*\(#\|$\)' "$list" | paste -sd,)" \
      trixie "$root.partial" "$mirror" >&2
    mv "$root.partial" "$root"
    touch "$root/.complete"
  fi
  echo "$root"
}

# Debian packages providing the shared libraries the addon links against,
# so the rootfs gets exactly those DPDK runtime libraries.
addon_runtime_packages() {
  local root=$1 app=$2
  local addon=$app/firmware/native/build/Release
  compgen -G "$addon/*.node" >/dev/null || return 0
  cp "$addon"/*.node "$root/tmp/"
  chroot "$root" sh -c 'ldd /tmp/*.node' | awk '/=> \// { print $3 }' | sort -u |
    while read -r lib; do chroot "$root" dpkg -S "$(chroot "$root" readlink -f "$lib")" 2>/dev/null; done |
    cut -d: -f1 | sort -u | grep '^librte'
  rm -f "$root"/tmp/*.node
}

# Kernel modules the running appliance may load; everything else is left out
# of the rootfs (the full module tree is ~100 MiB).
APPLIANCE_MODULES=(virtio_blk virtio_net vfio-pci erofs ext4 vfat nls_cp437 nls_ascii nls_utf8 nls_iso8859-1 i6300esb efivarfs)
INITRD_MODULES=(virtio_blk erofs)

# Prints a module and its dependencies, dependencies first, as paths
# relative to /lib/modules/KVER (built-in modules print nothing).
module_closure() {
  local root=$1 kver=$2; shift 2
  local module
  for module in "$@"; do
    chroot "$root" modprobe --show-depends --set-version="$kver" "$module" |
      awk '$1 == "insmod" { print $2 }' | sed "s|^/lib/modules/$kver/||; s|^/usr/lib/modules/$kver/||"
  done | awk '!seen[$0]++'
}

install_appliance() {
  local image_dir=$1 rootfs=$2 app=$3 buildroot=$4 kver=$5 version=$6
  note "overlay: units, scripts, fstab" >&2
  cp -a "$image_dir/rootfs/." "$rootfs/"
  mkdir -p "$rootfs/flash-config" "$rootfs/efi" "$rootfs/opt"
  cp -a "$app" "$rootfs/opt/edgeplane"
  echo edgeplane > "$rootfs/etc/hostname"
  : > "$rootfs/etc/machine-id"
  cat >> "$rootfs/etc/os-release.edgeplane" <<EOF
IMAGE_ID=edgeplane
IMAGE_VERSION=$version
EOF
  cat "$rootfs/usr/lib/os-release" "$rootfs/etc/os-release.edgeplane" > "$rootfs/usr/lib/os-release.new"
  mv "$rootfs/usr/lib/os-release.new" "$rootfs/usr/lib/os-release"
  rm "$rootfs/etc/os-release.edgeplane"

  note "kernel modules: ${APPLIANCE_MODULES[*]} and dependencies" >&2
  local module
  while read -r module; do
    install -D -m 0644 "$buildroot/lib/modules/$kver/$module" "$rootfs/lib/modules/$kver/$module"
  done < <(module_closure "$buildroot" "$kver" "${APPLIANCE_MODULES[@]}")
  cp "$buildroot/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$rootfs/lib/modules/$kver/"
  chroot_run "$rootfs" "$rootfs/tmp" depmod "$kver"

  chroot_run "$rootfs" "$rootfs/tmp" systemctl enable --quiet edgeplane.service edgeplane-hugepages.service \
    edgeplane-vfio-bind.service edgeplane-management-network.service edgeplane-selftest.service systemd-networkd.service
  # Nobody logs in on the console; the selftest and journal own it.
  chroot_run "$rootfs" "$rootfs/tmp" systemctl mask --quiet serial-getty@ttyS0.service getty@tty1.service
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
}

build_initrd() {
  local image_dir=$1 buildroot=$2 kver=$3 output=$4
  local tree
  tree=$(mktemp -d)
  mkdir -p "$tree"/{bin,dev,proc,sys,lib/modules}
  cp "$buildroot/usr/bin/busybox" "$tree/bin/busybox"
  cp "$image_dir/initrd/init" "$tree/init"
  local module
  while read -r module; do
    # busybox insmod cannot read xz-compressed modules; the signature sits
    # inside the compressed payload, so decompressing keeps it valid.
    xz -dc "$buildroot/lib/modules/$kver/$module" > "$tree/lib/modules/$(basename "$module" .xz)"
    basename "$module" .xz >> "$tree/lib/modules/load-order"
  done < <(module_closure "$buildroot" "$kver" "${INITRD_MODULES[@]}")
  note "initrd modules: $(paste -sd' ' "$tree/lib/modules/load-order")" >&2
  (cd "$tree" && find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible | gzip -9n) > "$output"
  rm -rf "$tree"
}

# Slot UKIs (kernel + initrd + command line naming the slot's root) signed
# for Secure Boot, and an ESP tree with signed systemd-boot and slot A's UKI.
build_esp() {
  local buildroot=$1 work=$2 kver=$3 version=$4
  cp "$buildroot/boot/vmlinuz-$kver" "$work/vmlinuz"
  mkdir -p "$work/uki" "$work/esp/EFI/BOOT" "$work/esp/EFI/systemd" "$work/esp/EFI/Linux" "$work/esp/loader"
  local slot
  for slot in a b; do
    chroot_run "$buildroot" "$work" ukify build --no-sign-kernel \
      --linux=/work/vmlinuz --initrd=/work/initrd.cpio.gz \
      --os-release=@/work/rootfs/usr/lib/os-release \
      --cmdline="root=PARTLABEL=edgeplane-root-$slot edgeplane.slot=$slot ro console=ttyS0,115200 intel_iommu=on iommu=pt loglevel=4 panic=5 no_timer_check systemd.show_status=error" \
      --uname="$kver" --output="/work/uki/edgeplane-$slot.unsigned.efi" >/dev/null 2>&1 \
      || die "ukify failed for slot $slot"
    chroot_run "$buildroot" "$work" sbsign --key /work/sb.key --cert /work/sb.crt \
      --output "/work/uki/edgeplane-$slot.efi" "/work/uki/edgeplane-$slot.unsigned.efi" 2>/dev/null
    rm "$work/uki/edgeplane-$slot.unsigned.efi"
    note "uki/edgeplane-$slot.efi: $(human_size "$(stat -c %s "$work/uki/edgeplane-$slot.efi")"), signed by $(openssl x509 -in "$work/sb.crt" -noout -subject)" >&2
  done
  chroot_run "$buildroot" "$work" sbsign --key /work/sb.key --cert /work/sb.crt \
    --output /work/esp/EFI/systemd/systemd-bootx64.efi /usr/lib/systemd/boot/efi/systemd-bootx64.efi 2>/dev/null
  cp "$work/esp/EFI/systemd/systemd-bootx64.efi" "$work/esp/EFI/BOOT/BOOTX64.EFI"
  cp "$work/uki/edgeplane-a.efi" "$work/esp/EFI/Linux/edgeplane-a.efi"
  cat > "$work/esp/loader/loader.conf" <<'EOF'
timeout 0
editor no
console-mode keep
EOF
}

write_manifest() {
  local manifest=$1 version=$2 buildroot=$3 rootfs_manifest=$4 out=$5
  {
    echo "# edgeplane image $version, built $(date -u +%FT%TZ)"
    echo "# sha256 of outputs"
    (cd "$out" && sha256sum root.erofs uki/*.efi)
    echo "# rootfs packages (dpkg-query -W)"
    cat "$rootfs_manifest"
    echo "# build root packages (dpkg-query -W)"
    chroot "$buildroot" dpkg-query -W
  } > "$manifest"
}
