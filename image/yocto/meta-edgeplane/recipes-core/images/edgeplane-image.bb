SUMMARY = "edgeplane appliance image: DPDK data plane + Node.js control application"
DESCRIPTION = "A GPT disk (wic/edgeplane.wks) with systemd-boot and a Unified Kernel \
Image on the ESP, two read-only erofs root slots, an unformatted flash-config partition \
and a data partition: the layout of the Debian-built image (image/repart.d)."
LICENSE = "MIT"

inherit core-image uki

IMAGE_INSTALL = "\
    packagegroup-core-boot \
    nodejs \
    dpdk \
    kernel-module-vfio-pci \
    edgeplane-control \
    edgeplane-dataplane \
    edgeplane-rootfs-overlay \
"
# The root slots are erofs: immutable, and an update replaces a whole slot.
IMAGE_FEATURES += "read-only-rootfs"

IMAGE_FSTYPES = "wic"
WKS_FILE = "edgeplane.wks"

# The UKI carries kernel, initramfs and command line as one signed unit, and boots
# slot A. The initramfs mounts the root by GPT partition name.
INITRAMFS_IMAGE = "core-image-minimal-initramfs"
UKI_CMDLINE = "root=PARTLABEL=edgeplane-root-a rootfstype=erofs ro rootwait console=ttyS0,115200 console=tty0"

# runqemu: the kernel and its command line are inside the UKI, booted by OVMF.
QB_DEFAULT_FSTYPE = "wic"
QB_DEFAULT_KERNEL = "none"
QB_KERNEL_ROOT = ""
