#!/usr/bin/env bash
# What file history costs: the small-file workload (create+write 4 KiB+close
# as omnifs-fsbench's small rows, then overwrite: open O_TRUNC, write 4 KiB,
# close, which keeps the previous version; rename over a file; unlink)
# through two follower mounts of one 3-node cluster on loopback (release
# build, CURVE, every log write synced), in one run: one node with history
# on (the defaults), one with it off. History is a proposer's matter (the
# node that makes a change copies the old version into its transaction), so
# the two mounts differ in that alone. The two sides take turns operation by
# operation (which goes first alternates), so a machine whose load drifts
# (other work on a shared host) weighs on both alike; a second round swaps
# the two nodes' roles. Prints per round and operation each side's ops/s
# and p50 and the ratio on/off of the rates, then the rounds' mean (1.000x:
# free; the target is >= 0.9 for writes). Run as root (mounts).
#
#   tools/bench-history.sh [-n FILES]
#
# FILES small files per side (default 1000). ELECTION_MS as bench-fs.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
files=1000
while [ $# -gt 0 ]; do
	case "$1" in
	-n) files="$2"; shift 2 ;;
	*) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
. tools/bench-lib.sh
B="$OMNIFS_BUILD"

# Once a leader is elected, one follower is restarted with history on and
# the other with it off (restarting followers leaves the leader in place).
ELECTION_MS="${ELECTION_MS:-200}"
MOUNT=1
cluster_init 3 2>/dev/null
ready() {
	wait_until 30 mountpoint -q "$T/mnt/node$1"
	wait_until 20 has_leader "$1"
}
for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do ready "$i"; done
leader=$(leader_id 1)
f=()
for i in 1 2 3; do [ "$i" = "$leader" ] || f+=("$i"); done
# Two rounds, the followers' roles swapped in the second, so a difference
# between the two nodes (not history's) cancels out in the mean.
for round in 0 1; do
on_node=${f[$round]} off_node=${f[$((1 - round))]}
EXTRA_CONFIG="[history]\nenabled = true" write_config "$on_node" curve
EXTRA_CONFIG="[history]\nenabled = false" write_config "$off_node" curve
for i in "${f[@]}"; do
	stop_node "$i"
	start_node "$i"
	ready "$i"
done
[ "$(leader_id "$on_node")" = "$leader" ] || echo "note: the leader changed during the restarts"
# One tree: each side works in its own directory.
ON="$T/mnt/node$on_node/on$round" OFF="$T/mnt/node$off_node/off$round"
mkdir "$ON" "$OFF"
echo
echo "round $((round + 1)): 3 nodes on loopback, node $leader leads; history on through node" \
	"$on_node's mount, off through node $off_node's; $(nproc) cores," \
	"$(df --output=fstype "$T" | tail -1)"
python3 - "$ON" "$OFF" "$files" "$T/ratios" <<'PY'
import os, statistics, sys, time
on, off, n, ratios = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
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

sides = {"on": on, "off": off}
phases = [
    ("create+write 4 KiB+close", lambda d, i: create(f"{d}/f{i}")),
    ("overwrite 4 KiB (O_TRUNC)", lambda d, i: overwrite(f"{d}/f{i}")),
    ("rename over a file", lambda d, i: os.rename(f"{d}/f{i}", f"{d}/f{(i + 1) % n}")
        if i % 2 == 0 else None),
    ("unlink", lambda d, i: os.unlink(f"{d}/f{i}") if i % 2 == 1 else None),
]
for op, fn in phases:
    for i in range(n):
        order = ("on", "off") if i % 2 == 0 else ("off", "on")
        for side in order:
            if op.startswith("rename") and i % 2 or op == "unlink" and i % 2 == 0:
                continue
            timed(op, side, lambda: fn(sides[side], i))
print(f"{'operation':28} | {'on ops/s':>9} {'p50 us':>8} | {'off ops/s':>9} {'p50 us':>8} | on/off")
for op, _ in phases:
    a, b = lat[(op, "on")], lat[(op, "off")]
    ra, rb = len(a) / sum(a), len(b) / sum(b)
    print(f"{op:28} | {ra:9.1f} {statistics.median(a) * 1e6:8.0f} | "
          f"{rb:9.1f} {statistics.median(b) * 1e6:8.0f} | {ra / rb:.3f}x")
    with open(ratios, "a") as f:
        f.write(f"{op}\t{ra / rb}\n")
print(f"{n} files a side, 4 KiB each; the sides alternate operation by operation")
PY
for i in 1 2 3; do ctl "$i" barrier >/dev/null; done
wait_until 20 digests_agree 1 2 3
kept=$("$OMNIFSCTL" -c "$T/node$on_node/omnifs.conf" history --json "$ON/f1" |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "digests agree on the 3 nodes; versions kept of one file written on the 'on' side: $kept"
done
echo
echo "mean of the two rounds (geometric), history on/off:"
python3 - "$T/ratios" <<'PY'
import math, sys
r = {}
for line in open(sys.argv[1]):
    op, v = line.rstrip("\n").split("\t")
    r.setdefault(op, []).append(float(v))
for op, v in r.items():
    print(f"{op:28} | {math.exp(sum(map(math.log, v)) / len(v)):.3f}x")
PY
