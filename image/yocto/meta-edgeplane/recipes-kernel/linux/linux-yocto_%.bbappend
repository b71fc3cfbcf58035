FILESEXTRAPATHS:prepend := "${THISDIR}/linux-yocto:"

# The data plane needs vfio-pci (with no-IOMMU mode for QEMU guests without a vIOMMU)
# and hugetlbfs; virtio-net is what the data NICs are under QEMU; the root slots are erofs.
SRC_URI:append = " file://edgeplane-dataplane.cfg"
