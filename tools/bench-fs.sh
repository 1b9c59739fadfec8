#!/usr/bin/env bash
# Filesystem benchmark: small-file operations (create+write+close, stat, read,
# rename over an existing file, unlink) and a large sequential write and read,
# through one mount of a 3-node omnifs cluster on loopback (release build,
# CURVE on, every log write synced) and, in the same run, on a local
# directory under /var/tmp, and on libfuse's passthrough_ll example (built
# here from the examples libfuse3-dev ships, default options) over another
# directory there. Prints one table with the ratios omnifs/local and
# omnifs/passthrough, the daemons' CPU per change (summed over the three
# nodes) and their resident memory; see tools/fsbench.c for what each row
# measures. Run as root (mounts, and the page cache is dropped before the
# large reads).
#
#   tools/bench-fs.sh [-n FILES] [-m MIB] [-o small|large] [--follower]
#
# FILES small files (default 2000), MIB the large file's size (default 256);
# -o runs only one of the two workloads.
# The mount used is the leader's; --follower uses a follower's (every change
# is then forwarded to the leader). The large file is also read through a
# third node's mount. Timing is the shipped default (election_timeout_ms 200);
# ELECTION_MS=... in the environment sets another.
set -euo pipefail
cd "$(dirname "$0")/.."
files=2000
mib=256
via=leader
only=()
while [ $# -gt 0 ]; do
	case "$1" in
	-n) files="$2"; shift 2 ;;
	-m) mib="$2"; shift 2 ;;
	-o) only=(-o "$2"); shift 2 ;;
	--follower) via=follower; shift ;;
	*) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
. tools/bench-lib.sh
B="$OMNIFS_BUILD"

LOCAL="$(mktemp -d /var/tmp/omnifs-fsbench.XXXXXX)"
PT_PID=""
# On failure the daemon logs are kept (lib.sh's cleanup deletes $T).
on_exit() {
	local rc=$?
	set +e # errexit would leave at the first failing step, skipping the cleanup
	if [ -n "$PT_PID" ]; then
		fusermount3 -u -z "$T/pt-mnt"
		kill "$PT_PID" 2>/dev/null
		wait "$PT_PID" 2>/dev/null
	fi
	rm -rf "$LOCAL" "$LOCAL.pt"
	if [ $rc -ne 0 ] && ls "$T"/node*/log >/dev/null 2>&1; then
		mkdir -p "$LOCAL.logs"
		for i in 1 2 3; do cp "$T/node$i/log" "$LOCAL.logs/node$i.log" 2>/dev/null || true; done
		echo "bench-fs: failed; daemon logs kept in $LOCAL.logs" >&2
	fi
	(exit $rc)
	cleanup
}
trap on_exit EXIT

# libfuse's passthrough_ll over a directory beside LOCAL (same disk).
EX=""
for d in /usr/share/doc/libfuse3-dev/examples /usr/share/doc/libfuse3-dev/examples/example; do
	[ -f "$d/passthrough_ll.c" ] && EX=$d && break
done
[ -n "$EX" ] || { echo "bench-fs: no passthrough_ll.c from libfuse3-dev" >&2; exit 1; }
mkdir -p "$T/pt-build" "$T/pt-mnt" "$LOCAL.pt"
cp "$EX/passthrough_ll.c" "$EX"/passthrough_helpers.h "$T/pt-build/"
cc -O2 -o "$T/pt-build/passthrough_ll" "$T/pt-build/passthrough_ll.c" \
	$(pkg-config --cflags --libs fuse3)
"$T/pt-build/passthrough_ll" -f -o source="$LOCAL.pt" "$T/pt-mnt" 2>"$T/pt.log" &
PT_PID=$!
wait_until 20 mountpoint -q "$T/pt-mnt"

# 3 nodes with mounts, CURVE, defaults otherwise; a file may hold the large one.
ELECTION_MS="${ELECTION_MS:-200}"
EXTRA_CONFIG="[fs]\nmax_file_size_mb = $((mib > 64 ? mib * 2 : 128))"
fs_cluster 3 2>/dev/null # keygen's chatter; failures are reported on stdout
leader=$(leader_id 1)
others=()
for i in 1 2 3; do [ "$i" = "$leader" ] || others+=("$i"); done
if [ "$via" = leader ]; then
	node=$leader reader=${others[0]}
else
	node=${others[0]} reader=${others[1]}
fi
echo "omnifs: 3 nodes on loopback, leader node $leader; benchmark through node $node's mount" \
	"($via), large file also read through node $reader's; data dirs under $T, local dir $LOCAL"
echo "all on: $(df --output=source,fstype "$T" | tail -1), $(nproc) cores;" \
	"passthrough: libfuse $(pkg-config --modversion fuse3)'s passthrough_ll over $LOCAL.pt"
rss_line | sed 's/$/ (idle, before the run)/'
hz=$(getconf CLK_TCK)
declare -a cpu0=()
for i in 1 2 3; do cpu0[i]=$(cpu_ticks "${PIDS[$i]}"); done
start=$(date +%s.%N)
"$B/tools/omnifs-fsbench" -n "$files" -m "$mib" "${only[@]}" -R "$T/mnt/node$reader" \
	-p "${PIDS[1]},${PIDS[2]},${PIDS[3]}" "$T/mnt/node$node" "$LOCAL" "$T/pt-mnt"
line="run: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s; daemon CPU seconds (user+sys):"
for i in 1 2 3; do
	line+=" node$i $(python3 -c "print(f'{($(cpu_ticks "${PIDS[$i]}") - ${cpu0[$i]}) / $hz:.1f}')")"
	[ "$i" = "$leader" ] && line+=" (leader)"
done
echo "$line"
rss_line | sed 's/$/ (after the run)/'
[ "$(leader_id "$node")" = "$leader" ] || echo "note: the leader changed during the run"
