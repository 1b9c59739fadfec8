#!/usr/bin/env bash
# omnifsctl health on three real omnifsd processes with mounts: exit 0 on
# every healthy node (and --json says so), 10 on a node whose peers are
# stopped, 3 for a daemon that is not running, 0 again once the peers are
# back, 12 on a node removed from the cluster; bad options exit 64. The
# verdicts that are hard to bring about here (lagging, not mounted) are
# checked on status objects in tests/tools/test_health.c.
. "$(dirname "$0")/lib.sh"

# health_is I CODE [ARGS...]: node I's health exits with CODE.
health_is() {
	local i=$1 want=$2 rc=0
	shift 2
	ctl "$i" health "$@" >"$T/health.out" 2>&1 || rc=$?
	[ "$rc" = "$want" ] && return 0
	cp "$T/health.out" "$T/health.last"
	return 1
}

# wait_health SECONDS I CODE: polls until node I's health exits with CODE,
# and shows the last verdict if it never does.
wait_health() {
	local deadline=$((SECONDS + $1))
	until health_is "$2" "$3"; do
		[ $SECONDS -lt $deadline ] ||
			fail "node $2's health never exited $3; last: $(cat "$T/health.last")"
		sleep 0.05
	done
}

fs_cluster 3
for i in 1 2 3; do
	wait_health 30 "$i" 0
done
grep -q '^ok: ' "$T/health.out" || fail "healthy output: $(cat "$T/health.out")"
ctl 1 health --json | python3 -c '
import json, sys
h = json.load(sys.stdin)
assert h["healthy"] is True and h["state"] == "ok" and h["exit"] == 0, h
assert h["quorum"] is True and h["mounted"] is True, h
' || fail "health --json on a healthy node"

log "usage errors"
health_is 1 64 --bogus || fail "health --bogus: $(cat "$T/health.out")"
health_is 1 64 --max-lag-ms 5x || fail "health --max-lag-ms 5x: $(cat "$T/health.out")"

log "peers stopped: no quorum on node 1, node 2 not running"
stop_node 2
stop_node 3
wait_health 30 1 10
grep -q '^no-quorum: ' "$T/health.out" || fail "no quorum output: $(cat "$T/health.out")"
health_is 2 3 || fail "a stopped node's health: $(cat "$T/health.out")"
rc=0
ctl 2 health --json >"$T/health.json" 2>/dev/null || rc=$?
[ "$rc" = 3 ] || fail "health --json of a stopped node exited $rc"
python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))
assert h["healthy"] is False and h["state"] == "not-running" and h["exit"] == 3, h
' "$T/health.json" || fail "health --json of a stopped node: $(cat "$T/health.json")"

log "peers back: healthy again"
start_node 2
start_node 3
for i in 1 2 3; do
	wait_health 60 "$i" 0
done

log "node 3 removed"
ctl 1 member remove 3 >/dev/null || fail "member remove 3"
wait_health 60 3 12
grep -q '^not-member: removed' "$T/health.out" || fail "removed output: $(cat "$T/health.out")"
wait_health 30 1 0
log "ok"
