#!/usr/bin/env bash
# Membership changes with `omnifsctl member`, on real omnifsd processes (KV
# only, CURVE on), while a writer puts keys through the members one after the
# other and records every put that was acknowledged:
# a) a 3-node cluster grows to 5 (nodes 4 and 5 start with join = true and an
#    empty data dir, then `member add` admits each), then shrinks back to 3 by
#    removing a joined node and then the leader. Afterwards every acknowledged
#    put is on every remaining member with its value, their digests and
#    `member list` agree, and the removed nodes (still running) say they were
#    removed and refuse writes;
# b) a member is killed (-9) and `member replace` puts node 6 (join = true,
#    empty data dir, started meanwhile) in its place: node 6 catches up to the
#    same digest and the cluster keeps taking writes without the dead node.
. "$(dirname "$0")/lib.sh"

ELECTION_MS=200
cluster_up 3
log "leader: n$(leader_id 1)"

# csv ID...: the ids sorted, comma-separated ("1,2,5"), as omnifsctl prints them.
csv() { printf '%s\n' "$@" | sort -n | paste -sd, -; }

# member_ids I: "CONFIG_ID MEMBERS_CSV" from node I's `member list --json`.
member_ids() {
	ctl "$1" member list --json | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(m["config_id"], ",".join(str(x["id"]) for x in sorted(m["members"], key=lambda x: x["id"])))'
}

# check_member_list I ID...: node I's `member list` names exactly ID... with
# their addresses and keys, itself marked, under the config id of its --json.
check_member_list() {
	local i=$1 m cid
	shift
	ctl "$i" member list >"$T/list$i" 2>"$T/list$i.err" || fail "member list on n$i: $(cat "$T/list$i.err")"
	cid=$(member_ids "$i" | cut -d' ' -f1)
	{
		echo "configuration $cid"
		for m in $(printf '%s\n' "$@" | sort -n); do
			printf 'n%s %s %s%s\n' "$m" "$(node_addr "$m")" "$(node_pub "$m")" \
				"$([ "$m" = "$i" ] && echo ' (this node)')"
		done
	} >"$T/list$i.expected"
	{ head -1 "$T/list$i" && tail -n +2 "$T/list$i" | sort -V; } | diff "$T/list$i.expected" - ||
		fail "n$i's member list differs from the expected one (above: - expected, + printed)"
}

# change I EXPECTED_CSV ARGS...: `omnifsctl member ARGS...` on node I must exit
# 0 and print the new configuration with exactly EXPECTED_CSV as members.
change() {
	local i=$1 want=$2 t0=$SECONDS
	shift 2
	log "n$i: omnifsctl member $*"
	if ! ctl "$i" member "$@" >"$T/change.out" 2>&1; then
		fail "member $* on n$i exited non-zero: $(cat "$T/change.out")"
	fi
	cat "$T/change.out"
	grep -Eqx "configuration [0-9]+: members $want" "$T/change.out" ||
		fail "member $* on n$i did not print 'configuration N: members $want'"
	log "member $* took $((SECONDS - t0))s"
}

# refused I MESSAGE ARGS...: `omnifsctl member ARGS...` on node I must exit
# non-zero, saying MESSAGE.
refused() {
	local i=$1 msg=$2
	shift 2
	if ctl "$i" member "$@" >"$T/refused.out" 2>&1; then
		fail "member $* on n$i succeeded: $(cat "$T/refused.out")"
	fi
	grep -qF "$msg" "$T/refused.out" || fail "member $* on n$i: no '$msg' in: $(cat "$T/refused.out")"
	log "refused as expected: member $*: $(cat "$T/refused.out")"
}

is_caught_up() { [ "$(status_field "$1" caught_up)" = True ]; }
# peers_reachable I: node I hears every other member of its configuration.
peers_reachable() {
	ctl "$1" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if s["peers"] and all(p["reachable"] for p in s["peers"]) else 1)'
}
# reachable I...: each of nodes I... hears every other member within 10 s.
reachable() {
	local i
	for i in "$@"; do
		if ! (wait_until 10 peers_reachable "$i"); then
			ctl "$i" status
			fail "n$i does not hear every member of its configuration"
		fi
	done
}
# writable I...: each of nodes I... acknowledges a put within 15 s (a new
# configuration elects its leader first). A member that cannot write fails.
writable() {
	local i
	for i in "$@"; do
		if ! (wait_until 15 ctl_quiet "$i" kv put "probe/n$i" "$(member_ids "$i")"); then
			fail "n$i, a member, cannot write: $(ctl "$i" kv put "probe/n$i" 1 2>&1)"
		fi
	done
}
is_removed() { [ "$(status_field "$1" removed)" = True ]; }
# on_config I CSV: node I's membership is exactly CSV.
on_config() { [ "$(member_ids "$1" | cut -d' ' -f2)" = "$2" ]; }

