#!/usr/bin/env bash
# A member that was down while the membership changed catches up when it
# comes back: node 3 is stopped, node 4 is added (configuration 2 = 1,2,3,4,
# decided by 1, 2 and the new 4), writes go on; node 3 restarts with the log
# of configuration 1, learns from its peers that configuration 2 runs (it
# missed the stop-sign), moves to it and fetches the state. Then it takes
# writes and agrees with the others. A member removed while it was down
# (node 2, in the second part) comes back within the grace the members give
# it (50 election timeouts, at least 10 s), learns from them that it was
# removed (and nothing else), says so, refuses writes, acknowledges (the
# members drop its key then) and disturbs nobody. Adding a node that is not
# running (no connection with its key was seen) is refused.
. "$(dirname "$0")/lib.sh"

ELECTION_MS=200
cluster_up 3
for k in $(seq 1 20); do ctl 1 kv put "a/$k" "$k" >/dev/null; done

log "stopping n3; adding n4 while it is down"
stop_node 3
join_init 4 curve 1 2 3
start_node 4
ctl 1 member add 4 "$(node_addr 4)" "$(node_pub 4)" || fail "member add 4 with n3 down"
for k in $(seq 1 20); do ctl 2 kv put "b/$k" "$k" >/dev/null || fail "put b/$k in configuration 2"; done

log "restarting n3 with the log of configuration 1"
start_node 3
on_config() { [ "$(status_field "$1" config_id)" = "$2" ] && [ "$(status_field "$1" caught_up)" = True ]; }
wait_until 30 on_config 3 2
grep -q "runs configuration 2, this node still 1" "$T/node3/log" ||
	fail "n3 did not say it moved on to configuration 2"
ctl 3 kv put c/from3 yes || fail "n3 refused a write after catching up"
for i in 1 2 3 4; do ctl "$i" barrier; done
wait_until 20 digests_agree 1 2 3 4
for k in 1 20; do [ "$(ctl 3 kv get "b/$k")" = "$k" ] || fail "n3 misses b/$k"; done
log "n3 moved to configuration 2 and agrees: $(ctl 3 digest)"

log "stopping n2; removing it while it is down"
stop_node 2
ctl 1 member remove 2 || fail "member remove 2 with n2 down"
ctl 4 kv put d/after 1 || fail "put after removing n2"
# Back within the grace: the members still accept its key and tell it.
start_node 2
removed() { [ "$(status_field 2 removed)" = True ]; }
wait_until 30 removed
out=$(ctl 2 kv put d/from2 x 2>&1) && fail "removed n2 took a write"
echo "$out" | grep -q "removed from the cluster" || fail "n2 refused, but not as removed: $out"
ctl 4 kv put d/after2 1 || fail "put after n2 came back"
acked() { grep -q "n2 acknowledged its removal" "$T/node1/log"; }
wait_until 20 acked
grep -q "the cluster runs configuration 3" "$T/node2/log" && fail "n2 was told the member table"
for i in 1 3 4; do ctl "$i" barrier; done
wait_until 20 digests_agree 1 3 4
log "n2, removed while down, came back removed: $out"
# A key no running node dials with (a typo, another node's key) is refused
# before the change: the member would never connect.
join_init 7 curve 1 3 4
out=$(ctl 1 member add 7 "$(node_addr 7)" "$(node_pub 7)" 2>&1) && fail "added n7, which is not running"
echo "$out" | grep -q "no node has tried to connect" || fail "unexpected refusal of n7: $out"
[ "$(status_field 1 config_id)" = 3 ] || fail "the refused add changed the configuration"
log "a key nobody dials with is refused: $out"
for i in 1 2 3 4; do stop_node "$i"; done
log "PASS"
