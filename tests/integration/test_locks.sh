#!/usr/bin/env bash
# Cluster-wide locks on a real 3-node cluster with mounts:
# - flock on one node denies and blocks flock on the others, and a release
#   anywhere hands the lock on;
# - POSIX byte ranges across nodes: conflicts, F_GETLK (l_pid 0 for a holder
#   on another node), split by a partial unlock (locks_helper.py ranges);
# - a blocked flock interrupted by a signal fails with EINTR and leaves no
#   waiter behind;
# - lock files renamed and unlinked while held keep their lock (it is the
#   inode's), and a new file of the old name is another lock;
# - omnifsctl lock: exclusion, --wait, the command's exit status, release
#   when omnifsctl is killed;
# - a holder's node cut off from the others: they get the lock after the
#   lease, the cut-off node cannot change the tree and says its locks are
#   lost;
# - mutual exclusion under load: two processes per node increment a counter
#   file under flock; the final value equals the acknowledged increments;
# - again with the lock holder's node killed (-9) mid-run: the lock passes on
#   after the lease, and the count stays exact.
# The load runs OMNIFS_LOCK_SECONDS (default 15) per phase; 60 on demand.
. "$(dirname "$0")/lib.sh"

HELPER="$(dirname "$0")/locks_helper.py"
SECS=${OMNIFS_LOCK_SECONDS:-15}
LEASE_MS=2000
EXTRA_CONFIG="[locks]\nlease_ms = $LEASE_MS"
fs_cluster 3 plaintext

# Every client this test starts in the background, killed on exit (a hog
# waits for its go file for ever).
declare -a BG=()
CLEANUP_HOOKS+=('for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done')

# no_locks I: node I lists no holder and no waiter.
no_locks() { ! ctl "$1" locks --json | grep -q '"state"'; }
# no_waiters I: node I has no waiter.
no_waiters() { ! ctl "$1" locks --json | grep -q '"state":"waiting"'; }
# holds I PATTERN: node I lists a lock matching PATTERN (JSON text).
holds() { ctl "$1" locks --json | grep -q "$2"; }

# hold_until TAG: the command of a lock holder: touches $T/TAG.held, then
# waits for $T/TAG.go (or for $T to go: the cleanup removes it, and a holder
# left running would keep the test's output open).
hold_until() { echo "touch $T/$1.held; while [ -d $T ] && [ ! -e $T/$1.go ]; do sleep 0.05; done"; }

# hog I FILE TAG: a process on node I that takes flock FILE, touches
# $T/TAG.held and keeps it until $T/TAG.go appears. Sets HOG to its pid.
hog() {
	flock "$2" -c "$(hold_until "$3")" &
	HOG=$!
	BG+=("$HOG")
	wait_until 20 test -e "$T/$3.held"
}

log "flock across nodes"
echo x >"$M1/a.lock"
hog 1 "$M1/a.lock" a
ctl 2 barrier
if flock -n "$M2/a.lock" true; then fail "n2 took a flock held on n1"; fi
if flock -n -s "$M3/a.lock" true; then fail "n3 took a shared flock under n1's exclusive one"; fi
# A blocking flock on n3 waits, and gets the lock when n1 lets go.
flock "$M3/a.lock" -c "touch $T/a3.got" &
W=$!
BG+=("$W")
# n3 lists its request as a waiter (it was judged, and not granted), and the
# lock did not come to it.
wait_until 10 holds 3 '"state":"waiting"'
[ ! -e "$T/a3.got" ] || fail "n3's blocking flock got the lock while n1 held it"
touch "$T/a.go"
wait "$HOG"
wait_until 20 test -e "$T/a3.got"
wait "$W"
# Shared locks share across nodes.
flock -s "$M1/a.lock" -c "$(hold_until s)" &
S=$!
BG+=("$S")
wait_until 20 test -e "$T/s.held"
flock -n -s "$M2/a.lock" true || fail "n2 could not share n1's shared flock"
if flock -n "$M2/a.lock" true; then fail "n2 took an exclusive flock under n1's shared one"; fi
touch "$T/s.go"
wait "$S"
wait_until 20 no_locks 1

log "POSIX byte ranges across nodes"
python3 "$HELPER" ranges "$M1/r" "$M2/r" "$M3/r"
wait_until 20 no_locks 2

log "EINTR: an interrupted flock leaves no waiter"
hog 1 "$M1/a.lock" b
python3 "$HELPER" eintr "$M2/a.lock" || fail "the interrupted flock did not fail with EINTR"
wait_until 10 no_waiters 2
# flock(1) ended by timeout(1)'s SIGTERM while it waits: gone, and so is its waiter.
set +e
timeout 1 flock "$M3/a.lock" true
rc=$?
set -e
[ $rc = 124 ] || fail "flock under timeout(1) exited $rc, not 124 (killed while waiting)"
wait_until 10 no_waiters 3
holds 2 '"node":1' || fail "n2 does not list n1's lock"
touch "$T/b.go"
wait "$HOG"
# Nobody got the lock behind our back: n3 takes it at once.
wait_until 20 flock -n "$M3/a.lock" true

log "renamed and unlinked while held"
echo x >"$M1/x.lock"
hog 1 "$M1/x.lock" c
mv "$M2/x.lock" "$M2/y.lock"
if flock -n "$M2/y.lock" true; then fail "renaming the lock file freed its lock"; fi
rm "$M3/y.lock"
echo new >"$M3/x.lock"
flock -n "$M3/x.lock" true || fail "a new file of the old name was locked too"
holds 3 '"kind":"flock"' || fail "the unlinked file's lock is not listed"
touch "$T/c.go"
wait "$HOG"
wait_until 20 no_locks 1
wait_until 20 no_locks 3

