#!/usr/bin/env bash
# A fleet: 3 voters and N learners (OMNIFS_LEARNERS, default 4; 20 for the
# full fleet, on demand), real omnifsd processes with mounts, CURVE on.
# Learners start with join = true and an empty data dir and are admitted
# with `omnifsctl member add --learner`; the 4th and later fetch from a
# learner before them (fan-out), the first three from one voter each (the
# next one when theirs leads).
# Then, with writers through a learner's mount and a voter's mount:
# a) every acknowledged file is on every mount, trees and digests equal;
# b) a learner killed (-9) and started again catches up and mounts;
# c) a learner stopped (SIGSTOP) for a few seconds, so that the learner
#    behind it falls back to a voter, then continued: all catch up;
# d) `status` and `member list` show each node's role, and the learners
#    the leader (status, health).
. "$(dirname "$0")/lib.sh"

LEARNERS=${OMNIFS_LEARNERS:-4}
VOTERS=3
ELECTION_MS=200
# Small learners: logs compacted early, so each holds little.
EXTRA_CONFIG="[compaction]\nmax_entries = 2000\nretain_entries = 500"

fs_cluster $VOTERS
log "voters up, leader n$(leader_id 1)"

LAST=$((VOTERS + LEARNERS))
t0=$SECONDS
# One change at a time: each returns once the voter runs it. Each node is
# started just before (the voters check that its key tried to connect in
# the last minute); the learners before it need not have caught up.
for i in $(seq $((VOTERS + 1)) $LAST); do
	MOUNT=1 join_init "$i" curve $(seq 1 $VOTERS)
	start_node "$i"
	wait_until 60 add_learner "$i"
done
log "$LEARNERS learners added in $((SECONDS - t0))s"
for i in $(seq $((VOTERS + 1)) $LAST); do
	wait_until 60 is_learner "$i"
	wait_until 60 mountpoint -q "$T/mnt/node$i"
	wait_until 60 is_caught_up "$i"
	eval "M$i=\$T/mnt/node$i"
done
log "$LEARNERS learners added, caught up and mounted in $((SECONDS - t0))s"

# d) roles
ctl 1 member list >"$T/list"
[ "$(grep -c ' learner' "$T/list")" = "$LEARNERS" ] || fail "member list: $(cat "$T/list")"
ctl "$LAST" status | grep -q '^role: *learner' || fail "n$LAST status: $(ctl "$LAST" status)"
ctl 1 status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["voters"] == [1, 2, 3], s["voters"]
assert len(s["learners"]) == int(sys.argv[1]), s["learners"]' "$LEARNERS" ||
	fail "status --json of n1 does not list the roles"
if [ "$LEARNERS" -ge 4 ]; then
	from_4() { [ "$(status_field 7 fetching_from)" = 4 ]; }
	wait_until 30 from_4
fi
# The learners show the voters' leader (from their sources' answers), in
# status and health.
same_leader() { [ "$(leader_id "$LAST")" = "$(leader_id 1)" ] && [ "$(leader_id 1)" != 0 ]; }
wait_until 30 same_leader
ctl "$LAST" health >"$T/health.out" || fail "health of n$LAST: $(cat "$T/health.out")"
grep -q "^ok: learner with quorum, leader n$(leader_id 1)," "$T/health.out" ||
	fail "health of n$LAST does not name the leader: $(cat "$T/health.out")"
ctl 4 barrier || fail "barrier on learner n4"
log "roles shown, learners name leader n$(leader_id 1); barrier on a learner"

# Writers: one file at a time through a mount; an acknowledged write (the
# close returned 0) goes into $T/acked-<node>.
writer() {
	local node=$1 k=0 mnt="$T/mnt/node$1"
	mkdir -p "$mnt/w$node" 2>/dev/null || true
	: >"$T/acked-$node"
	while [ ! -e "$T/stop" ]; do
		if echo "value $k" >"$mnt/w$node/f$k" 2>/dev/null; then
			echo "w$node/f$k" >>"$T/acked-$node"
		fi
		k=$((k + 1))
	done
}
mkdir "$M1/w1" "$M4/w4"
writer 1 &
WRITER1=$!
writer 4 &
WRITER4=$!
acked() { [ "$(wc -l <"$T/acked-$1")" -ge "$2" ]; }
wait_until 30 acked 4 20
wait_until 30 acked 1 20

# b) a learner killed and started again
victim=$((VOTERS + 2))
kill_node "$victim"
wait_until 30 acked 4 40
start_node "$victim"
wait_until 60 mountpoint -q "$T/mnt/node$victim"
wait_until 60 is_caught_up "$victim"
log "learner n$victim killed and restarted: caught up"

# c) a learner stopped, then continued: the voters take writes meanwhile,
# and the learner behind it (n7) leaves it for a voter.
stopped=$((VOTERS + 1))
kill -STOP "${PIDS[$stopped]}"
n4=$(wc -l <"$T/acked-4")
wait_until 30 acked 1 $(($(wc -l <"$T/acked-1") + 20))
if [ "$LEARNERS" -ge 4 ]; then
	not_from_4() { [ "$(status_field 7 fetching_from)" != 4 ]; }
	wait_until 30 not_from_4
	echo "while n4 sleeps" >"$M7/through-n7" || fail "write through n7 while n4 is stopped"
	ctl 7 barrier || fail "barrier on n7 while its source n4 is stopped"
	wait_until 30 test -f "$M1/through-n7"
	log "n7 fetches from n$(status_field 7 fetching_from) while n4 is stopped; its write is on n1"
fi
kill -CONT "${PIDS[$stopped]}"
log "learner n$stopped stopped ($n4 writes through it acknowledged before), continued"
wait_until 30 acked 4 $((n4 + 20))
wait_until 30 is_caught_up "$stopped"
log "n$stopped caught up and took writes again"

touch "$T/stop"
wait "$WRITER1" "$WRITER4"

# a) every acknowledged write on every mount, trees and digests equal
all=$(seq 1 $LAST)
mounts=()
for i in $all; do mounts+=("$T/mnt/node$i"); done
for i in $all; do ctl "$i" barrier >/dev/null || fail "barrier on n$i"; done
log "barriers done on all $LAST nodes"
wait_until 60 digests_agree $all
wait_until 60 same_trees "${mounts[@]}"
for w in 1 4; do
	while read -r f; do
		for m in "${mounts[@]}"; do
			[ -f "$m/$f" ] || fail "$f, acknowledged through n$w, is missing on $m"
		done
	done <"$T/acked-$w"
done
log "$(cat "$T"/acked-* | wc -l) acknowledged writes on all $LAST mounts; digests equal: $(ctl 1 digest)"
log "PASS"
