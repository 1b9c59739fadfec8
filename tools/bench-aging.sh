#!/usr/bin/env bash
# Aging benchmark: does a node spend more per change the more changes it has
# seen? One 3-node cluster on loopback (release build, CURVE on, every log
# write synced), then BATCHES batches of FILES small files of 4 KiB each
# written by one writer through the leader's mount (a shell's `printf ... >
# file`: one round a file), and per batch the files/s, the daemons' CPU per
# file (summed over the three nodes) and the table files of the leader's
# state per level (from RocksDB's LOG: its flushes and compactions). Then
# the median files/s and CPU per file of the first and of the last third of
# the batches, and their ratio: 1.00x means the cluster did not age.
#
#   tools/bench-aging.sh [-b BATCHES] [-n FILES] [-o recycle|fresh|rewrite] [-r]
#
# BATCHES (default 12) of FILES (default 500). What each batch writes:
#   recycle  one directory, made, filled, then removed with rm -rf, the
#            same names every batch (the default: creates and deletes)
#   fresh    a new directory every batch, kept (the tree grows)
#   rewrite  the same FILES names in one directory, rewritten every batch
#            (a config tree: each write keeps a version in the history)
# -r: each file holds its own random text (base64, which RocksDB's snappy
# does not shrink), not the same 4 KiB of spaces: the stores then keep what
# they are given, and compactions have that much to rewrite.
# With OMNIFS_BUILD set, that build is used as it is (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
batches=12
files=500
mode=recycle
random=0
usage() {
	sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	-b) batches="$2"; shift 2 ;;
	-n) files="$2"; shift 2 ;;
	-r) random=1; shift ;;
	-o)
		case "$2" in recycle | fresh | rewrite) mode=$2 ;; *) usage ;; esac
		shift 2
		;;
	*) usage ;;
	esac
done
[[ "$files" =~ ^[1-9][0-9]*$ && "$batches" =~ ^[1-9][0-9]*$ && $batches -ge 3 ]] ||
	{ echo "bench-aging: -n takes a positive number, -b one of 3 or more" >&2; exit 2; }
. tools/bench-lib.sh

ELECTION_MS="${ELECTION_MS:-200}"
fs_cluster 3 2>/dev/null # keygen's chatter; failures are reported on stdout
leader=$(leader_id 1)
M=$T/mnt/node$leader
payload=$(printf '%4096s' x)
payloads=()
content="4 KiB"
if [ "$random" = 1 ]; then
	# One line of 4,096 base64 characters per file of a batch.
	mapfile -t payloads < <(head -c $((files * 3072)) /dev/urandom | base64 -w 4096)
	content="4 KiB of random text"
fi

# state_levels: the leader's state table files per level, as RocksDB last
# logged them ("-" before its first flush).
state_levels() {
	local s
	s=$(grep -o '\[state[01]\] Level summary: files\[[0-9 ]*\]' "$T/node$leader/data/state/LOG" |
		tail -1 | sed 's/.*files\[\(.*\)\]/\1/')
	echo "${s:--}"
}

echo "aging: $batches batches of $files files of $content ($mode), one writer through the leader's" \
	"mount (node $leader); $(nproc) cores"
printf '%5s | %8s | %11s | %s\n' batch files/s "CPU ms/file" "leader's state table files per level"
rates=() cpus=()
[ "$mode" = rewrite ] && mkdir "$M/rewrite"
for ((b = 1; b <= batches; b++)); do
	case $mode in
	recycle) d=$M/recycle; mkdir "$d" ;;
	fresh) d=$M/fresh$b; mkdir "$d" ;;
	rewrite) d=$M/rewrite ;;
	esac
	c0=$(cpu_ticks "${PIDS[1]}" "${PIDS[2]}" "${PIDS[3]}")
	t0=$(date +%s.%N)
	for ((k = 0; k < files; k++)); do printf '%s' "${payloads[k]:-$payload}" >"$d/f$k"; done
	read -r rate cpu < <(files_rate "$files" "$t0" "$c0")
	# Removed after the batch's figures are taken: the next batch pays for
	# freeing them, as a node's next writes would.
	[ "$mode" = recycle ] && rm -rf "$d"
	rates+=("$rate") cpus+=("$cpu")
	printf '%5s | %8s | %11s | %s\n' "$b" "$rate" "$cpu" "$(state_levels)"
done
python3 - "${rates[*]}" "${cpus[*]}" <<'PY'
import statistics, sys
rates = [float(x) for x in sys.argv[1].split()]
cpus = [float(x) for x in sys.argv[2].split()]
third = len(rates) // 3
first = slice(0, third)
last = slice(len(rates) - third, len(rates))
r0, r1 = statistics.median(rates[first]), statistics.median(rates[last])
c0, c1 = statistics.median(cpus[first]), statistics.median(cpus[last])
print(f"first {third} batches: {r0:.0f} files/s, {c0:.2f} CPU ms/file (medians); "
      f"last {third}: {r1:.0f} files/s, {c1:.2f} CPU ms/file")
print(f"last/first: files/s {r1 / r0:.2f}x, CPU per file {c1 / c0:.2f}x")
PY
rss_line
