#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what it
# needs, checks formatting, builds the sanitizer flavour and runs every suite,
# builds the optimized flavour, then prints one summary line.
#
#   tools/run-tests.sh                 everything
#   tools/run-tests.sh --suite unit    one suite (passed on to meson test)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
tools/format.sh
tools/build.sh asan
tools/build.sh release

status=0
meson test -C build/asan --print-errorlogs --num-processes 2 "$@" || status=$?
# The full run also fuzzes the wire decoder for a bounded time (tools/fuzz.sh).
[ $# -gt 0 ] || tools/fuzz.sh || status=1

# One closing line: "N passed, N failed, N skipped". Where root and /dev/fuse
# are available (as in CI) a skipped test is a missing test and fails the run.
python3 - build/asan/meson-logs/testlog.json <<'PY' || status=1
import json, os, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    key = {"OK": "passed", "EXPECTEDFAIL": "passed", "SKIP": "skipped"}.get(r, "failed")
    counts[key] += 1
print("%d passed, %d failed, %d skipped" % (counts["passed"], counts["failed"], counts["skipped"]))
strict = os.geteuid() == 0 and os.path.exists("/dev/fuse")
sys.exit(1 if counts["failed"] or (strict and counts["skipped"]) or not counts["passed"] else 0)
PY
exit $status
