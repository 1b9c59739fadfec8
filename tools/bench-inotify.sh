#!/usr/bin/env bash
# inotify benchmark: how soon, and up to what write rate, a watcher on node B
# sees changes written on node A of a 3-node cluster on loopback (release
# build, CURVE on). Prints figures, asserts nothing.
#
#   tools/bench-inotify.sh [-n FILES] [-w WRITERS] [-s SECONDS]
#
# Latency: FILES small files (default 500) written one at a time on A; for
# each, the time from the writer's close(2) on A (which returns once the
# change is applied on A) to IN_CLOSE_WRITE for it on B, measured by a
# watcher on B; and B's own figure from its status: from the apply on B to
# the end of the replay's call (the kernel has emitted the events), p50/p99.
# Rate: WRITERS processes (default 4) on A write small files (a create and a
# content change each) as fast as they can for SECONDS (default 10), each in
# its own directory, watched on B (inotifywait -r); printed are A's changes
# applied on B per second, the replays done per second, and how many were
# dropped (queue full or too late): the replay keeps up when none are and
# the queue drains at once.
# Run as root (mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
files=500
writers=4
seconds=10
while [ $# -gt 0 ]; do
	case "$1" in
	-n) files="$2"; shift 2 ;;
	-w) writers="$2"; shift 2 ;;
	-s) seconds="$2"; shift 2 ;;
	*) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
. tools/bench-lib.sh

fs_cluster 3
A=$M1
B=$M2
stat_b() { status_field 2 "$1"; }
mkdir "$A/lat" "$A/rate"
ctl 2 barrier >/dev/null

# The watcher and the writer of the latency run: one process, so both
# clocks are one (ctypes for inotify: no module needed).
python3 - "$A/lat" "$B/lat" "$files" <<'EOF'
import ctypes, os, select, struct, sys, time
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY, IN_CLOSE_WRITE = 0x2, 0x8
fd = libc.inotify_init1(os.O_NONBLOCK)
if fd < 0 or libc.inotify_add_watch(fd, dst.encode(), IN_MODIFY | IN_CLOSE_WRITE) < 0:
    sys.exit("inotify: " + os.strerror(ctypes.get_errno()))
lat, mod = [], []
missed = 0
for i in range(n):
    name = "f%d" % i
    with open(os.path.join(src, name), "w") as f:
        f.write("value %d\n" % i)
    t0 = time.monotonic()
    deadline = t0 + 10
    seen = False
    modified = None
    while not seen and time.monotonic() < deadline:
        select.select([fd], [], [], 0.5)
        try:
            buf = os.read(fd, 65536)
        except BlockingIOError:
            continue
        off = 0
        while off < len(buf):
            wd, mask, cookie, ln = struct.unpack_from("iIII", buf, off)
            ev = buf[off + 16:off + 16 + ln].rstrip(b"\0").decode()
            off += 16 + ln
            if ev == name and mask & IN_MODIFY and modified is None:
                modified = time.monotonic() - t0
            if ev == name and mask & IN_CLOSE_WRITE:
                seen = True
    if seen:
        lat.append(time.monotonic() - t0)
        mod.append(modified if modified is not None else lat[-1])
    else:
        missed += 1
def show(what, l):
    l.sort()
    pct = lambda p: l[min(len(l) - 1, int(len(l) * p))] * 1000
    print("latency, A's close to B's %s: %d files, p50 %.2f ms, p99 %.2f ms, max %.2f ms"
          % (what, len(l), pct(0.5), pct(0.99), l[-1] * 1000) if l else what + ": none")
show("IN_MODIFY", mod)
show("IN_CLOSE_WRITE (the replay keeps the file open 25 ms for more)", lat)
if missed:
    print("latency: %d files never seen on B" % missed)
EOF
echo "latency, apply on B to the events on B (B's status, 100 us buckets):" \
	"p50 $(stat_b replay_p50_us) us, p99 $(stat_b replay_p99_us) us, max $(stat_b replay_max_us) us"

# One directory per writer (no conflicts on a shared parent), all watched
# on B: a change nobody there could see needs no replay (replays_unseen).
for w in $(seq 1 "$writers"); do mkdir "$A/rate/w$w"; done
ctl 2 barrier >/dev/null
inotifywait -m -r -e create,close_write "$B/rate" >/dev/null 2>"$T/rate-watch.err" &
WATCHER=$!
CLEANUP_HOOKS+=("kill $WATCHER 2>/dev/null")
wait_until 20 grep -qs "Watches established" "$T/rate-watch.err"
queued0=$(stat_b replays_queued)
done0=$(stat_b replays_done)
dropped0=$(stat_b replays_dropped)
start=$(date +%s.%N)
pids=()
for w in $(seq 1 "$writers"); do
	(
		end=$((SECONDS + seconds))
		i=0
		while [ $SECONDS -lt $end ]; do
			echo "$i" >"$A/rate/w$w/$i" 2>>"$T/write-errors" || true
			i=$((i + 1))
		done
	) &
	pids+=($!)
done
wait "${pids[@]}" # not the daemons, which are jobs of this shell too
wrote=$(date +%s.%N)
ctl 2 barrier >/dev/null
queued1=$(stat_b replays_queued)
drained() { [ "$(stat_b replays_pending)" = 0 ]; }
wait_until 120 drained
finished=$(date +%s.%N)
done1=$(stat_b replays_done)
dropped1=$(stat_b replays_dropped)
kill "$WATCHER" 2>/dev/null || true
python3 - "$start" "$wrote" "$finished" "$((queued1 - queued0))" "$((done1 - done0))" \
	"$((dropped1 - dropped0))" "$writers" "$(wc -l <"$T/write-errors" 2>/dev/null || echo 0)" <<'EOF'
import sys
start, wrote, finished = map(float, sys.argv[1:4])
changes, done, dropped, writers, errors = map(int, sys.argv[4:9])
print("rate, %d writers on A for %.1f s: %.0f changes/s from A applied on B, %.0f replayed/s "
      "on B (the queue drained %.2f s after the writers stopped), %d dropped"
      % (writers, wrote - start, changes / (wrote - start), done / (finished - start),
         finished - wrote, dropped))
if errors:
    print("rate: %d writes failed on A (EAGAIN: creates of one node contend for its usage record)"
          % errors)
EOF
