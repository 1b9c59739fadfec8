#!/usr/bin/env bash
# Learner benchmark: 3 voters on loopback (release build, CURVE on, every
# log write synced, KV only), with 0, then 10, then 20 learners
# (`member add --learner`, each a real omnifsd). For each count it prints:
#   - put latency through the leader, one client at a time (p50, p99 ms)
#     and puts/s with 8 clients (omnifs-kvload);
#   - the leader's bytes sent per decided entry during those puts, to every
#     member (status tx_bytes over the decided index): with the fan-out it
#     stays flat, as the leader serves at most one learner;
#   - the time the newest learner took from `member add` to caught up.
# Then, on a cluster of its own (3 voters, no other learner), the catch-up
# of a large state: MB MiB of values put through the leader (64 KiB each),
# then one learner added, and the time from `member add` to caught up (a
# state transfer, then the entries decided meanwhile).
#
#   tools/bench-learners.sh [-n PUTS] [-m MB] [-s LEARNERS...]
#
# PUTS per latency run (default 1000); MB the state the new learner catches
# up (MiB, default 100; 0: not measured); LEARNERS the counts (default 0 10
# 20).
# On one machine every learner applies every entry on the same cores as the
# voters: the latency and rate with learners include that CPU, which
# separate machines would not share; the bytes per entry do not depend on it.
set -euo pipefail
cd "$(dirname "$0")/.."
puts=1000
state_mb=100
counts=(0 10 20)
while [ $# -gt 0 ]; do
	case "$1" in
	-n) puts="$2"; shift 2 ;;
	-m) state_mb="$2"; shift 2 ;;
	-s) shift; counts=("$@"); break ;;
	*) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
. tools/bench-lib.sh

ELECTION_MS="${ELECTION_MS:-200}"
cluster_up 3 2>/dev/null
VOTERS=3
learners=0
leader() { leader_id 1; }
caught_up() { [ "$(status_field "$1" caught_up)" = True ]; }
is_learner() { [ "$(status_field "$1" role)" = learner ]; }
add_one() {
	local l
	l=$(leader)
	[ "$l" != 0 ] && ctl "$l" member add --learner "$1" "$(node_addr "$1")" "$(node_pub "$1")" >/dev/null 2>&1
}

printf '%-9s %-14s %-14s %-10s %-15s %s\n' learners "p50 ms (1)" "p99 ms (1)" "puts/s (8)" "leader B/entry" "catch-up s (last added)"
for want in "${counts[@]}"; do
	catch_up="-"
	while [ "$learners" -lt "$want" ]; do
		i=$((VOTERS + learners + 1))
		join_init "$i" curve $(seq 1 $VOTERS) 2>/dev/null
		start_node "$i"
		t0=$(date +%s.%N)
		wait_until 60 add_one "$i"
		wait_until 60 is_learner "$i"
		wait_until 60 caught_up "$i"
		catch_up=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
		learners=$((learners + 1))
	done
	wait_until 30 has_leader 1
	l=$(leader)
	sock="$T/node$l/ctl.sock"
	bytes0=$(status_field "$l" tx_bytes)
	dec0=$(status_field "$l" decided_idx)
	one=$("$OMNIFS_BUILD/tools/omnifs-kvload" -s "$sock" -c 1 -n "$puts" -p "l$want.1/" 2>&1)
	many=$("$OMNIFS_BUILD/tools/omnifs-kvload" -s "$sock" -c 8 -n "$((puts * 4))" -p "l$want.8/" 2>&1)
	bytes1=$(status_field "$l" tx_bytes)
	dec1=$(status_field "$l" decided_idx)
	p50=$(echo "$one" | sed -n 's/.*p50 \([0-9.]*\).*/\1/p' | head -1)
	p99=$(echo "$one" | sed -n 's/.*p99 \([0-9.]*\).*/\1/p' | head -1)
	rate=$(echo "$many" | sed -n 's/.*: \([0-9]*\) puts\/s.*/\1/p' | head -1)
	per=$(((bytes1 - bytes0) / (dec1 - dec0 > 0 ? dec1 - dec0 : 1)))
	printf '%-9s %-14s %-14s %-10s %-15s %s\n' "$learners" "${p50:-?}" "${p99:-?}" "${rate:-?}" "$per" "$catch_up"
	[ -n "$p50" ] || echo "  (omnifs-kvload said: $one)"
done

[ "$state_mb" -gt 0 ] || exit 0
# The large state: a cluster of its own, so that no other learner applies it
# (each would take the same state on these cores) and the new learner is
# placed behind a voter.
for i in "${!PIDS[@]}"; do
	if [ -n "${PIDS[$i]}" ]; then kill_node "$i"; fi
done
rm -rf "${T:?}"/node* "${T:?}"/mnt
cluster_up 3 2>/dev/null
VOTERS=3
l=$(leader)
t0=$(date +%s.%N)
fill=$("$OMNIFS_BUILD/tools/omnifs-kvload" -s "$T/node$l/ctl.sock" -c 8 -b 65536 \
	-n "$((state_mb * 16))" -p state/ 2>&1)
fill_s=$(echo "$(date +%s.%N) - $t0" | bc)
[[ $fill == *" 0 failed"* ]] || echo "  (filling the state, omnifs-kvload said: $fill)"
i=$((VOTERS + 1))
join_init "$i" curve $(seq 1 $VOTERS) 2>/dev/null
start_node "$i"
t0=$(date +%s.%N)
wait_until 60 add_one "$i"
wait_until 60 is_learner "$i"
wait_until 900 caught_up "$i"
secs=$(echo "$(date +%s.%N) - $t0" | bc)
xfer=$(status_field "$i" state_transfer_bytes)
printf 'catch-up: a new learner caught up a %s MiB state (put in %.1f s) in %.1f s; state transfer %.1f MiB from n%s\n' \
	"$state_mb" "$fill_s" "$secs" "$(echo "$xfer / 1048576" | bc -l)" "$(status_field "$i" state_transfer_source)"
