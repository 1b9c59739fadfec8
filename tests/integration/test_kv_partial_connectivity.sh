#!/usr/bin/env bash
# The paper's partial-connectivity scenarios on real daemons, links cut with
# the transport's fault switch:
# - quorum-loss (5 nodes): every link is cut but those of one node A, which
#   is not the leader. Raft-style "elect only when the leader seems dead"
#   deadlocks here (A still hears the old leader); OmniPaxos elects A, the only
#   quorum-connected node, and keeps deciding.
# - chained (3 nodes): only the link between the leader B and C is cut. No
#   livelock: the cluster keeps deciding through A.
# Each asserts new writes are decided within 4 election timeouts of the cut
# (plus 1 s of slack for process start-up on a loaded machine).
. "$(dirname "$0")/lib.sh"

ELECTION_MS=200
bound_s=$(python3 -c "print(4 * $ELECTION_MS / 1000 + 1.0)")

# cut X Y: drop all traffic between nodes X and Y, both ways, on both sides.
cut() {
	ctl "$1" debug fault "$2" both
	ctl "$2" debug fault "$1" both
}

# decided_within NODE LABEL: a put at NODE, retried until it succeeds; fails
# the test if that takes longer than the bound.
decided_within() {
	local node=$1 label=$2 t0
	t0=$(date +%s.%N)
	until ctl "$node" kv put "$label" ok 2>/dev/null; do
		python3 -c "import sys; sys.exit(0 if float('$(date +%s.%N)') - $t0 < 15 else 1)" ||
			fail "$label: nothing decided within 15 s"
	done
	local took
	took=$(python3 -c "print(round(float('$(date +%s.%N)') - $t0, 3))")
	log "$label: decided ${took}s after the cut (bound ${bound_s}s)"
	python3 -c "import sys; sys.exit(0 if $took <= $bound_s else 1)" ||
		fail "$label: took ${took}s, over 4 election timeouts"
}

# --- quorum loss, 5 nodes ----------------------------------------------------
cluster_up 5 plaintext
ctl 1 kv put warmup 1
C=$(leader_id 1)
A=$(((C % 5) + 1))
log "quorum-loss: leader C = n$C, hub A = n$A"
others=()
for i in 1 2 3 4 5; do [ "$i" != "$A" ] && others+=("$i"); done
for x in "${others[@]}"; do
	for y in "${others[@]}"; do
		[ "$x" -lt "$y" ] && cut "$x" "$y"
	done
done
decided_within "$A" quorum-loss
new_leader=$(leader_id "$A")
log "quorum-loss: new leader n$new_leader"
[ "$new_leader" = "$A" ] || fail "expected the hub n$A to lead, got n$new_leader"
for i in 1 2 3 4 5; do stop_node "$i"; done
rm -rf "$T"/node* "$T"/mnt
PIDS=()

# --- chained, 3 nodes ----------------------------------------------------------
cluster_up 3 plaintext
ctl 1 kv put warmup 1
B=$(leader_id 1)
C=$(((B % 3) + 1))
A=$(((C % 3) + 1))
log "chained: leader B = n$B, cut from C = n$C; A = n$A talks to both"
cut "$B" "$C"
decided_within "$A" chained-a
decided_within "$B" chained-b
sleep 1
decided_within "$A" chained-a-later
log "chained: leader after the cut n$(leader_id "$A")"
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
