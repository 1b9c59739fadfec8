#!/usr/bin/env bash
# Learner benchmark: 3 voters on loopback (release build, CURVE on, every
# log write synced, KV only), with 0, then 10, then 20 learners
# (`member add --learner`, each a real omnifsd). For each count, twice:
#   - "shared": every daemon may run on every CPU, as the scheduler likes;
#   - "separate": the voters and the load generator on one half of the
#     CPUs, the learners on the other (taskset), which is as close as one
#     machine comes to learners on machines of their own;
# it prints:
#   - put latency through the leader, one client at a time (p50, p99 ms),
#     and the p50 against the same mode's with 0 learners;
#   - puts/s with 8 clients (omnifs-kvload);
#   - the leader's CPU time per put during the one-client puts (user +
#     system, every thread of the process);
#   - the leader's bytes sent per decided entry during those puts, to every
#     member (status tx_bytes over the decided index): with the fan-out it
#     stays flat, as the leader serves no learner;
#   - the time the newest learner took from `member add` to caught up.
# Then, with CPUs separate, STOP learners stopped (SIGSTOP, the first ones
# added: those others fetch from) while one client puts for SECS seconds:
# a learner that is down or stuck must not slow the voters. They are
# continued and caught up before the next count.
# Last, on a cluster of its own (3 voters, no other learner), the catch-up
# of a large state: MB MiB of values put through the leader (64 KiB each),
# then one learner added, and the time from `member add` to caught up (a
# state transfer, then the entries decided meanwhile).
#
#   tools/bench-learners.sh [-n PUTS] [-m MB] [-z SECS] [-k STOP] [-s LEARNERS...]
#
# PUTS per latency run (default 1000); MB the state the new learner catches
# up (MiB, default 100; 0: not measured); SECS the stopped learners' run
# (default 30; 0: none); STOP how many are stopped (default 10, at most all);
# LEARNERS the counts (default 0 10 20).
# VOTER_CPUS and LEARNER_CPUS (taskset lists) override the halves. The
# build is build/release (built first), or OMNIFS_BUILD's if set (to compare
# two builds). One machine still shares caches, memory and the loopback
# between the halves, and other work on it runs where it likes.
set -euo pipefail
cd "$(dirname "$0")/.."
puts=1000
state_mb=100
stop_secs=30
stop_count=10
counts=(0 10 20)
while [ $# -gt 0 ]; do
	case "$1" in
	-n) puts="$2"; shift 2 ;;
	-m) state_mb="$2"; shift 2 ;;
	-z) stop_secs="$2"; shift 2 ;;
	-k) stop_count="$2"; shift 2 ;;
	-s) shift; counts=("$@"); break ;;
	*) sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
. tools/bench-lib.sh

cpus=$(nproc)
[ "$cpus" -ge 2 ] || { echo "bench-learners: needs 2 CPUs or more to separate" >&2; exit 1; }
all_cpus="0-$((cpus - 1))"
VOTER_CPUS="${VOTER_CPUS:-0-$((cpus / 2 - 1))}"
LEARNER_CPUS="${LEARNER_CPUS:-$((cpus / 2))-$((cpus - 1))}"
tck=$(getconf CLK_TCK)

ELECTION_MS="${ELECTION_MS:-200}"
cluster_up 3 2>/dev/null
VOTERS=3
learners=0
leader() { leader_id 1; }
caught_up() { [ "$(status_field "$1" caught_up)" = True ]; }
all_caught_up() {
	local i
	for i in $(seq $((VOTERS + 1)) $((VOTERS + learners))); do caught_up "$i" || return 1; done
}
is_learner() { [ "$(status_field "$1" role)" = learner ]; }
add_one() {
	local l
	l=$(leader)
	[ "$l" != 0 ] && ctl "$l" member add --learner "$1" "$(node_addr "$1")" "$(node_pub "$1")" >/dev/null 2>&1
}

# place MODE: every daemon's threads on every CPU (shared), or the voters on
# VOTER_CPUS and the learners on LEARNER_CPUS (separate). KVLOAD is how to
# start the load generator: beside the voters when separate.
place() {
	local i vset=$all_cpus lset=$all_cpus
	KVLOAD=("$OMNIFS_BUILD/tools/omnifs-kvload")
	if [ "$1" = separate ]; then
		vset=$VOTER_CPUS
		lset=$LEARNER_CPUS
		KVLOAD=(taskset -c "$VOTER_CPUS" "${KVLOAD[@]}")
	fi
	for i in $(seq 1 $((VOTERS + learners))); do
		taskset -a -cp "$([ "$i" -le $VOTERS ] && echo "$vset" || echo "$lset")" "${PIDS[$i]}" >/dev/null
	done
}

