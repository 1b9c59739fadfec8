#!/usr/bin/env bash
# Filesystem benchmark: small-file operations (create+write+close, stat, read,
# rename over an existing file, unlink) and a large sequential write and read,
# through one mount of a 3-node omnifs cluster on loopback (release build,
# CURVE on, every log write synced) and, in the same run, on a local
# directory under /var/tmp, and on libfuse's passthrough_ll example (built
# here from the examples libfuse3-dev ships, default options) over another
# directory there. Prints one table with the ratios omnifs/local and
# omnifs/passthrough, the daemons' CPU per change (summed over the three
# nodes), the bytes each writes to disk per MiB of the large file and their
# resident memory; see tools/fsbench.c for what each row measures. Then what
# file history costs: the small-file writes (create+write 4 KiB+close,
# overwrite: open O_TRUNC, write 4 KiB, close, rename over
# a file, unlink; each but create keeps a previous version) through the two
# followers' mounts, one restarted with history on (the default), the other
# with it off; history is the proposer's matter, so the two differ in that
# alone. The two sides take turns operation by operation (which goes first
# alternates), so load drifting on a shared machine weighs on both alike;
# each round swaps the two nodes' roles. It prints each round's ops/s, p50
# and ratio on/off, then per operation the geometric mean of the rounds'
# ratios and their range (1.000x: free; the target is >= 0.9). And, with
# -o writers only, group commit: FILES files of 4 KiB each written (a shell's
# `printf ... > file`: open O_TRUNC of a new name, write, close: one round a
# file) by one writer, then shared among 8 writers at once, each in its own
# directory, through the leader's mount and then spread over the three
# mounts; files/s, the ratio to one writer, the daemons' CPU per file and
# their threads' context switches per file, then that CPU per thread kind
# (replica, FUSE, ZeroMQ, RocksDB threads; the leader's and the
# followers'). And, with -o copy only, how programs that copy trees fare:
# `tar x` of FILES small config files (100 a directory; 10,000 unless -n
# says) and `cp -a` of a copy of /etc, into the mount, a local directory
# and the passthrough; entries/s, the ratios, and for omnifs the log
# entries and daemon CPU per entry (each copy is compared with its source).
# Run as root (mounts, and the page cache is dropped before the large reads).
#
#   tools/bench-fs.sh [-n FILES] [-m MIB] [-r ROUNDS]
#                     [-o small|large|history|writers|copy] [--follower]
#
# FILES small files (default 2000, also per side in the history rounds), MIB
# the large file's size (default 256), ROUNDS history rounds (default 4); -o
# runs only one of the workloads (writers and copy run only when asked).
# The mount used is the leader's; --follower uses a follower's (every change
# is then forwarded to the leader). The large file is also read through a
# third node's mount. Timing is the shipped default (election_timeout_ms 200);
# ELECTION_MS=... in the environment sets another.
set -euo pipefail
cd "$(dirname "$0")/.."
files=""
mib=256
rounds=4
via=leader
only=()
workloads="small large history"
while [ $# -gt 0 ]; do
	case "$1" in
	-n) files="$2"; shift 2 ;;
	-m) mib="$2"; shift 2 ;;
	-r) rounds="$2"; shift 2 ;;
	-o)
		case "$2" in
		small | large) only=(-o "$2") ;;
		history | writers | copy) ;;
		*) sed -n '2,45p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
		esac
		workloads=$2
		shift 2
		;;
	--follower) via=follower; shift ;;
	*) sed -n '2,45p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[ -n "$files" ] || { [ "$workloads" = copy ] && files=10000 || files=2000; }
[[ "$files" =~ ^[1-9][0-9]*$ && "$rounds" =~ ^[1-9][0-9]*$ ]] ||
	{ echo "bench-fs: -n and -r take a positive number" >&2; exit 2; }
# fsbench: the small and large workloads against local and passthrough.
fsbench=true
case "$workloads" in history | writers | copy) fsbench=false ;; esac
history=true
[ "$workloads" = history ] || [ "$workloads" = "small large history" ] || history=false
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