# The membership the cluster formed from [peers]: what `member list` shows before any change.
check_member_list 1 1 2 3
[ "$(status_field 1 removed)" = False ] || fail "n1 says it was removed"
[ "$(status_field 1 config_id)" = "$(member_ids 1 | cut -d' ' -f1)" ] ||
	fail "status --json and member list --json disagree on the config id"
log "initial membership: $(member_ids 1)"

# The writer: one put at a time, through the nodes listed in $T/writers in
# turn; an acknowledged put (exit 0) goes into $T/acked as "key value".
echo "1 2 3" >"$T/writers"
: >"$T/acked"
writer() {
	local k=0 n key nodes
	while [ ! -e "$T/writer.stop" ]; do
		read -r -a nodes <"$T/writers"
		k=$((k + 1))
		n=${nodes[$((k % ${#nodes[@]}))]}
		key=$(printf 'w/k%05d' "$k")
		if ctl "$n" kv put "$key" "v$k.n$n" >/dev/null 2>>"$T/writer.err"; then
			echo "$key v$k.n$n" >>"$T/acked"
		fi
	done
}
writer &
WRITER=$!
CLEANUP_HOOKS+=("touch $T/writer.stop; kill $WRITER 2>/dev/null")
set_writers() {
	echo "$*" >"$T/writers.new"
	mv "$T/writers.new" "$T/writers"
}
acked() { wc -l <"$T/acked"; }
acked_at_least() { [ "$(acked)" -ge "$1" ]; }
# more_acks N: N more puts acknowledged from now on.
more_acks() { wait_until 60 acked_at_least $(($(acked) + $1)); }
more_acks 20

# a) Grow to 5 members. Node 5's config lists nodes 1 to 3 only, as
# omnifs-bootstrap --add writes it on a member whose config predates node 4:
# node 5 learns node 4's address and key from the cluster.
join_init 4 curve 1 2 3
join_init 5 curve 1 2 3
start_node 4
start_node 5
change 1 1,2,3,4 add 4 "$(node_addr 4)" "$(node_pub 4)"
wait_until 60 is_caught_up 4
wait_until 20 on_config 4 1,2,3,4
log "n4 caught up: $(ctl 4 digest)"
reachable 1 2 3 4
writable 1 2 3 4
more_acks 10
change 2 1,2,3,4,5 add 5 "$(node_addr 5)" "$(node_pub 5)"
wait_until 60 is_caught_up 5
for i in 1 2 3 4 5; do wait_until 20 on_config "$i" 1,2,3,4,5; done
log "n5 caught up: $(ctl 5 digest)"
reachable 1 2 3 4 5
writable 1 2 3 4 5
set_writers 1 2 3 4 5
more_acks 20
log "puts through all five acknowledged"
refused 3 "n4 is already a member" add 4 "$(node_addr 4)" "$(node_pub 4)"
for i in 1 2 3 4 5; do check_member_list "$i" 1 2 3 4 5; done
log "5 members, $(acked) puts acknowledged so far"

# Shrink to 3: a joined node that does not lead, then the leader.
members=(1 2 3 4 5)
drop() {
	local out=$1 m
	local kept=()
	for m in "${members[@]}"; do [ "$m" != "$out" ] && kept+=("$m"); done
	members=("${kept[@]}")
}
leader=$(leader_id 1)
victim=4
[ "$leader" = 4 ] && victim=5
runner=5
[ "$victim" = 5 ] && runner=4
drop "$victim"
change "$runner" "$(csv "${members[@]}")" remove "$victim"
removed=("$victim")
for i in "${members[@]}"; do wait_until 20 on_config "$i" "$(csv "${members[@]}")"; done
wait_until 20 has_leader "${members[0]}"
reachable "${members[@]}"
writable "${members[@]}"
more_acks 10

leader=$(leader_id "${members[0]}")
drop "$leader"
runner=${members[0]}
change "$runner" "$(csv "${members[@]}")" remove "$leader"
removed+=("$leader")
for i in "${members[@]}"; do wait_until 20 on_config "$i" "$(csv "${members[@]}")"; done
for i in "${members[@]}"; do wait_until 20 has_leader "$i"; done
reachable "${members[@]}"
writable "${members[@]}"
log "leader n$leader removed; members ${members[*]}, leader n$(leader_id "${members[0]}")"
more_acks 20
touch "$T/writer.stop"
wait "$WRITER" || fail "the writer failed"
log "writer stopped: $(acked) puts acknowledged, $(grep -c . "$T/writer.err" || true) refused or failed:"
sort "$T/writer.err" | uniq -c | sort -rn | head -5

# verify_acked I...: every acknowledged put is on nodes I... with its value,
# and their digests agree.
verify_acked() {
	local i key value n=0
	for i in "$@"; do ctl "$i" barrier; done
	sort -u "$T/acked" | cut -d' ' -f1 >"$T/acked.keys"
	for i in "$@"; do
		ctl "$i" kv list w/ | sort -u >"$T/present$i"
		n=$(comm -23 "$T/acked.keys" "$T/present$i" | wc -l)
		[ "$n" -eq 0 ] || fail "n$i lacks $n of $(acked) acknowledged puts, e.g. $(comm -23 "$T/acked.keys" "$T/present$i" | head -3 | xargs)"
	done
	# One node's values; equal digests carry them to the others.
	while read -r key value; do
		[ "$(ctl "$1" kv get "$key")" = "$value" ] || fail "n$1: $key is not $value"
	done <"$T/acked"
	wait_until 20 digests_agree "$@"
}
verify_acked "${members[@]}"
log "all $(acked) acknowledged puts present on n${members[*]}, digests agree: $(ctl "${members[0]}" digest)"
for i in "${members[@]}"; do check_member_list "$i" "${members[@]}"; done
log "member list agrees on n${members[*]}: $(member_ids "${members[0]}")"

for r in "${removed[@]}"; do
	wait_until 20 is_removed "$r"
	ctl "$r" status >"$T/status$r"
	grep -qi removed "$T/status$r" || fail "n$r's status does not say it was removed: $(cat "$T/status$r")"
	if ctl "$r" kv put after-removal 1 >"$T/put.out" 2>&1; then
		fail "removed n$r acknowledged a put"
	fi
	log "removed n$r refuses writes: $(cat "$T/put.out")"
done
ctl "${members[0]}" kv get after-removal >/dev/null 2>&1 && fail "a removed node's put reached the cluster"

# b) Replace a dead member by node 6.
leader=$(leader_id "${members[0]}")
dead="" runner=""
for i in "${members[@]}"; do
	if [ -z "$dead" ] && [ "$i" != "$leader" ]; then dead=$i; elif [ -z "$runner" ]; then runner=$i; fi
done
drop "$dead"
log "killing n$dead (leader n$leader); n$runner replaces it with n6"
kill_node "$dead"
ctl "$runner" kv put b/before 1 || fail "n$runner refused a put with n$dead dead"
join_init 6 curve "${members[@]}"
change "$runner" "$(csv "${members[@]}" 6)" replace "$dead" 6 "$(node_addr 6)" "$(node_pub 6)" &
replacing=$!
CLEANUP_HOOKS+=("kill $replacing 2>/dev/null")
start_node 6
wait "$replacing" || fail "member replace $dead 6 failed"
members+=(6)
wait_until 60 is_caught_up 6
for i in "${members[@]}"; do wait_until 20 on_config "$i" "$(csv "${members[@]}")"; done
reachable "${members[@]}"
writable "${members[@]}"
for i in "${members[@]}"; do ctl "$i" kv put "b/from$i" "$i" || fail "n$i refused a put after the replace"; done
for i in "${members[@]}"; do ctl "$i" barrier; done
for i in "${members[@]}"; do
	for j in "${members[@]}"; do
		[ "$(ctl "$i" kv get "b/from$j")" = "$j" ] || fail "n$i misses b/from$j"
	done
done
verify_acked "${members[@]}"
for i in "${members[@]}"; do check_member_list "$i" "${members[@]}"; done
log "n6 replaced n$dead: members $(member_ids "$runner"), digests agree: $(ctl 6 digest)"

for i in "${members[@]}" "${removed[@]}"; do stop_node "$i"; done
log "PASS"
