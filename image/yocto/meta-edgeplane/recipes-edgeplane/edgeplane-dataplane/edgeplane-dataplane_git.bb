SUMMARY = "edgeplane data plane: the DPDK N-API addon loaded by the control application"
DESCRIPTION = "firmware/native built by node-gyp against this layer's DPDK, installed \
where dist/firmware/dataplane.js looks for it."

require recipes-edgeplane/edgeplane-source.inc

# binding.gyp takes its compiler and linker flags from pkg-config libdpdk; the pkgconfig
# class points pkg-config at the target sysroot, so they are the target DPDK's.
DEPENDS = "dpdk nodejs-native"
inherit pkgconfig

# x86-64 only, like the DPDK bbappend; node-gyp is told so with --arch=x64 below.
COMPATIBLE_HOST = "x86_64.*-linux"

EDGEPLANE_ADDON = "firmware/native/build/Release/edgeplane.node"

# node-gyp and node-addon-api (which binding.gyp includes) are devDependencies pinned
# by package-lock.json; npm ci fetches them from the registry, hence the network for
# this task (the trade-off is the one explained in edgeplane-control).
do_compile[network] = "1"
do_configure[noexec] = "1"

do_compile() {
    cd ${S}
    export npm_config_cache="${WORKDIR}/npm-cache"
    npm ci --ignore-scripts --no-audit --no-fund
    # gyp's make generator takes CC, CXX, CFLAGS and LDFLAGS (the cross toolchain's)
    # from the environment. The N-API headers come from nodejs-native (as oe-core's npm
    # class does): they describe an ABI, not a CPU; --nodedir also keeps node-gyp from
    # downloading them.
    ./node_modules/.bin/node-gyp rebuild --directory firmware/native --release --arch=x64 \
        --nodedir=${STAGING_DIR_NATIVE}${prefix_native}
}

do_install() {
    install -D -m 0755 ${S}/${EDGEPLANE_ADDON} ${D}${EDGEPLANE_APP_DIR}/${EDGEPLANE_ADDON}
}

FILES:${PN} = "${EDGEPLANE_APP_DIR}/${EDGEPLANE_ADDON}"
# The EAL loads the poll-mode drivers as plugins at run time; no ELF dependency names them.
RDEPENDS:${PN} = "dpdk"