# passthrough_up: libfuse's passthrough_ll over a directory beside LOCAL
# (same disk).
passthrough_up() {
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
}

# fsbench_run: omnifs-fsbench's table, through node $node's mount.
fsbench_run() {
	echo "omnifs: 3 nodes on loopback, leader node $leader; benchmark through node $node's mount" \
		"($via), large file also read through node $reader's; data dirs under $T, local dir $LOCAL"
	echo "all on: $(df --output=source,fstype "$T" | tail -1), $(nproc) cores;" \
		"passthrough: libfuse $(pkg-config --modversion fuse3)'s passthrough_ll over $LOCAL.pt"
	rss_line | sed 's/$/ (idle, before the run)/'
	hz=$(getconf CLK_TCK)
	declare -a cpu0=()
	declare -a io0=()
	for i in 1 2 3; do
		cpu0[i]=$(cpu_ticks "${PIDS[$i]}")
		io0[i]=$(disk_writes "${PIDS[$i]}")
	done
	start=$(date +%s.%N)
	"$B/tools/omnifs-fsbench" -n "$files" -m "$mib" "${only[@]}" -R "$T/mnt/node$reader" \
		-p "${PIDS[1]},${PIDS[2]},${PIDS[3]}" "$T/mnt/node$node" "$LOCAL" "$T/pt-mnt"
	line="run: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s; daemon CPU seconds (user+sys):"
	for i in 1 2 3; do
		line+=" node$i $(python3 -c "print(f'{($(cpu_ticks "${PIDS[$i]}") - ${cpu0[$i]}) / $hz:.1f}')")"
		[ "$i" = "$leader" ] && line+=" (leader)"
	done
	echo "$line"
	# What reaches the disk for the data written through the mount (the
	# large file's bytes dominate when it is written).
	line="daemon disk writes (MiB per MiB of the large file):"
	for i in 1 2 3; do
		line+=" node$i $(python3 -c "print(f'{($(disk_writes "${PIDS[$i]}") - ${io0[$i]}) / 1048576 / $mib:.2f}')")"
	done
	echo "$line"
	rss_line | sed 's/$/ (after the run)/'
	[ "$(leader_id "$node")" = "$leader" ] || echo "note: the leader changed during the run"
}

# disk_writes PID: the bytes the process has caused to be written to the
# disk (write_bytes of /proc/PID/io: page-cache writes it dirtied).
disk_writes() {
	awk '/^write_bytes/ { print $2 }' "/proc/$1/io"
}

# ready I: node I mounted and following a leader with a quorum.
ready() {
	wait_until 30 mountpoint -q "$T/mnt/node$1"
	wait_until 20 has_leader "$1"
}

# history_run: the two followers restarted, one with history on and one with
# it off (restarting followers leaves the leader in place), the small-file
# writes through both mounts in turns; each round swaps the two nodes' roles,
# so a difference between them (not history's) cancels out.
# writers_pass W MOUNT...: FILES files shared among W writers at once, writer
# j in its own directory on MOUNT[j mod count]; prints files/s, the
# daemons' CPU ms per file and their threads' context switches per file
# (each costs the daemons CPU, and a virtual machine much more), then on a
# second line that CPU per thread kind (threads_since).
writers_pass() {
	local w=$1 per=$((files / $1)) j d t0 c0 s0 used0 i
	shift
	local mounts=("$@") dirs=() pids=() payload
	payload=$(printf '%4096s' x)
	used0=$(inodes_used "${mounts[0]}")
	for ((j = 0; j < w; j++)); do
		d="${mounts[j % ${#mounts[@]}]}/writers.$w.$j.$$"
		mkdir "$d"
		dirs+=("$d")
	done
	c0=$(cpu_ticks "${PIDS[1]}" "${PIDS[2]}" "${PIDS[3]}")
	s0=$(switches_snap "${PIDS[1]}" "${PIDS[2]}" "${PIDS[3]}")
	local th0
	th0=$(threads_snap "$leader")
	t0=$(date +%s.%N)
	for d in "${dirs[@]}"; do
		(for ((k = 0; k < per; k++)); do printf '%s' "$payload" >"$d/f$k"; done) &
		pids+=($!)
	done
	wait "${pids[@]}"
	local line
	line="$(files_rate $((w * per)) "$t0" "$c0") $(python3 -c "
print(f'{$(switches_since "$s0" "${PIDS[1]}" "${PIDS[2]}" "${PIDS[3]}") / $((w * per)):.1f}')")"
	local threads
	threads=$(threads_since "$th0" "$leader" $((w * per)))
	# Removed before the line is printed: the caller reads the line and
	# goes on to the next pass, which must not share the cluster with this
	# removal. Nor with the freeing of the removed files, which each node's
	# reaper does some 2-3 s later (orphan_grace_ms): until then they still
	# count as used inodes (15 s at most).
	rm -rf "${dirs[@]}"
	for ((i = 0; i < 150 && $(inodes_used "${mounts[0]}") > used0; i++)); do sleep 0.1; done
	echo "$line"
	echo "$threads"
}

