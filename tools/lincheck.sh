#!/usr/bin/env bash
# The linearizability check on a real 3-node cluster (as root, with
# /dev/fuse), for longer than the test suite's 60 s, and its figures:
# operations, histories checked, violations.
#
#   tools/lincheck.sh [--seconds N] [--seed N] [--build DIR] [LINCHECK OPTIONS...]
#
# Defaults: 600 s, a seed from the clock (printed; pass it back to replay the
# same choices), build/release (built if missing). Further options go to
# tests/lin/lincheck.py (--kv-clients, --fs-clients, --keys, --files,
# --nemesis kill,isolate,cut,partition,unplug, --unsafe-local-reads ...: see
# its --help). It runs tests/integration/test_linearizable.sh, which starts
# and cleans up the cluster, each node in a network namespace of its own
# (LIN_NETNS=0: on loopback); the history is written to
# BUILD/meson-logs/lincheck-history.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=600
seed=$(date +%s)
build=build/release
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) extra+=("$1"); shift ;;
	esac
done
if [ ! -x "$build/fs/omnifsd" ] && [ "$build" = build/release ]; then
	tools/build.sh release
fi
echo "lincheck: $seconds s, seed $seed, $build"
OMNIFS_BUILD=$(realpath "$build") LIN_SECONDS=$seconds LIN_SEED=$seed LIN_ARGS="${extra[*]:-}" \
	exec tests/integration/test_linearizable.sh
