#!/usr/bin/env bash
# A/B runs: one benchmark command, run alternately against two builds, so
# load drifting on a shared machine weighs on both alike. Each round runs A
# and B once (which goes first alternates from round to round), each run in
# a cluster of its own, and prints the command's lines that match PATTERN,
# each prefixed with its side and round.
#
#   tools/bench-ab.sh [-r ROUNDS] [-g PATTERN] BUILD_A BUILD_B -- COMMAND...
#
# BUILD_A, BUILD_B: build directories (with fs/omnifsd and tools/ built, as
# tools/build.sh release makes; for another revision, `git worktree add DIR
# REV` then `meson setup DIR/build --buildtype=release -Db_ndebug=false` and
# `ninja -C DIR/build`). ROUNDS defaults to 3; PATTERN (an extended regular
# expression, default: every line) picks the lines to print. COMMAND runs
# from the top of this source tree with OMNIFS_BUILD set to the side's build
# (the benchmarks in tools/ use that build as it is), e.g.
#
#   tools/bench-ab.sh -g '^(1|8), ' /tmp/base/build build/release -- \
#       tools/bench-fs.sh -o writers
#
# A run that fails stops the whole comparison (its output is shown).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
pattern=''
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	-r) rounds="$2"; shift 2 ;;
	-g) pattern="$2"; shift 2 ;;
	--) break ;;
	-*) usage ;;
	*) break ;;
	esac
done
if [ $# -lt 4 ] || [ "$3" != "--" ]; then usage; fi
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench-ab: -r takes a positive number" >&2; exit 2; }
declare -A build=([A]="$(realpath "$1")" [B]="$(realpath "$2")")
shift 3
for side in A B; do
	[ -x "${build[$side]}/fs/omnifsd" ] ||
		{ echo "bench-ab: ${build[$side]} has no fs/omnifsd: build it first" >&2; exit 2; }
done

echo "A: ${build[A]}"
echo "B: ${build[B]}"
echo "command: $*; $rounds rounds, the side that goes first alternating"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
	order=(A B)
	[ $((r % 2)) -eq 0 ] && order=(B A)
	for side in "${order[@]}"; do
		if ! OMNIFS_BUILD="${build[$side]}" "$@" >"$out" 2>&1; then
			cat "$out" >&2
			echo "bench-ab: the run of $side in round $r failed" >&2
			exit 1
		fi
		grep -E -- "${pattern:-.}" "$out" | sed "s/^/$side r$r: /" || true
	done
done
