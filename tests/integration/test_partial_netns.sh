#!/usr/bin/env bash
# Partial connectivity as users live it, on real daemons: each node in a
# network namespace of its own on a private switch (tests/lib/netns.sh), links
# cut with iptables DROP rules in both namespaces, both directions (the
# network failing, not the daemon's own fault switch).
#
# For 3 and then 5 nodes, every single-link cut in turn, and the OmniPaxos
# paper's scenarios (5 nodes: quorum-loss and constrained; 3 nodes: chained,
# which is the cut of the leader's link to one follower). While a cut holds,
# on every node that reaches a majority (directly or through a peer):
#   - `quorum` in its status is true and it names a route to the leader;
#   - its own write succeeds at the first try, within WRITE_BOUND_S;
#   - after `omnifsctl barrier` it reads every write made elsewhere.
# A node that reaches no majority fails a write with EROFS at once and its
# status says so, with since when it may be stale. After each heal every
# node reaches the same digest (nothing applied twice or missed).
#
# One cluster per node count; links are cut and healed in turn, every wait
# polls with a deadline. OMNIFS_PARTIAL_ROUNDS=N repeats the single-link
# sweep N times (default 1) for a longer soak.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../lib/netns.sh"

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, iptables)"; exit 77; }
command -v iptables >/dev/null || { echo "needs iptables"; exit 77; }

WRITE_BOUND_S=${WRITE_BOUND_S:-4}
ROUNDS=${OMNIFS_PARTIAL_ROUNDS:-1}
NET="opc$$" # namespace names: unique per run
SWITCH="$NET-sw"
declare -a NETNS=()

net_teardown() {
	local ns
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
}
CLEANUP_HOOKS+=(net_teardown)

# Machine I: namespace $NET-mI, address 10.77.0.I on the switch.
addr() { echo "10.77.0.$1"; }
node_addr() { echo "$(addr "$1"):7000"; } # replaces lib.sh's loopback ports
on() {
	local i=$1
	shift
	nsenter --net="/run/netns/$NET-m$i" -- "$@"
}

# lib.sh's start_node, inside the machine's namespace (nsenter, not `on`:
# nsenter execs the daemon, so $! is omnifsd itself, which stop_node signals).
# The control socket is a file in $T.
start_node() {
	local i=$1
	nsenter --net="/run/netns/$NET-m$i" -- "$OMNIFSD" -c "$T/node$i/omnifs.conf" \
		>>"$T/node$i/log" 2>&1 &
	PIDS[$i]=$!
	wait_until 20 ctl_quiet "$i" status
}

NETNS+=("$SWITCH")
netns_switch "$SWITCH"
for i in 1 2 3 4 5; do
	NETNS+=("$NET-m$i")
	netns_machine "$SWITCH" "$NET-m$i" "m$i" "$(addr "$i")"
done

# cut A B: iptables drops everything between machines A and B, both ways,
# in both namespaces.
cut() {
	local a=$1 b=$2
	on "$a" iptables -I INPUT -s "$(addr "$b")" -j DROP
	on "$a" iptables -I OUTPUT -d "$(addr "$b")" -j DROP
	on "$b" iptables -I INPUT -s "$(addr "$a")" -j DROP
	on "$b" iptables -I OUTPUT -d "$(addr "$a")" -j DROP
}

heal() {
	local i
	for i in $(seq 1 "$N"); do
		on "$i" iptables -F INPUT
		on "$i" iptables -F OUTPUT
	done
}

# status I: node I's status, its fields as shell variables S_<field>.
status() {
	eval "$(ctl "$1" status --json | python3 -c '
import json, shlex, sys
for k, v in json.load(sys.stdin).items():
    if not isinstance(v, (list, dict)):
        print("S_%s=%s" % (k, shlex.quote(str(v))))')"
}

# writable I: node I says a write made there can be decided now.
writable() {
	status "$1" || return 1
	[ "$S_quorum" = True ] && [ "$S_leader_route" != none ]
}

# no_majority I: node I says it reaches no majority, and since when it may be stale.
no_majority() {
	status "$1" || return 1
	[ "$S_quorum" = False ] && [ "$S_no_majority" = True ] && [ "$S_stale_since" != None ]
}

now() { date +%s.%N; }
elapsed() { python3 -c "print(round($(now) - $1, 3))"; }

