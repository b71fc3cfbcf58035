#!/usr/bin/env bash
# All tests: C unit tests under sanitizers, the Yocto layer parse check, the firmware image under QEMU, and the vitest suites
# (unit, pcap replay, namespace end-to-end). Ends with "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
mkdir -p out

passed=0 failed=0 skipped=0
count_tap() { # count_tap FILE: adds a TAP stream's results to the totals
  local ok notok skip
  ok=$(grep -cE '^ok ' "$1" || true)
  skip=$(grep -cE '^ok .*# (SKIP|skip)' "$1" || true)
  notok=$(grep -cE '^not ok ' "$1" || true)
  passed=$((passed + ok - skip)) failed=$((failed + notok)) skipped=$((skipped + skip))
}
section() { printf '\n=== %s ===\n' "$1"; }

section "C unit tests (AddressSanitizer, UBSan)"
if make -s -C firmware/native/test test > out/c-tests.tap 2>&1; then :; else
  grep -qE '^not ok ' out/c-tests.tap || { echo "not ok - C tests did not build or crashed" >> out/c-tests.tap; }
fi
cat out/c-tests.tap
count_tap out/c-tests.tap

if [ -x image/yocto/test-parse.sh ]; then
  section "Yocto layer parse"
  if image/yocto/test-parse.sh > out/yocto.log 2>&1; then
    echo "ok - yocto layer parses and resolves its image task graph" | tee out/yocto.tap
  else
    tail -20 out/yocto.log
    echo "not ok - yocto layer parse (see out/yocto.log)" | tee out/yocto.tap
  fi
  count_tap out/yocto.tap
fi

section "image: build, QEMU boot and A/B update tests (TCG, ~25 min; docs/image.md)"
image_t0=$SECONDS
image_test() { # image_test NAME SCRIPT: runs an image TAP test, a crash without "not ok" still counts as one
  if "$2" | tee "out/image-$1.tap"; then :; else
    grep -qE '^not ok ' "out/image-$1.tap" || echo "not ok - $2 exited early (see its output above)" | tee -a "out/image-$1.tap"
  fi
  count_tap "out/image-$1.tap"
}
if image/build.sh 2>&1 | tee out/image-build.log; then
  echo "ok - image/build.sh builds the firmware image" | tee out/image-build.tap
  count_tap out/image-build.tap
  image_test boot image/test/boot.test.sh
  image_test update image/test/update.test.sh
else
  echo "not ok - image/build.sh failed (see out/image-build.log)" | tee out/image-build.tap
  count_tap out/image-build.tap
fi
echo "image section: $((SECONDS - image_t0)) s"

section "vitest"
rm -f out/vitest.json
npx vitest run
if [ -f out/vitest.json ]; then
  read -r vp vf vs < <(node -e '
    const r = require("./out/vitest.json");
    const broken = r.success || r.numFailedTests > 0 ? 0 : 1; // a file that failed to load has no failed test
    console.log(r.numPassedTests, r.numFailedTests + broken, r.numPendingTests + r.numTodoTests);')
  passed=$((passed + vp)) failed=$((failed + vf)) skipped=$((skipped + vs))
else
  echo "vitest wrote no report"; failed=$((failed + 1))
fi

echo
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
