#!/usr/bin/env bash
# `omnifsctl barrier` keeps its word through the mount: once it returns, a
# stat or read on that node shows what other nodes changed, even what its
# kernel had cached just before, and it keeps to its -t:
# - a flood of changes from other nodes past the invalidation queue's bound
#   (lowered to 1 with the hidden [fs] inval_queue_max, meant for tests, so
#   a few hundred changes overflow it) degrades to coarser invalidations,
#   never to none;
# - a node that caught up by a state transfer (the log compacted past it
#   while it was cut off) has its kernel caches invalidated too;
# - a node that cannot reach the leader answers ETIMEDOUT within -t.
# The kernel caches for a minute here (the hidden [fs] kernel_cache_ms): a
# missed invalidation shows as a stale read rather than healing itself after
# the usual second.
. "$(dirname "$0")/lib.sh"

# retain_entries: the flood's node catches up from the log; past
# max_entries + retain_entries, the state transfer's node cannot.
EXTRA_CONFIG="[compaction]\nmax_entries = 300\nretain_entries = 250\n[fs]\ninval_queue_max = 1\nkernel_cache_ms = 60000"
ELECTION_MS=1000
fs_cluster 3 plaintext

# Node W writes, node X watches (a follower: cutting it off moves no leader).
W=$(leader_id 1)
X=$((W % 3 + 1))
MW=$T/mnt/node$W
MX=$T/mnt/node$X
log "leader n$W writes, n$X watches"

# watch ROUND: files w$ROUND/f1..f10 with old content, read and stat'ed on X
# so its kernel caches their attributes and names.
watch() {
	mkdir "$MW/w$1"
	for i in $(seq 1 10); do printf 'old %d' "$i" >"$MW/w$1/f$i"; done
	ctl "$X" barrier
	for i in $(seq 1 10); do
		[ "$(cat "$MX/w$1/f$i")" = "old $i" ] || fail "n$X: w$1/f$i is not the old content"
		stat -c %s "$MX/w$1/f$i" >/dev/null
	done
	ls "$MX/w$1" >/dev/null
}

# change ROUND: rewrites f3..f10 longer, renames f1, removes f2, on W.
change() {
	for i in $(seq 3 10); do
		printf 'new content of file %d, longer than before' "$i" >"$MW/w$1/f$i"
	done
	mv "$MW/w$1/f1" "$MW/w$1/g1"
	rm "$MW/w$1/f2"
}

# fresh ROUND: right after a barrier, X shows every change of change ROUND
# through its mount.
fresh() {
	local i want
	for i in $(seq 3 10); do
		want="new content of file $i, longer than before"
		[ "$(stat -c %s "$MX/w$1/f$i")" = "${#want}" ] ||
			fail "n$X: stat of w$1/f$i shows size $(stat -c %s "$MX/w$1/f$i") after the barrier, not ${#want}"
		[ "$(cat "$MX/w$1/f$i")" = "$want" ] ||
			fail "n$X: w$1/f$i reads '$(cat "$MX/w$1/f$i")' after the barrier"
	done
	[ "$(cat "$MX/w$1/g1")" = "old 1" ] || fail "n$X: w$1/g1 (renamed) is not there"
	[ "$(ls "$MX/w$1" | tr '\n' ' ')" = "f10 f3 f4 f5 f6 f7 f8 f9 g1 " ] ||
		fail "n$X: w$1 lists $(ls "$MX/w$1" | tr '\n' ' ')"
}

cut_off() { ctl "$X" debug fault 0 both >/dev/null; }
# Back in touch: a barrier before the node hears a quorum again fails at
# once with EROFS (it knows it had none).
reconnect() {
	ctl "$X" debug fault 0 none >/dev/null
	wait_until 30 has_leader "$X"
}

# --- a flood past the queue's bound -------------------------------------------
watch 1
cut_off
mkdir "$MW/flood"
for i in $(seq 1 40); do : >"$MW/flood/a$i"; done
change 1
for i in $(seq 1 40); do : >"$MW/flood/b$i"; done
reconnect
ctl "$X" barrier
fresh 1
grep -q "state transfer done" "$T/node$X/log" && fail "n$X caught up by state transfer, not from the log"
overflows=$(status_field "$X" invals_overflow)
[ "$overflows" -ge 1 ] || fail "n$X's invalidation queue never overflowed: the flood tested nothing"
log "flood: fresh after the barrier ($overflows overflows, $(status_field "$X" invals_coarse) names as directories)"

# --- a state transfer ---------------------------------------------------------
watch 2
cut_off
change 2
"$OMNIFS_BUILD/tools/omnifs-kvload" -s "$T/node$W/ctl.sock" -n 3000 -c 16 -b 100 -p bulk/ >"$T/load.out"
grep -q "puts 3000 ok 0 failed" "$T/load.out" || fail "the bulk load failed: $(cat "$T/load.out")"
compacted=$(status_field "$W" compacted_idx)
applied=$(status_field "$X" applied_idx)
[ "$compacted" -gt "$applied" ] || fail "n$W's log (compacted @$compacted) still holds n$X's next entry (@$applied)"
reconnect
transferred() { grep -q "state transfer done" "$T/node$X/log"; }
wait_until 60 transferred
ctl "$X" barrier
fresh 2
[ "$(status_field "$X" invals_replaced)" -ge 1 ] || fail "n$X's state was replaced without invalidations"
log "state transfer: fresh after the barrier"

# --- the timeout ----------------------------------------------------------------
cut_off
start=$SECONDS
if ctl "$X" -t 1 barrier >"$T/barrier.out" 2>&1; then
	fail "a barrier on a node cut off from the leader succeeded"
else
	rc=$?
fi
took=$((SECONDS - start))
cat "$T/barrier.out"
[ "$rc" = 1 ] || fail "barrier -t 1 exited with $rc, not 1 (the daemon's answer)"
grep -q "Connection timed out" "$T/barrier.out" || fail "barrier -t 1 did not say ETIMEDOUT"
grep -q "within 1000 ms" "$T/barrier.out" || fail "barrier -t 1 did not keep to its timeout"
[ "$took" -le 3 ] || fail "barrier -t 1 took ${took}s"
reconnect
ctl "$X" barrier
log "a node cut off from the leader: ETIMEDOUT within -t 1"

for i in 1 2 3; do stop_node "$i"; done
log "PASS"
