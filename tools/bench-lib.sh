# shellcheck shell=bash
# What the cluster benchmarks (tools/bench-*.sh) share, sourced from the
# top of the source tree after their options are read: the release build
# (or OMNIFS_BUILD's) and tests/integration/lib.sh (its cluster helpers and
# its cleanup on exit), and the daemons' resident memory and CPU time from
# /proc.
# Sourced at top level, not from a function: lib.sh declares its arrays
# globally. With OMNIFS_BUILD set, that build is used as it is (to compare
# two builds with one script).
if [ -z "${OMNIFS_BUILD:-}" ]; then
	tools/install-deps.sh >/dev/null
	tools/build.sh release >/dev/null
	export OMNIFS_BUILD="$PWD/build/release"
fi
. tests/integration/lib.sh

# rss_line: one line with the resident memory of nodes 1 to 3 in MiB.
rss_line() {
	local i line="omnifs RSS per node (MiB):"
	for i in 1 2 3; do
		line+=" n$i $(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/${PIDS[$i]}/status")"
	done
	echo "$line"
}

# cpu_ticks PID...: the user+system clock ticks (getconf CLK_TCK a second)
# the processes have used so far, summed.
cpu_ticks() {
	local p t=0
	for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
	echo "$t"
}

# files_rate N T0 C0: "FILES/S CPU_MS" for N files written since T0 (date
# +%s.%N) and C0 (cpu_ticks of nodes 1 to 3): the rate, and the daemons' CPU
# per file in ms, summed over the nodes.
files_rate() {
	python3 -c "
t = $(date +%s.%N) - $2
cpu = ($(cpu_ticks "${PIDS[1]}" "${PIDS[2]}" "${PIDS[3]}") - $3) * 1000 / $(getconf CLK_TCK) / $1
print(f'{$1 / t:.0f} {cpu:.2f}')"
}

# switches_snap PID...: each thread's context switches so far (voluntary and
# not), one "TID COUNT" line per thread, for switches_since.
switches_snap() {
	local p
	for p in "$@"; do
		grep -H ctxt_switches /proc/"$p"/task/*/status 2>/dev/null
	done | awk -F'[/:]' '{ n[$5] += $NF } END { for (t in n) print t, n[t] }'
}

# switches_since SNAP PID...: the context switches the processes' threads
# made since SNAP (switches_snap's output), summed; a thread started since
# counts from 0. A thread that ended since is not counted.
switches_since() {
	local snap=$1
	shift
	awk 'NR == FNR { before[$1] = $2; next } { n += $2 - before[$1] } END { print n + 0 }' \
		<(echo "$snap") <(switches_snap "$@")
}

# threads_snap LEADER: every thread of nodes 1 to 3 with its CPU so far, one
# "ROLE NAME TID TICKS" line each (ROLE L on the leader LEADER, F on a
# follower; NAME the thread's name), for threads_since. One read of all the
# threads' stat files, as switches_snap does; a thread gone meanwhile is
# left out.
threads_snap() {
	local i
	for i in 1 2 3; do
		grep -H '' /proc/"${PIDS[$i]}"/task/*/stat 2>/dev/null || true
	done | awk -v lead="/proc/${PIDS[$1]}/" '{
		# /proc/PID/task/TID/stat:PID (NAME) STATE ...: NAME may hold spaces
		split($0, p, "/")
		name = $0; sub(/^[^(]*\(/, "", name); sub(/\) [^)]*$/, "", name); gsub(/ /, "_", name)
		rest = $0; sub(/.*\) /, "", rest); split(rest, f, " ")
		print (index($0, lead) == 1 ? "L" : "F"), name, p[5], f[12] + f[13] }'
}

# threads_since SNAP LEADER N: the daemons' CPU since SNAP (threads_snap's
# output) per thread kind (role and name, summed over the nodes), in ms per
# unit of N, largest first, on one line; kinds under 0.005 ms left out. A
# thread that ended since is not counted.
threads_since() {
	awk -v n="$3" -v hz="$(getconf CLK_TCK)" '
	NR == FNR { before[$3] = $4; next }
	{ k = $1 " " $2; ms[k] += ($4 - before[$3]) * 1000 / hz / n }
	END { for (k in ms) if (ms[k] >= 0.005) printf "%.3f %s\n", ms[k], k }' \
		<(echo "$1") <(threads_snap "$2") |
		sort -rn | awk '{ printf "%s%s %s %s", (NR > 1 ? ", " : ""), $2, $3, $1 } END { print "" }'
}