# inodes_used MOUNT: the cluster's inodes in use, as statfs(2) reports them.
inodes_used() { stat -f -c '%c %d' "$1" | awk '{ print $1 - $2 }'; }

# writers_run: one writer, 8 through the leader's mount, 8 over the three
# mounts, one writer again (the two single-writer passes bound the drift of
# a shared machine's load).
writers_run() {
	local one=""
	local M=$T/mnt/node$leader
	local threads=""
	# row LABEL W MOUNT...: one pass, one line; the first sets the base.
	# Its CPU per thread kind is kept for after the table.
	row() {
		local label=$1 rate cpu switches kinds
		shift
		{ read -r rate cpu switches; read -r kinds; } < <(writers_pass "$@")
		one=${one:-$rate}
		printf '%-34s | %8s | %8sx | %11s | %s\n' "$label" "$rate" \
			"$(python3 -c "print(f'{$rate / $one:.2f}')")" "$cpu" "$switches"
		threads+="$label: $kinds"$'\n'
	}
	echo "group commit: $files files of 4 KiB (printf > file: one round each), leader node$leader"
	printf '%-34s | %8s | %9s | %11s | %s\n' writers files/s "/1 writer" "CPU ms/file" \
		"switches/file"
	row "1, leader's mount" 1 "$M"
	row "8, leader's mount" 8 "$M"
	row "8, over the 3 mounts" 8 "$T/mnt/node1" "$T/mnt/node2" "$T/mnt/node3"
	row "1 again, leader's mount" 1 "$M"
	echo "daemon CPU ms per file by thread kind (L the leader's threads, F both followers'):"
	printf '%s' "$threads"
}