# majority_ok LABEL T0 NODE...: every NODE writes once, all at once, right away
# (before they may have noticed a cut made at T0): each succeeds at the first try,
# within WRITE_BOUND_S of T0. Then every NODE says it can write and how it
# reaches the leader, and, after a barrier, reads every NODE's write.
majority_ok() {
	local label=$1 t0=$2 i j took rc routes="" writers=()
	shift 2
	for i in "$@"; do
		(
			rc=0
			ctl "$i" kv put "$label/n$i" "from-n$i" >"$T/w$i.out" 2>&1 || rc=$?
			echo "$rc $(elapsed "$t0")" >"$T/w$i"
		) &
		writers+=($!)
	done
	wait "${writers[@]}"
	for i in "$@"; do
		read -r rc took <"$T/w$i"
		[ "$rc" = 0 ] ||
			fail "$label: the write on n$i failed (it reaches a majority): $(cat "$T/w$i.out")"
		python3 -c "import sys; sys.exit(0 if $took <= $WRITE_BOUND_S else 1)" ||
			fail "$label: the write on n$i took ${took}s from the cut (bound ${WRITE_BOUND_S}s)"
		log "$label: write on n$i decided and applied ${took}s after the cut"
	done
	for i in "$@"; do
		wait_until 20 writable "$i"
		routes+=" n$i:$S_leader_route"
		if [ "$S_leader_route" = via ]; then routes+="-n$S_via"; fi
	done
	log "$label: routes to the leader:$routes"
	for i in "$@"; do
		ctl "$i" barrier >/dev/null || fail "$label: barrier on n$i failed"
		for j in "$@"; do
			[ "$(ctl "$i" kv get "$label/n$j")" = "from-n$j" ] ||
				fail "$label: after a barrier n$i does not read n$j's write"
		done
	done
}

# minority_erofs LABEL NODE: NODE says it reaches no majority and fails a
# write with EROFS at once; it still serves reads.
minority_erofs() {
	local label=$1 i=$2 t0 took
	wait_until 20 no_majority "$i"
	t0=$(now)
	if ctl "$i" kv put "$label/minority" x >"$T/out" 2>&1; then
		fail "$label: a write on n$i, which reaches no majority, succeeded"
	fi
	took=$(elapsed "$t0")
	grep -q "cannot reach a majority" "$T/out" || fail "$label: n$i: $(cat "$T/out")"
	python3 -c "import sys; sys.exit(0 if $took <= 1.0 else 1)" ||
		fail "$label: n$i took ${took}s to refuse a write"
	ctl "$i" kv get warm >/dev/null || fail "$label: n$i no longer serves reads"
	status "$i"
	log "$label: n$i refuses writes (EROFS in ${took}s), may be stale since $S_stale_since"
}

# healed: links back, every node in step, the same digest everywhere.
healed() {
	heal
	local all
	all=$(seq 1 "$N")
	for i in $all; do wait_until 20 writable "$i"; done
	# shellcheck disable=SC2086
	wait_until 30 digests_agree $all
}

cluster() {
	cluster_init "$1"
	for i in $(seq 1 "$N"); do start_node "$i"; done
	for i in $(seq 1 "$N"); do wait_until 30 writable "$i"; done
	ctl 1 kv put warm 1 >/dev/null
	log "$N nodes up, leader n$(leader_id 1)"
}

cluster_down() {
	for i in $(seq 1 "$N"); do stop_node "$i"; done
	rm -rf "$T"/node*
}

# every single-link cut of the running cluster, in turn
single_links() {
	local a b round t0
	for round in $(seq 1 "$ROUNDS"); do
		for a in $(seq 1 "$N"); do
			for b in $(seq $((a + 1)) "$N"); do
				log "--- $N nodes: link n$a - n$b cut (leader n$(leader_id 1))"
				t0=$(now)
				cut "$a" "$b"
				# shellcheck disable=SC2046
				majority_ok "r$round-$N-cut$a-$b" "$t0" $(seq 1 "$N")
				healed
			done
		done
	done
}

