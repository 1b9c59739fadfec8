#!/usr/bin/env bash
# Linearizability under faults (tests/lin/lincheck.py) on three real omnifsd
# processes with mounts, each in a network namespace of its own: clients on
# every node read, write and compare-and-set KV keys and replace files,
# while nodes are killed (-9) and restarted, links are cut (the fault switch
# and iptables) and cables unplugged; every key's and file's history must be
# linearizable (fresh reads: barrier, then read). About 60 s with a fixed
# seed; LIN_SECONDS, LIN_SEED and LIN_ARGS (more lincheck.py options)
# change that, LIN_NETNS=0 keeps the nodes on the host's loopback
# (tools/lincheck.sh runs it longer and prints the figures).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] && [ -c /dev/fuse ] || { echo "needs root and /dev/fuse"; exit 77; }

# lincheck.py runs the daemons itself (kill -9, restart); if it dies, the
# ones it left are killed here, before lib.sh unmounts and scans the logs. A
# daemon still there 5 s after kill -9 is stuck in the kernel on its own
# mount: its FUSE connection (number in fuse-conn) is aborted.
kill_lincheck_daemons() {
	local f pid i conn
	for f in "$T"/node*/pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		kill -9 "$pid" 2>/dev/null
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || continue 2
			sleep 0.1
		done
		conn=$(cat "$(dirname "$f")/fuse-conn" 2>/dev/null || true)
		[ -n "$conn" ] && echo 1 >"/sys/fs/fuse/connections/$conn/abort" 2>/dev/null
	done
	true
}
# Then the network namespaces it made (listed in netns), if it could not.
delete_lincheck_netns() {
	local ns
	[ -f "$T/netns" ] || return 0
	while read -r ns; do ip netns del "$ns" 2>/dev/null; done <"$T/netns"
	true
}
CLEANUP_HOOKS+=(kill_lincheck_daemons delete_lincheck_netns)

MOUNT=1 cluster_init 3
read -r -a extra <<<"${LIN_ARGS:-}"
[ "${LIN_NETNS:-1}" = 0 ] || extra+=(--netns)
python3 "$(dirname "$0")/../lin/lincheck.py" --build "$OMNIFS_BUILD" --dir "$T" \
	--seconds "${LIN_SECONDS:-60}" --seed "${LIN_SEED:-1}" \
	--history "$OMNIFS_BUILD/meson-logs/lincheck-history.jsonl" "${extra[@]}" ||
	fail "lincheck found a violation or could not run (see above)"
log "PASS"
