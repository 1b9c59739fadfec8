#!/usr/bin/env bash
# Memory benchmark: the resident memory of each omnifsd of a 3-node cluster
# on loopback (release build, CURVE on, mounts, shipped defaults) when idle,
# after `tar x` of 10,000 small config files through one mount, and during
# and after a sustained write load (8 KV clients putting new 256-byte keys
# and one writer replacing 100 files through a mount, both without pause).
# Prints a line a minute during the load, RocksDB's part of each node's
# memory against its [storage] memory_mb budget (from omnifsctl status), and
# the targets: at most 32 MiB idle and 64 MiB after the load.
#
#   tools/bench-memory.sh [-d LOAD_SECONDS] [-m STORAGE_MEMORY_MB]
#
# LOAD_SECONDS defaults to 600; -m sets [storage] memory_mb (default: the
# shipped default).
set -euo pipefail
cd "$(dirname "$0")/.."
load_s=600
budget=""
while [ $# -gt 0 ]; do
	case "$1" in
	-d) load_s="$2"; shift 2 ;;
	-m) budget="$2"; shift 2 ;;
	-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64 ;;
	esac
done
. tools/bench-lib.sh
B="$OMNIFS_BUILD"

[ -n "$budget" ] && EXTRA_CONFIG="[storage]\nmemory_mb = $budget"
fs_cluster 3 2>/dev/null # keygen's chatter; failures are reported on stdout
M="$T/mnt/node1"
storage_line() {
	local i
	for i in 1 2 3; do
		echo "  node$i $(ctl "$i" status | sed -n 's/^memory: *//p')"
	done
}
max_rss() {
	local i m=0 r
	for i in 1 2 3; do
		r=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/${PIDS[$i]}/status")
		[ "$r" -gt "$m" ] && m=$r
	done
	echo "$m"
}

echo "omnifs: 3 nodes on loopback, mounts, $(nproc) cores; data dirs under $T"
sleep 3 # the start's own allocations settle
rss_line | sed 's/$/ (idle)/'
idle=$(max_rss)

# 10,000 files of 100-200 bytes in 100 directories, as a tarball made here.
python3 - "$T/configs.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as tar:
    for d in range(100):
        for f in range(100):
            data = ("# service %d\nname = svc%d-%d\nport = %d\nenabled = true\n" % (f, d, f, 8000 + f) * 2).encode()
            info = tarfile.TarInfo("etc/app%02d/svc%02d.conf" % (d, f))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
EOF
start=$(date +%s.%N)
tar -C "$M" -xf "$T/configs.tar"
echo "tar x of 10,000 files: $(python3 -c "print(f'{10000 / ($(date +%s.%N) - $start):.0f}')") files/s"
rss_line | sed 's/$/ (10,000 files)/'
storage_line

# The load: KV puts spread over the nodes, and file replacements on node 2.
"$B/tools/omnifs-kvload" -s "$T/node1/ctl.sock,$T/node2/ctl.sock,$T/node3/ctl.sock" \
	-c 8 -b 256 -d "$load_s" -p "mem/" >"$T/kvload.out" 2>&1 &
KV_PID=$!
(
	end=$(($(date +%s) + load_s))
	n=0 failed=0
	dir="$T/mnt/node2/etc/app00"
	while [ "$(date +%s)" -lt "$end" ]; do
		for f in $(seq 0 99); do
			# A write may fail (EROFS) while an overloaded machine elects
			# a leader: counted, and the load goes on.
			{ printf 'generation = %d\nfile = %d\n' "$n" "$f" >"$dir/new.$f" &&
				mv "$dir/new.$f" "$dir/svc$f.conf"; } 2>/dev/null || failed=$((failed + 1))
		done
		n=$((n + 1))
	done
	echo "$((n * 100)) file replacements, $failed failed" >"$T/files.out"
) &
FILE_PID=$!
CLEANUP_HOOKS+=('kill "$KV_PID" "$FILE_PID" 2>/dev/null')
t0=$(date +%s)
while kill -0 "$KV_PID" 2>/dev/null; do
	sleep 5
	now=$(date +%s)
	if [ $(((now - t0) % 60)) -lt 5 ] && [ $((now - t0)) -ge 60 ]; then
		rss_line | sed "s/\$/ (load, $((now - t0)) s)/"
	fi
done
wait "$KV_PID" "$FILE_PID"
echo "load: $(tail -1 "$T/kvload.out"); $(cat "$T/files.out")"
rss_line | sed "s/\$/ (after ${load_s} s of load)/"
storage_line
after=$(max_rss)
echo "targets: idle ${idle} MiB (<= 32: $([ "$idle" -le 32 ] && echo met || echo NOT met)); after load ${after} MiB (<= 64: $([ "$after" -le 64 ] && echo met || echo NOT met))"
