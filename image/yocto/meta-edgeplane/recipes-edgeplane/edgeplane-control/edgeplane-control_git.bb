SUMMARY = "edgeplane control application: service manager, cluster, management API"
DESCRIPTION = "The TypeScript control application compiled to JavaScript, with its \
production npm dependencies, as run by edgeplane.service under Node.js."

require recipes-edgeplane/edgeplane-source.inc

DEPENDS = "nodejs-native"
RDEPENDS:${PN} = "nodejs edgeplane-dataplane"

# npm ci resolves the dependencies named in package-lock.json from the npm registry,
# so this one task needs the network. The trade-off against oe-core's npm class
# (npmsw:// fetcher, offline, mirrorable): that class installs an npm package, not a
# build output, and wants the lock file inside the layer at parse time, a second copy
# that would drift from the repository's. package-lock.json pins every version and
# integrity hash, so the result is reproducible as long as the registry serves them.
do_compile[network] = "1"
do_configure[noexec] = "1"

do_compile() {
    cd ${S}
    export npm_config_cache="${WORKDIR}/npm-cache"
    # Install scripts are skipped: the only native code, the data plane addon, is built
    # by edgeplane-dataplane against the target's DPDK, not by npm for the build host.
    npm ci --ignore-scripts --no-audit --no-fund
    npm run build:ts
    npm prune --omit=dev --ignore-scripts --no-audit --no-fund
}

do_install() {
    install -d ${D}${EDGEPLANE_APP_DIR}
    cp -R --no-preserve=ownership ${S}/package.json ${S}/dist ${S}/node_modules ${D}${EDGEPLANE_APP_DIR}/
}

FILES:${PN} = "${EDGEPLANE_APP_DIR}/package.json ${EDGEPLANE_APP_DIR}/dist ${EDGEPLANE_APP_DIR}/node_modules"