log "omnifsctl lock"
ctl 1 lock job -- sh -c "$(hold_until job)" &
J=$!
BG+=("$J")
wait_until 20 test -e "$T/job.held"
set +e
ctl 2 lock job --wait 0.5 -- true 2>/dev/null
rc=$?
set -e
[ $rc = 1 ] || fail "omnifsctl lock took a lock held on n1 (exit $rc)"
holds 3 '"resource":"name job","kind":"named"' || fail "n3 does not list the named lock"
touch "$T/job.go"
wait "$J" || fail "omnifsctl lock on n1 failed"
set +e
ctl 2 lock job --wait 10 -- sh -c 'exit 7'
rc=$?
set -e
[ $rc = 7 ] || fail "omnifsctl lock exited $rc, not the command's 7"
# Killed with its command still running: the lock goes with it.
"$OMNIFSCTL" -s "$T/node1/ctl.sock" lock job2 -- sh -c "echo \$\$ >$T/sleeper; exec sleep 600" &
C=$!
BG+=("$C")
wait_until 20 test -s "$T/sleeper"
CLEANUP_HOOKS+=("kill $(cat "$T/sleeper") 2>/dev/null")
kill -9 "$C"
wait "$C" 2>/dev/null || true
ctl 2 lock job2 --wait 10 -- true || fail "the lock of a killed omnifsctl was not released"
kill "$(cat "$T/sleeper")"

log "a holder's node cut off"
echo x >"$M1/p.lock"
hog 2 "$M2/p.lock" d
ctl 3 barrier
if flock -n "$M3/p.lock" true; then fail "n3 took a flock held on n2"; fi
ctl 2 debug fault 0 both >/dev/null
cut_at=$SECONDS
# The others take it once n2's lease expired.
wait_until 30 flock -n "$M1/p.lock" true
log "n1 took the cut-off n2's lock $((SECONDS - cut_at))s after the cut"
# n2 is fenced: it cannot change the tree...
if echo x 2>/dev/null >"$M2/fenced"; then fail "n2 changed the tree while cut off"; fi
# ... and says its locks are lost.
n2_lost() { [ "$(status_field 2 locks_lost)" -ge 1 ]; }
wait_until 30 n2_lost
ctl 2 status | grep -q "lost [1-9]" || fail "n2's status does not say its locks were lost"
ctl 2 debug fault 0 none >/dev/null
wait_until 30 has_leader 2
can_write() { echo x 2>/dev/null >"$T/mnt/node$1/probe"; }
wait_until 30 can_write 2
touch "$T/d.go"
wait "$HOG"
wait_until 30 no_locks 1
wait_until 30 no_locks 2

# load PHASE SECONDS: two counter workers per node; their pids in WORKERS.
load() {
	WORKERS=()
	local i k
	for i in 1 2 3; do
		for k in 1 2; do
			python3 "$HELPER" counter "$T/mnt/node$i/c.lock" "$T/mnt/node$i/counter" "$2" \
				"$T/$1.n$i.w$k" &
			WORKERS+=($!)
			BG+=($!)
		done
	done
}

# tally PHASE: "acked unknown" summed over the phase's workers.
tally() { cat "$T/$1".n*.w* | awk '{a += $1; u += $2} END {print a, u}'; }

log "mutual exclusion under load, ${SECS}s"
echo 0 >"$M1/counter"
echo x >"$M1/c.lock"
ctl 2 barrier
ctl 3 barrier
load p1 "$SECS"
for w in "${WORKERS[@]}"; do wait "$w"; done
read -r acked unknown <<<"$(tally p1)"
ctl 1 barrier
final=$(cat "$M1/counter")
log "p1: $acked increments acknowledged, $unknown unknown, counter $final"
[ "$acked" -gt 0 ] || fail "no increment succeeded"
# A write that failed (a worker stops at its first error; none is expected,
# but a slow machine may lose a quorum for a moment) may or may not count.
[ "$final" -ge "$acked" ] || fail "counter $final after $acked acknowledged increments: exclusion broken"
[ "$final" -le $((acked + unknown)) ] ||
	fail "counter $final after $acked acknowledged increments and $unknown unknown"
for i in 1 2 3; do grep -q . "$T"/p1.n$i.w1 || fail "n$i's worker wrote no tally"; done

log "again, with the holder's node killed mid-run"
K=3
base=$final
load p2 "$SECS"
# A process on n$K waits for the lock among the workers, then keeps it.
flock "$M3/c.lock" -c "$(hold_until k)" &
KH=$!
BG+=("$KH")
wait_until 60 test -e "$T/k.held"
before=$(cat "$M1/counter")
kill_node "$K"
killed_at=$SECONDS
log "n$K killed holding the lock (counter at $before)"
# The others go on once the lease of n$K expired.
progressed() { [ "$(cat "$M1/counter")" -gt "$before" ]; }
wait_until $((LEASE_MS / 1000 + 30)) progressed
log "the lock passed on $((SECONDS - killed_at))s after the kill"
for w in "${WORKERS[@]}"; do wait "$w"; done
touch "$T/k.go"
wait "$KH" 2>/dev/null || true
read -r acked unknown <<<"$(tally p2)"
ctl 1 barrier
final=$(cat "$M1/counter")
log "p2: $acked increments acknowledged, $unknown unknown, counter $((final - base)) more"
[ $((final - base)) -ge "$acked" ] || fail "counter lost increments: $((final - base)) < $acked"
[ $((final - base)) -le $((acked + unknown)) ] ||
	fail "counter $((final - base)) more than $acked acknowledged + $unknown unknown"
ctl 1 status | grep -q "^locks: " || fail "status does not show the locks line"
log "ok"
