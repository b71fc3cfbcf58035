#!/usr/bin/env bash
# Installs the dependencies at exactly the lockfile's versions, in the current directory.
# npm ci is the tool for that, but it refuses a lockfile that lacks any platform's optional
# packages, and the registry these machines reach does not serve the other platforms' builds of
# some packages (rollup's), so no lockfile made here can list them. npm install then installs the
# same locked versions (it only adds what the lock misses, and optional packages it cannot fetch
# are skipped). Arguments go to both (e.g. --omit=dev).
set -euo pipefail
if ! npm ci --no-audit --no-fund --loglevel=error "$@" 2>/tmp/npm-ci.$$.log; then
  if grep -q 'EUSAGE' /tmp/npm-ci.$$.log; then
    echo "npm ci refused the lockfile (optional packages of other platforms missing); npm install at the locked versions"
    npm install --no-audit --no-fund --loglevel=error "$@"
  else
    cat /tmp/npm-ci.$$.log >&2
    rm -f /tmp/npm-ci.$$.log
    exit 1
  fi
fi
rm -f /tmp/npm-ci.$$.log
