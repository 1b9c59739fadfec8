#!/usr/bin/env bash
# What users rely on when several nodes touch the same files:
# - a file rewritten in a loop on A (open O_TRUNC, write, close) while B
#   reads it in a loop: B never reads an empty or partial file;
# - the same name created from two nodes at once: one wins, the other gets
#   EEXIST, never two entries;
# - the same file renamed from two nodes at once: one rename wins, the other
#   fails with ENOENT; the file ends under exactly one of the new names;
# - a node stopped, changes made, the node restarted: it shows them.
. "$(dirname "$0")/lib.sh"

fs_cluster 3 plaintext

# --- rewrite on A, read on B ------------------------------------------------
python3 - "$M1/conf" "$M2/conf" <<'PY'
import os, sys, threading, time
a, b = sys.argv[1], sys.argv[2]
SIZE = 3000
def content(n):
    line = ("generation %08d\n" % n).encode()
    return (line * (SIZE // len(line) + 1))[:SIZE]
with open(a, "wb") as f:
    f.write(content(0))
# The file was created empty (open(O_CREAT) is its own change) and filled at
# close: until B has applied the close, B rightly sees it empty. The rewrites
# start once B has the first content; from then on B must never see less.
deadline = time.time() + 20
while True:
    try:
        with open(b, "rb") as f:
            if f.read() == content(0):
                break
    except FileNotFoundError:
        pass
    if time.time() > deadline:
        sys.exit("B never saw the first content")
    time.sleep(0.01)
stop = time.time() + 6
bad = []
reads = 0
def reader():
    global reads
    while time.time() < stop:
        try:
            with open(b, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            bad.append("missing"); continue
        reads += 1
        if len(data) != SIZE or data != content(int(data[11:19] or b"0")):
            bad.append("len %d: %r" % (len(data), data[:40]))
t = threading.Thread(target=reader)
t.start()
n = 0
while time.time() < stop:
    n += 1
    with open(a, "wb") as f:          # O_TRUNC, then writes, then close
        for i in range(0, SIZE, 1000):
            f.write(content(n)[i:i + 1000])
t.join()
print("rewrites %d, reads on the other node %d, bad reads %d" % (n, reads, len(bad)))
if bad or reads == 0:
    sys.exit("B saw an empty or partial file: %s" % bad[:3])
PY
log "rewrite/read loop: no empty or partial read"

# --- the same name created from two nodes at once ----------------------------
for round in $(seq 1 10); do
	( mkdir "$M1/race$round" 2>/dev/null && echo ok || echo fail ) >"$T/r1" &
	p1=$!
	( mkdir "$M2/race$round" 2>/dev/null && echo ok || echo fail ) >"$T/r2" &
	wait "$p1" $!
	won=$(cat "$T/r1" "$T/r2" | grep -c ok || true)
	[ "$won" = 1 ] || fail "mkdir race $round: $won winners"
done
ctl 3 barrier
[ "$(ls "$M3" | grep -c '^race')" = 10 ] || fail "mkdir races left duplicates: $(ls "$M3")"
log "10 mkdir races: exactly one winner each"

# --- the same file renamed from two nodes at once ----------------------------
for round in $(seq 1 10); do
	echo "$round" >"$M1/mv$round"
	ctl 2 barrier
	( mv "$M1/mv$round" "$M1/left$round" 2>/dev/null && echo ok || echo fail ) >"$T/r1" &
	p1=$!
	( mv "$M2/mv$round" "$M2/right$round" 2>/dev/null && echo ok || echo fail ) >"$T/r2" &
	wait "$p1" $!
	won=$(cat "$T/r1" "$T/r2" | grep -c ok || true)
	[ "$won" = 1 ] || fail "rename race $round: $won winners"
done
ctl 3 barrier
[ "$(ls "$M3" | grep -c '^\(left\|right\)')" = 10 ] || fail "rename races: $(ls "$M3")"
[ "$(ls "$M3" | grep -c '^mv')" = 0 ] || fail "rename races left the source"
log "10 rename races: exactly one winner each, one file each"

# --- a node stopped, changes made, restarted ---------------------------------
stop_node 3
echo "while away" >"$M1/while-away"
mkdir "$M2/dir-while-away"
rm -rf "$M1"/race*
start_node 3
wait_until 30 mountpoint -q "$M3"
shows_changes() {
	[ "$(cat "$M3/while-away" 2>/dev/null)" = "while away" ] && [ -d "$M3/dir-while-away" ] &&
		[ "$(ls "$M3" | grep -c '^race')" = 0 ]
}
wait_until 20 shows_changes
converged() { same_trees "$M1" "$M2" "$M3"; }
wait_until 20 converged
log "restarted node shows the changes made while it was away"
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
