#!/usr/bin/env bash
# Fuzzes the wire decoder (tests/transport/fuzz_decode.c) for a bounded time
# and fails on any finding. Builds with clang in build/fuzz (-Dfuzz=true).
#
#   tools/fuzz.sh            60 seconds (OMNIFS_FUZZ_SECONDS overrides)
#   tools/fuzz.sh 600        ten minutes
#
# Seeds come from tests/transport/fuzz_corpus (read only); inputs the fuzzer
# finds go to a temporary directory, crashes to build/fuzz/fuzz-artifacts/.
# Reproduce one with: build/fuzz/tests/transport/fuzz_decode <artifact>
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${OMNIFS_FUZZ_SECONDS:-60}}"
dir=build/fuzz
if [ ! -f "$dir/build.ninja" ]; then
	CC=clang meson setup "$dir" -Dfuzz=true -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$dir" tests/transport/fuzz_decode >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir/fuzz-artifacts"
log="$dir/fuzz.log"
if ! "$dir/tests/transport/fuzz_decode" -max_total_time="$secs" -timeout=10 \
	-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	-artifact_prefix="$dir/fuzz-artifacts/" "$work" tests/transport/fuzz_corpus >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	echo "fuzz: FINDING in the wire decoder (full log: $log, input in $dir/fuzz-artifacts/)" >&2
	exit 1
fi
runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
echo "fuzz: wire decoder ran ${secs}s, ${runs:-?} inputs, no finding"
