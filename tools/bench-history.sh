#!/usr/bin/env bash
# What file history costs: the small-file workload of omnifs-fsbench
# (create+write 4 KiB+close, stat, read, rename over a file, unlink) and an
# overwrite workload (open O_TRUNC, write 4 KiB, close: each keeps the
# previous version) through two follower mounts of one 3-node cluster on
# loopback (release build, CURVE, every log write synced), in one run: one
# node with history on (the defaults), one with it off. History is a
# proposer's matter (the node that makes a change copies the old version
# into its transaction), so the two mounts differ in that alone. Each
# workload runs twice, on/off then off/on, so neither side always goes
# first. The last column is the ratio on/off of the rates (1.000x: free).
# Run as root (mounts).
#
#   tools/bench-history.sh [-n FILES]
#
# FILES small files per run (default 1000). ELECTION_MS as bench-fs.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
files=1000
while [ $# -gt 0 ]; do
	case "$1" in
	-n) files="$2"; shift 2 ;;
	*) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
tools/install-deps.sh >/dev/null
tools/build.sh release >/dev/null
B="$PWD/build/release"
export OMNIFS_BUILD="$B"
. tests/integration/lib.sh
trap cleanup EXIT

# Node 3 leads (highest priority); node 1 keeps history, node 2 does not.
ELECTION_MS="${ELECTION_MS:-200}"
MOUNT=1
cluster_init 3 2>/dev/null
EXTRA_CONFIG="[consensus]\nleader_priority = 10" write_config 3 curve
EXTRA_CONFIG="[history]\nenabled = true" write_config 1 curve
EXTRA_CONFIG="[history]\nenabled = false" write_config 2 curve
for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do
	wait_until 30 mountpoint -q "$T/mnt/node$i"
	wait_until 20 has_leader "$i"
done
wait_until 20 test "$(leader_id 1)" = 3
# One tree: each side works in its own directory (fsbench names its own by
# its pid, the same on both sides).
ON="$T/mnt/node1/on" OFF="$T/mnt/node2/off"
mkdir "$ON" "$OFF"
echo "history: 3 nodes on loopback, node 3 leads; history on through node 1's mount," \
	"off through node 2's; $(nproc) cores, $(df --output=fstype "$T" | tail -1)"

# overwrite DIR N: N files of 4 KiB made, then each overwritten (open
# O_TRUNC, write, close) N times in turn; prints the overwrites' ops/s.
overwrite() {
	python3 - "$1" "$2" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
files = [os.path.join(d, f"f{i}") for i in range(min(n, 100))]
for p in files:
    with open(p, "wb") as f:
        f.write(os.urandom(4096))
data = os.urandom(4096)
busy = 0.0
for k in range(n):
    p = files[k % len(files)]
    t0 = time.monotonic()
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, data)
    os.close(fd)
    busy += time.monotonic() - t0
for p in files:
    os.unlink(p)
os.rmdir(d)
print(f"{n / busy:.1f}")
PY
}

for order in "on off" "off on"; do
	set -- $order
	first=$([ "$1" = on ] && echo "$ON" || echo "$OFF")
	second=$([ "$2" = on ] && echo "$ON" || echo "$OFF")
	echo
	echo "== small files: first column history $1, second history $2 (ratio $1/$2)"
	"$B/tools/omnifs-fsbench" -n "$files" -o small "$first" "$second"
	a=$(overwrite "$first/ow.$$" "$files")
	b=$(overwrite "$second/ow.$$" "$files")
	echo "overwrite 4 KiB (O_TRUNC+write+close): history $1 $a ops/s, history $2 $b ops/s," \
		"ratio $1/$2 $(python3 -c "print(f'{$a / $b:.3f}')")x"
done
for i in 1 2 3; do ctl "$i" barrier >/dev/null; done
wait_until 20 digests_agree 1 2 3
echo
echo "digests agree on the 3 nodes after the run"