# copy_pass LABEL SOURCE CMD...: CMD (the copy, its target last) into
# omnifs, then a local directory, then the passthrough; one table line.
copy_pass() {
	local label=$1 src=$2 n a0 a1 c0 t0 rate cpu line dest omnifs
	shift 2
	n=$(find "$src" -mindepth 1 | wc -l)
	line=$(printf '%-22s | %7s' "$label" "$n")
	local -a rates=()
	for dest in "$T/mnt/node$node" "$LOCAL" "$T/pt-mnt"; do
		omnifs=false
		[ "$dest" = "$T/mnt/node$node" ] && omnifs=true
		rm -rf "$dest/copy"
		mkdir "$dest/copy"
		! $omnifs || a0=$(status_field "$leader" applied_idx)
		c0=$(cpu_ticks "${PIDS[1]}" "${PIDS[2]}" "${PIDS[3]}")
		t0=$(date +%s.%N)
		"$@" "$dest/copy"
		read -r rate cpu < <(files_rate "$n" "$t0" "$c0")
		rates+=("$rate")
		if $omnifs; then # its log entries and CPU per entry too
			a1=$(status_field "$leader" applied_idx)
			line+=$(printf ' | %8s %6s %6s' "$rate" \
				"$(python3 -c "print(f'{($a1 - $a0) / $n:.2f}')")" "$cpu")
		fi
		# The tree each program copies is its source's: a copy that
		# differs measured nothing.
		diff -rq --no-dereference "$src" "$dest/copy/$(basename "$src")" >/dev/null ||
			{ echo "bench-fs: $label into $dest: the copy differs from $src" >&2; exit 1; }
		rm -rf "$dest/copy"
	done
	line+=$(python3 -c "
o, l, p = ${rates[0]}, ${rates[1]}, ${rates[2]}
print(f' | {l:8.0f} | {p:8.0f} | {o / l:.3f}x, {o / p:.3f}x')")
	echo "$line"
}

# copy_run: tar x of FILES config files, then cp -a of a copy of /etc.
copy_run() {
	local src=$T/copy-src
	mkdir -p "$src"
	python3 - "$src/configs.tar" "$files" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as tar:
    for i in range(int(sys.argv[2])):
        data = ("# service %d\nname = svc%d\nport = %d\nenabled = true\n"
                % (i, i, 8000 + i % 1000) * 4).encode()
        info = tarfile.TarInfo("etc/app%03d/svc%05d.conf" % (i // 100, i))
        info.size = len(data)
        info.mtime = 1700000000
        tar.addfile(info, io.BytesIO(data))
EOF
	tar -C "$src" -xf "$src/configs.tar"
	cp -a /etc "$src/etc-copy"
	echo "tree copies into node $node's mount ($via; leader node $leader), $LOCAL and the" \
		"passthrough"
	printf '%-22s | %7s | %8s %6s %6s | %8s | %8s | %s\n' copy entries omnifs/s log/e ms/e \
		local/s pt/s "omnifs/local, /passthrough"
	copy_pass "tar x (config files)" "$src/etc" tar -xf "$src/configs.tar" -C
	copy_pass "cp -a (copy of /etc)" "$src/etc-copy" cp -a "$src/etc-copy"
	echo "log/e: log entries per entry copied (about its consensus rounds); ms/e: the"
	echo "daemons' CPU per entry, summed over the three nodes"
}

history_run() {
	local round attempt i
	for round in $(seq 0 $((rounds - 1))); do
		# Both sides go through a follower: if a restart moved the
		# leadership to one of them, again with the new followers.
		for attempt in 1 2 3; do
			leader=$(leader_id "$leader")
			others=()
			for i in 1 2 3; do [ "$i" = "$leader" ] || others+=("$i"); done
			on_node=${others[$((round % 2))]} off_node=${others[$((1 - round % 2))]}
			EXTRA_CONFIG="$FS_CONFIG\n[history]\nenabled = true" write_config "$on_node" curve
			EXTRA_CONFIG="$FS_CONFIG\n[history]\nenabled = false" write_config "$off_node" curve
			for i in "${others[@]}"; do
				stop_node "$i"
				start_node "$i"
				ready "$i"
			done
			[ "$(leader_id "$on_node")" = "$leader" ] && break
			echo "note: the leader moved from node $leader during the restarts (attempt $attempt)"
			leader=$(leader_id "$on_node")
		done
		# One tree: each side works in its own directory.
		ON="$T/mnt/node$on_node/hist-on$round" OFF="$T/mnt/node$off_node/hist-off$round"
		mkdir "$ON" "$OFF"
		echo
		echo "history round $((round + 1)) of $rounds: node $leader leads; history on through node" \
			"$on_node's mount, off through node $off_node's"
		python3 - "$ON" "$OFF" "$files" "$T/hist-rates" <<'PY'
import os, statistics, sys, time
on, off, n, rates = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = os.urandom(4096)
lat = {}  # (op, side) -> [seconds]

def timed(op, side, fn):
    t0 = time.monotonic()
    fn()
    lat.setdefault((op, side), []).append(time.monotonic() - t0)

def create(p):
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)

def overwrite(p):
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, data)
    os.close(fd)

# rename: even i over i + 1 (which loses its last name); unlink: the odd
# ones, which the renames refilled.
phases = [
    ("create+write 4 KiB+close", lambda d, i: create(f"{d}/f{i}"), lambda i: True),
    ("overwrite 4 KiB (O_TRUNC)", lambda d, i: overwrite(f"{d}/f{i}"), lambda i: True),
    ("rename over a file", lambda d, i: os.rename(f"{d}/f{i}", f"{d}/f{(i + 1) % n}"),
     lambda i: i % 2 == 0 and i + 1 < n),
    ("unlink", lambda d, i: os.unlink(f"{d}/f{i}"), lambda i: i % 2 == 1),
]
sides = {"on": on, "off": off}
for op, fn, which in phases:
    for i in range(n):
        if not which(i):
            continue
        for side in (("on", "off") if i % 4 < 2 else ("off", "on")):
            timed(op, side, lambda: fn(sides[side], i))
print(f"{'operation':28} | {'on ops/s':>9} {'p50 us':>8} | {'off ops/s':>9} {'p50 us':>8} | on/off")
with open(rates, "a") as f:
    for op, _, _ in phases:
        a, b = lat[(op, "on")], lat[(op, "off")]
        ra, rb = len(a) / sum(a), len(b) / sum(b)
        print(f"{op:28} | {ra:9.1f} {statistics.median(a) * 1e6:8.0f} | "
              f"{rb:9.1f} {statistics.median(b) * 1e6:8.0f} | {ra / rb:.3f}x")
        f.write(f"{op}\t{ra}\t{rb}\n")
print(f"{n} files a side, 4 KiB each; the sides alternate operation by operation")
PY
		[ "$(leader_id "$on_node")" = "$leader" ] || echo "note: the leader changed during the round"
		for i in 1 2 3; do ctl "$i" barrier >/dev/null; done
		wait_until 20 digests_agree 1 2 3
		kept=$("$OMNIFSCTL" -c "$T/node$on_node/omnifs.conf" history --json "$ON/f1" |
			python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
		echo "digests agree on the 3 nodes; versions kept of one file written on the 'on' side: $kept"
	done
	echo
	echo "history on/off over $rounds rounds (ops/s: mean of the rounds; ratio: geometric mean, range):"
	python3 - "$T/hist-rates" <<'PY'
import math, sys
r = {}
for line in open(sys.argv[1]):
    op, on, off = line.rstrip("\n").split("\t")
    r.setdefault(op, []).append((float(on), float(off)))
print(f"{'operation':28} | {'on ops/s':>9} | {'off ops/s':>9} | on/off  (range)")
for op, v in r.items():
    ratios = [a / b for a, b in v]
    mean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print(f"{op:28} | {sum(a for a, _ in v) / len(v):9.1f} | {sum(b for _, b in v) / len(v):9.1f} | "
          f"{mean:.3f}x ({min(ratios):.3f}-{max(ratios):.3f})")
PY
}

if $fsbench || [ "$workloads" = copy ]; then passthrough_up; fi
# 3 nodes with mounts, CURVE, defaults otherwise; a file may hold the large one.
ELECTION_MS="${ELECTION_MS:-200}"
FS_CONFIG="[fs]\nmax_file_size_mb = $((mib > 64 ? mib * 2 : 128))"
EXTRA_CONFIG=$FS_CONFIG fs_cluster 3 2>/dev/null # keygen's chatter; failures are reported on stdout
leader=$(leader_id 1)
others=()
for i in 1 2 3; do [ "$i" = "$leader" ] || others+=("$i"); done
if [ "$via" = leader ]; then
	node=$leader reader=${others[0]}
else
	node=${others[0]} reader=${others[1]}
fi
if $fsbench; then fsbench_run; fi
if $history; then history_run; fi
if [ "$workloads" = writers ]; then writers_run; fi
if [ "$workloads" = copy ]; then copy_run; fi
