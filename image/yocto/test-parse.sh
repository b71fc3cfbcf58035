#!/usr/bin/env bash
# Parses meta-edgeplane with bitbake against the pinned oe-core / meta-openembedded /
# meta-dpdk snapshots and resolves edgeplane-image's task graph under the edgeplane
# distro. Exits non-zero when bitbake reports an error. Fetching and building are not
# checked here: these machines cannot reach the source servers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
parse_tool="$repo/../shared/tools/yocto-parse"
[ -x "$parse_tool" ] || { echo "test-parse: $parse_tool not found" >&2; exit 2; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"$parse_tool" "$here/meta-edgeplane" edgeplane-image edgeplane qemux86-64 >"$log" 2>&1 || status=$?
tail -n 15 "$log"
# yocto-parse exits 0 even when `bitbake -g` fails (its `run ... && echo` is exempt from
# set -e), so success is the tool's own "resolved" line and no ERROR from bitbake.
if ! grep -q "task graph of edgeplane-image resolved" "$log" || grep -n '^ERROR:' "$log"; then
  echo "test-parse: edgeplane-image's task graph did not resolve" >&2
  status=1
fi
# bitbake exits 0 on warnings; a parse that only warns about this layer still hides a
# mistake (a bbappend matching nothing, a misspelt variable flag), so those fail too.
if grep -n 'WARNING:.*layer-under-test' "$log"; then
  echo "test-parse: bitbake warned about meta-edgeplane" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "test-parse: FAILED (exit $status)" >&2
  exit "$status"
fi
echo "test-parse: meta-edgeplane parses and edgeplane-image's task graph resolves"
