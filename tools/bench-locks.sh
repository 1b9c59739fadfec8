#!/usr/bin/env bash
# Lock benchmark: cluster-wide flock through the mounts of a 3-node omnifs
# cluster on loopback (release build, CURVE on, every log write synced).
# Prints, in milliseconds and in consensus rounds (log entries decided per
# operation, from the leader's decided index):
#   - uncontended flock(LOCK_EX) + flock(LOCK_UN) on one file, from the
#     leader's mount and from a follower's (a follower forwards to the leader);
#   - the contended hand-off rate: one process on each of two followers takes
#     the lock in turn for SECONDS (each holds it, empty-handed, until the
#     other asked), hand-offs per second and the time one takes.
# Run as root (mounts).
#
#   tools/bench-locks.sh [-n ITERATIONS] [-s SECONDS]
#
# ITERATIONS uncontended lock+unlock pairs per mount (default 500), SECONDS
# of hand-offs (default 10). Timing is the shipped default
# (election_timeout_ms 200); ELECTION_MS=... in the environment sets another.
set -euo pipefail
cd "$(dirname "$0")/.."
iters=500
secs=10
while [ $# -gt 0 ]; do
	case "$1" in
	-n) iters="$2"; shift 2 ;;
	-s) secs="$2"; shift 2 ;;
	*) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
. tools/bench-lib.sh

ELECTION_MS="${ELECTION_MS:-200}"
fs_cluster 3 2>/dev/null
leader=$(leader_id 1)
followers=()
for i in 1 2 3; do [ "$i" = "$leader" ] || followers+=("$i"); done
echo x >"$T/mnt/node$leader/bench.lock"
for i in 1 2 3; do ctl "$i" barrier >/dev/null; done
decided() { status_field "$leader" decided_idx; }

# uncontended MOUNT: median and p99 of lock+unlock in ms, one line of numbers.
uncontended() {
	python3 - "$1" "$iters" <<'PY'
import fcntl, os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDWR)
t = []
for _ in range(n):
    t0 = time.perf_counter()
    fcntl.flock(fd, fcntl.LOCK_EX)
    fcntl.flock(fd, fcntl.LOCK_UN)
    t.append((time.perf_counter() - t0) * 1000)
t.sort()
print("%.2f %.2f" % (t[len(t) // 2], t[min(len(t) - 1, len(t) * 99 // 100)]))
PY
}

# pingpong MOUNT SECONDS START: takes the lock in turn with the other
# process until SECONDS after START; prints its acquisitions.
pingpong() {
	python3 - "$1" "$2" "$3" <<'PY'
import fcntl, os, sys, time
path, secs, start = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
fd = os.open(path, os.O_RDWR)
n = 0
end = time.monotonic() + secs
while time.monotonic() < end:
    fcntl.flock(fd, fcntl.LOCK_EX)
    n += 1
    fcntl.flock(fd, fcntl.LOCK_UN)
    # Give the other side its turn: without it the releasing process may
    # take the lock again before the waiter on the other node is woken.
    time.sleep(0.0005)
print(n)
PY
}

printf '%-34s %12s %12s %14s\n' "lock+unlock (flock)" "median ms" "p99 ms" "rounds/pair"
for who in leader follower; do
	node=$leader
	[ $who = follower ] && node=${followers[0]}
	d0=$(decided)
	read -r med p99 <<<"$(uncontended "$T/mnt/node$node/bench.lock")"
	d1=$(decided)
	printf '%-34s %12s %12s %14.2f\n' "uncontended, via the $who" "$med" "$p99" \
		"$(echo "($d1 - $d0) / $iters" | bc -l)"
done

start=$(($(date +%s) + 2))
d0=$(decided)
pingpong "$T/mnt/node${followers[0]}/bench.lock" "$secs" "$start" >"$T/pp1" &
p1=$!
pingpong "$T/mnt/node${followers[1]}/bench.lock" "$secs" "$start" >"$T/pp2" &
p2=$!
wait "$p1" "$p2"
d1=$(decided)
total=$(($(cat "$T/pp1") + $(cat "$T/pp2")))
echo
printf '%-34s %12s %12s %14s\n' "contended, two followers" "hand-offs/s" "ms each" "rounds each"
printf '%-34s %12.1f %12.2f %14.2f\n' "n${followers[0]} <-> n${followers[1]}" \
	"$(echo "$total / $secs" | bc -l)" "$(echo "$secs * 1000 / $total" | bc -l)" \
	"$(echo "($d1 - $d0) / $total" | bc -l)"
