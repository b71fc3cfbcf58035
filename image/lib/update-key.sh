# The key that signs update bundles. Its public half is built into the image
# (/usr/lib/edgeplane/update-key.pem); apply-update accepts only bundles whose
# manifest verifies against it. Without EDGEPLANE_UPDATE_KEY a development key
# is generated once under /var/tmp/edgeplane-image/keys (never committed).
update_signing_key() {
  local key=${EDGEPLANE_UPDATE_KEY:-/var/tmp/edgeplane-image/keys/update-dev.key}
  if [[ -z ${EDGEPLANE_UPDATE_KEY:-} && ! -f $key ]]; then
    mkdir -p "$(dirname "$key")"
    openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$key" 2>/dev/null
    note "generated development update key $key" >&2
  fi
  [[ -r $key ]] || die "update signing key $key not readable"
  echo "$key"
}
