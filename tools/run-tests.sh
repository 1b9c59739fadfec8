#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what it
# needs, checks formatting, builds the sanitizer flavours and runs every
# suite, builds the optimized flavour, then prints one summary line.
#
#   tools/run-tests.sh                 everything
#   tools/run-tests.sh --suite unit    one suite (passed on to meson test)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
tools/format.sh
tools/build.sh asan
tools/build.sh release
[ $# -gt 0 ] || tools/build.sh tsan

status=0
meson test -C build/asan --print-errorlogs --num-processes 2 "$@" || status=$?
logs=(build/asan/meson-logs/testlog.json)
if [ $# -eq 0 ]; then
	# The full run also fuzzes the decoders for a bounded time
	# (tools/fuzz.sh), and runs the unit suite and one cluster test with
	# mounts under ThreadSanitizer (a report fails the test).
	tools/fuzz.sh || {
		status=1
		echo "run-tests: tools/fuzz.sh failed (above)"
	}
	rm -f build/tsan/meson-logs/tsan-*.json
	meson test -C build/tsan --print-errorlogs --num-processes 2 --suite unit \
		--logbase tsan-unit || status=1
	meson test -C build/tsan --print-errorlogs --logbase tsan-cluster fs_ops || status=1
	logs+=(build/tsan/meson-logs/tsan-unit.json build/tsan/meson-logs/tsan-cluster.json)
fi

# One closing line: "N passed, N failed, N skipped", over every test run
# above (a log missing counts as a failure). Where root and /dev/fuse are
# available (as in CI) a skipped test is a missing test and fails the run.
python3 - "${logs[@]}" <<'PY' || status=1
import json, os, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for path in sys.argv[1:]:
    if not os.path.exists(path):
        print("no test log at %s" % path)
        counts["failed"] += 1
        continue
    for line in open(path):
        r = json.loads(line)["result"]
        key = {"OK": "passed", "EXPECTEDFAIL": "passed", "SKIP": "skipped"}.get(r, "failed")
        counts[key] += 1
print("%d passed, %d failed, %d skipped" % (counts["passed"], counts["failed"], counts["skipped"]))
strict = os.geteuid() == 0 and os.path.exists("/dev/fuse")
sys.exit(1 if counts["failed"] or (strict and counts["skipped"]) or not counts["passed"] else 0)
PY
[ "$status" = 0 ] || echo "run-tests: FAILED (exit $status)"
exit $status