# reset_while_forwarding: a follower F's write is on its way to the leader L
# when the TCP connection carrying it is reset (iptables: first F's packets
# to L are dropped, so the write waits in F's socket buffer; then F answers
# them with a reset, which loses it). The link comes back at once; the write
# must be decided within WRITE_BOUND_S, not left to commit_timeout_ms. F is
# cut from the third node meanwhile, so its write cannot be relayed through
# it (replica_step.c): only sending it to L again saves it.
links_down_more() { [ "$(grep -c "link to n$2 down" "$T/node$1/log" || true)" -gt "$3" ]; }
# unacked I J BYTES: node I's connection to J's port holds at least BYTES
# sent and not acknowledged (what `ss` shows as Send-Q).
unacked() {
	local q
	q=$(on "$1" ss -tnH state established dst "$(addr "$2")" dport = :7000 |
		awk '{q += $2} END {print q + 0}')
	[ "$q" -ge "$3" ]
}
# link_failures I J: how many times node I's status counts its link to J failed.
link_failures() {
	ctl "$1" status --json | python3 -c '
import json, sys
print(next(p["link_failures"] for p in json.load(sys.stdin)["peers"] if p["id"] == int(sys.argv[1])))' "$2"
}
reset_while_forwarding() {
	local L F M t0 took rc=0 failures downs put
	L=$(leader_id 1)
	F=$(((L % 3) + 1))
	M=$(((F % 3) + 1))
	log "--- reset: n$F's connection to the leader n$L reset under its write (n$M cut from n$F)"
	cut "$F" "$M"
	wait_until 20 writable "$F"
	failures=$(link_failures "$F" "$L")
	downs=$(grep -c "link to n$L down" "$T/node$F/log" || true)
	on "$F" iptables -I OUTPUT -d "$(addr "$L")" -p tcp -j DROP
	t0=$(now)
	# 60 KB: more than the heartbeats held back meanwhile could add up to
	ctl "$F" kv put reset/x "$(head -c 60000 /dev/zero | tr '\0' x)" >"$T/reset.out" 2>&1 &
	put=$!
	wait_until 5 unacked "$F" "$L" 60000 # the write is in F's socket buffer
	on "$F" iptables -R OUTPUT 1 -d "$(addr "$L")" -p tcp -j REJECT --reject-with tcp-reset
	wait_until 10 links_down_more "$F" "$L" "$downs"
	on "$F" iptables -D OUTPUT 1 # the reset rule; the cut from n$M stays
	wait "$put" || rc=$?
	took=$(elapsed "$t0")
	[ "$rc" = 0 ] || fail "reset: the write on n$F failed after ${took}s: $(cat "$T/reset.out")"
	python3 -c "import sys; sys.exit(0 if $took <= $WRITE_BOUND_S else 1)" ||
		fail "reset: the write on n$F took ${took}s (bound ${WRITE_BOUND_S}s)"
	# Sent to the same leader again, not saved by an election.
	[ "$(leader_id "$F")" = "$L" ] || fail "reset: the leader changed: the test missed its case"
	[ "$(link_failures "$F" "$L")" -gt "$failures" ] ||
		fail "reset: n$F's status does not count the failure of its link to n$L"
	ctl "$F" status | grep -q "^  n$L .* link failed [0-9]* time" ||
		fail "reset: n$F's status text does not show its link to n$L failed"
	log "reset: the write on n$F decided ${took}s after it was made"
	healed
}
started=$SECONDS

# --- 3 nodes -------------------------------------------------------------------
cluster 3
single_links
B=$(leader_id 1)
C=$(((B % 3) + 1))
log "--- chained: leader B = n$B cut from C = n$C"
t0=$(now)
cut "$B" "$C"
majority_ok chained "$t0" 1 2 3
healed
reset_while_forwarding
cluster_down

# --- 5 nodes -------------------------------------------------------------------
cluster 5
single_links

C=$(leader_id 1)
A=$(((C % 5) + 1))
others=()
for i in 1 2 3 4 5; do [ "$i" != "$A" ] && others+=("$i"); done
log "--- quorum-loss: leader C = n$C; only the hub A = n$A keeps its links"
t0=$(now)
for x in "${others[@]}"; do
	for y in "${others[@]}"; do
		[ "$x" -lt "$y" ] && cut "$x" "$y"
	done
done
majority_ok quorum-loss "$t0" 1 2 3 4 5
healed

C=$(leader_id 1)
A=$(((C % 5) + 1))
rest=()
for i in 1 2 3 4 5; do [ "$i" != "$A" ] && [ "$i" != "$C" ] && rest+=("$i"); done
log "--- constrained: leader C = n$C; first A = n$A is cut from C alone"
t0=$(now)
cut "$A" "$C"
majority_ok constrained-1 "$t0" 1 2 3 4 5
log "--- constrained: then C is isolated, and ${rest[*]} keep only their link to A"
t0=$(now)
for i in 1 2 3 4 5; do [ "$i" != "$C" ] && [ "$i" != "$A" ] && cut "$C" "$i"; done
for x in "${rest[@]}"; do
	for y in "${rest[@]}"; do
		[ "$x" -lt "$y" ] && cut "$x" "$y"
	done
done
majority_ok constrained-2 "$t0" "$A" "${rest[@]}"
minority_erofs constrained-2 "$C"
healed
cluster_down

log "PASS in $((SECONDS - started))s"
