#!/usr/bin/env bash
# Disaster recovery and repair, on real daemons with mounts:
# a) two of three nodes are killed and their data wiped, and the third is
#    killed too (kill -9: its state is kept as of its last flush, behind its
#    log); it refuses --force-new-cluster without a confirmation, and a lost
#    node's id as a new member; with --yes it says what may be lost, applies
#    the entries of its log that its state lacks and becomes a one-member
#    cluster after them (the digest it had before the kill), takes writes,
#    and grows back to three with `member add` (new ids 4 and 5); every file
#    is on every node.
# b) a node's state files are damaged: it refuses to start with a message
#    naming the state and the repair; --drop-state, a start, and it fetches
#    the state from the others: equal digests and trees.
# c) a node's log is damaged: the message and --drop-state name `member
#    replace` (an id never comes back without its log).
. "$(dirname "$0")/lib.sh"

is_caught_up() { [ "$(status_field "$1" caught_up)" = True ]; }

fs_cluster 3
mkdir -p "$M1/srv/data"
for i in $(seq 1 40); do echo "file $i" >"$M1/srv/data/f$i"; done
ctl 3 barrier >/dev/null
wait_until 20 digests_agree 1 2 3
before=$(tree_listing "$M3")
# Nothing is written after this (an idle cluster proposes nothing).
digest3=$(ctl 3 digest)
[ -n "$digest3" ] || fail "no digest from node 3"

# a) Nodes 1 and 2 are gone for good; node 3 crashes.
kill_node 1
kill_node 2
rm -rf "$T/node1/data" "$T/node2/data"
kill_node 3
join_init 4 curve 3
if "$OMNIFSD" -c "$T/node3/omnifs.conf" --force-new-cluster </dev/null >"$T/fnc0.out" \
	2>"$T/fnc0.err"; then
	fail "--force-new-cluster went on without a confirmation"
fi
grep -q "needs a confirmation" "$T/fnc0.err" || fail "no confirmation asked: $(cat "$T/fnc0.err")"
if "$OMNIFSD" -c "$T/node3/omnifs.conf" --force-new-cluster --yes 1 "$(node_addr 4)" \
	"$(node_pub 4)" >"$T/fnc1.out" 2>&1; then
	fail "--force-new-cluster took a lost node's id"
fi
"$OMNIFSD" -c "$T/node3/omnifs.conf" --force-new-cluster --yes >"$T/fnc.out" 2>&1 ||
	fail "--force-new-cluster failed: $(cat "$T/fnc.out")"
cat "$T/fnc.out"
grep -q "may be lost" "$T/fnc.out" || fail "no word on what may be lost"
# 40 small files fill no memtable: the state was not flushed since they
# were written, so this checks the crash case.
grep -q "applied the log's entries" "$T/fnc.out" ||
	fail "the state was not behind the log after kill -9"
grep -q "the new cluster starts from @${digest3%% *}\$" "$T/fnc.out" ||
	fail "not after the last entry node 3 applied (@${digest3%% *})"
start_node 3
wait_until 30 mountpoint -q "$M3"
wait_until 30 has_leader 3
[ "$(ctl 3 digest)" = "$digest3" ] || fail "the state changed: $(ctl 3 digest), was $digest3"
echo "after" >"$M3/srv/data/after"
[ "$(tree_listing "$M3" | grep -vc 'srv/data/after')" = "$(grep -c . <<<"$before")" ] ||
	fail "files went missing"
ctl 3 kv put alone yes >/dev/null || fail "node 3 alone takes no KV write"
log "node 3 alone: $(ctl 3 digest)"

# Grow back to three under new ids.
start_node 4
ctl 3 member add 4 "$(node_addr 4)" "$(node_pub 4)" >/dev/null || fail "member add 4"
wait_until 60 is_caught_up 4
wait_until 30 mountpoint -q "$T/mnt/node4"
M4=$T/mnt/node4
join_init 5 curve 3 4
start_node 5
ctl 3 member add 5 "$(node_addr 5)" "$(node_pub 5)" >/dev/null || fail "member add 5"
wait_until 60 is_caught_up 5
wait_until 30 mountpoint -q "$T/mnt/node5"
M5=$T/mnt/node5
ctl 3 barrier >/dev/null
ctl 4 barrier >/dev/null
ctl 5 barrier >/dev/null
wait_until 30 digests_agree 3 4 5
wait_until 30 same_trees "$M3" "$M4" "$M5"
[ "$(cat "$M5/srv/data/f33")" = "file 33" ] || fail "a file is missing on node 5"
echo "from 5" >"$M5/srv/data/from5"
wait_until 20 test -f "$M4/srv/data/from5"
log "back to three members: $(ctl 4 digest)"

# b) Node 5's state is damaged while it is down.
stop_node 5
for f in "$T/node5/data/state"/*; do
	[ -f "$f" ] && head -c 4096 /dev/urandom >"$f"
done
echo "while 5 is down" >"$M3/srv/data/meanwhile"
if "$OMNIFSD" -c "$T/node5/omnifs.conf" >"$T/broken.out" 2>&1; then
	fail "node 5 started on a damaged state"
fi
cat "$T/broken.out"
grep -q "KV state ($T/node5/data/state) is damaged" "$T/broken.out" ||
	fail "the message does not name the state"
grep -q -- "--drop-state" "$T/broken.out" || fail "the message does not name the repair"
"$OMNIFSD" -c "$T/node5/omnifs.conf" --drop-state --yes || fail "--drop-state failed"
ls -d "$T/node5/data"/state.dropped-* >/dev/null || fail "the damaged state was not kept aside"
start_node 5
wait_until 30 mountpoint -q "$M5"
wait_until 60 is_caught_up 5
ctl 5 barrier >/dev/null
wait_until 30 digests_agree 3 4 5
wait_until 30 same_trees "$M3" "$M4" "$M5"
[ "$(cat "$M5/srv/data/meanwhile")" = "while 5 is down" ] || fail "node 5 missed a change"
log "node 5 repaired: $(ctl 5 digest)"

# c) Node 4's log is damaged: no repair under its id; the message says to
# replace it, and --drop-state refuses.
stop_node 4
for f in "$T/node4/data/log"/*; do
	[ -f "$f" ] && head -c 4096 /dev/urandom >"$f"
done
if "$OMNIFSD" -c "$T/node4/omnifs.conf" >"$T/broken4.out" 2>&1; then
	fail "node 4 started on a damaged log"
fi
cat "$T/broken4.out"
grep -q "consensus log ($T/node4/data/log) is damaged" "$T/broken4.out" ||
	fail "the message does not name the log"
grep -q "member replace 4 " "$T/broken4.out" || fail "the message does not name member replace"
if "$OMNIFSD" -c "$T/node4/omnifs.conf" --drop-state --yes >"$T/drop4.out" 2>&1; then
	fail "--drop-state went on with a damaged log"
fi
grep -q "member replace 4 " "$T/drop4.out" || fail "--drop-state: $(cat "$T/drop4.out")"
log "ok"
