SUMMARY = "edgeplane appliance system files: systemd units, their helper scripts, fstab"
DESCRIPTION = "The repository's image/rootfs tree, the same files the Debian image \
overlays: hugepages, vfio-pci binding, the appliance service with its boot-failure \
and self-test companions, journald/system manager settings and the mount table."

require recipes-edgeplane/edgeplane-source.inc

inherit systemd allarch

# The units with an [Install] section; edgeplane-boot-failed.service is only started
# through the appliance service's OnFailure=.
SYSTEMD_SERVICE:${PN} = "edgeplane.service edgeplane-hugepages.service \
                         edgeplane-vfio-bind.service edgeplane-management-network.service \
                         edgeplane-selftest.service"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    cp -R --no-preserve=ownership ${S}/image/rootfs/. ${D}/
}

FILES:${PN} = "${sysconfdir}/fstab ${sysconfdir}/systemd ${nonarch_libdir}/edgeplane"
# bash: selftest; kmod: modprobe vfio-pci; findmnt and mountpoint: the root and
# flash-config checks.
RDEPENDS:${PN} = "bash kmod util-linux-findmnt util-linux-mountpoint"
