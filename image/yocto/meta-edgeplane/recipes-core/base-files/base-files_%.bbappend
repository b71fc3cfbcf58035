# Under the edgeplane distro /etc/fstab is the appliance's own (read-only root, volatile
# /var, data and flash-config partitions by label), shipped by edgeplane-rootfs-overlay
# from image/rootfs so the Yocto and Debian images mount the same things.
do_install:append:edgeplane() {
    rm ${D}${sysconfdir}/fstab
}
CONFFILES:${PN}:remove:edgeplane = "${sysconfdir}/fstab"