# measure LABEL RATIO_BASE_P50 [-d SECS]: one client's puts (PUTS of them,
# or for SECS seconds), then (without -d) 8 clients' puts; one row. Sets P50.
row=0
measure() {
	local label=$1 base=$2 l sock bytes0 dec0 cpu0 one many bytes1 dec1 cpu1 p50 p99 rate per cpu ratio n
	shift 2
	wait_until 30 has_leader 1
	l=$(leader)
	sock="$T/node$l/ctl.sock"
	bytes0=$(status_field "$l" tx_bytes)
	dec0=$(status_field "$l" decided_idx)
	cpu0=$(cpu_ticks "${PIDS[$l]}")
	row=$((row + 1))
	if [ "${1:-}" = -d ]; then
		one=$("${KVLOAD[@]}" -s "$sock" -c 1 -n 100000000 -d "$2" -p "r$row.1/" 2>&1)
	else
		one=$("${KVLOAD[@]}" -s "$sock" -c 1 -n "$puts" -p "r$row.1/" 2>&1)
	fi
	cpu1=$(cpu_ticks "${PIDS[$l]}")
	dec1=$(status_field "$l" decided_idx)
	bytes1=$(status_field "$l" tx_bytes)
	rate=-
	[ "${1:-}" = -d ] || many=$("${KVLOAD[@]}" -s "$sock" -c 8 -n "$((puts * 4))" -p "r$row.8/" 2>&1)
	[ "${1:-}" = -d ] || rate=$(echo "$many" | sed -n 's/.*: \([0-9]*\) puts\/s.*/\1/p' | head -1)
	p50=$(echo "$one" | sed -n 's/.*p50 \([0-9.]*\).*/\1/p' | head -1)
	p99=$(echo "$one" | sed -n 's/.*p99 \([0-9.]*\).*/\1/p' | head -1)
	n=$((dec1 - dec0 > 0 ? dec1 - dec0 : 1))
	per=$(((bytes1 - bytes0) / n))
	cpu=$(printf '%.3f' "$(echo "($cpu1 - $cpu0) * 1000 / $tck / $n" | bc -l)")
	ratio=-
	[ -n "$p50" ] && [ -n "$base" ] && ratio=$(printf '%.2fx' "$(echo "$p50 / $base" | bc -l)")
	printf '%-22s %-8s %-8s %-7s %-10s %-12s %-15s %s\n' "$label" "${p50:-?}" "${p99:-?}" \
		"$ratio" "${rate:-?}" "$cpu" "$per" "$catch_up"
	[ -n "$p50" ] || echo "  (omnifs-kvload said: $one)"
	P50=$p50
}

echo "voters and load generator on CPUs $VOTER_CPUS, learners on $LEARNER_CPUS when separate"
printf '%-22s %-8s %-8s %-7s %-10s %-12s %-15s %s\n' "learners, CPUs" "p50 ms" "p99 ms" \
	"p50/0" "puts/s (8)" "leader CPU" "leader B/entry" "catch-up s"
printf '%-22s %-8s %-8s %-7s %-10s %-12s %-15s %s\n' "" "(1)" "(1)" "" "" "ms/entry" "" \
	"(last added)"
declare -A base=()
for want in "${counts[@]}"; do
	catch_up="-"
	place shared
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
	for mode in shared separate; do
		place "$mode"
		measure "$learners, $mode" "${base[$mode]:-}"
		[ "$learners" -gt 0 ] || base[$mode]=$P50
		catch_up="-"
	done
	if [ "$learners" -gt 0 ] && [ "$stop_secs" -gt 0 ]; then
		k=$((stop_count < learners ? stop_count : learners))
		stopped=$(seq $((VOTERS + 1)) $((VOTERS + k)))
		for i in $stopped; do kill -STOP "${PIDS[$i]}"; done
		measure "$learners, $k stopped ${stop_secs}s" "${base[separate]:-}" -d "$stop_secs"
		for i in $stopped; do kill -CONT "${PIDS[$i]}"; done
		wait_until 120 all_caught_up
	fi
done
place shared

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
