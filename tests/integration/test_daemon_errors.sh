#!/usr/bin/env bash
# Bad input gets a clear error and loses nothing:
# - an unreadable or malformed config: exit 2, the message names the file;
# - a data dir of another cluster: exit 3, the message names both clusters;
# - plaintext: a warning at start, `plaintext` in status, and a listen
#   address beyond loopback refused (exit 2) unless explicitly allowed;
# - a full disk under the data dir: the node stops itself (fail-stop, exit 1)
#   saying what failed, and once there is room again it restarts with every
#   acknowledged write intact.
. "$(dirname "$0")/lib.sh"

# --- config errors -----------------------------------------------------------
set +e
"$OMNIFSD" -c "$T/missing.conf" 2>"$T/err"
rc=$?
set -e
[ $rc = 2 ] || fail "missing config: exit $rc, expected 2"
grep -q "$T/missing.conf: cannot read the config file" "$T/err" || fail "missing config: $(cat "$T/err")"
printf '[node]\nid = 1\nbogus = 1\n' >"$T/bad.conf"
set +e
"$OMNIFSD" -c "$T/bad.conf" 2>"$T/err"
rc=$?
set -e
[ $rc = 2 ] || fail "bad config: exit $rc"
grep -q "bad.conf:3: unknown key 'bogus' in \[node\]" "$T/err" || fail "bad config: $(cat "$T/err")"
log "config errors: exit 2 with file, line and key"

# --- a data dir of another cluster ---------------------------------------------
cluster_init 3 plaintext
sed -i '1i [storage]\nmemory_mb = 24' "$T/node1/omnifs.conf" # later steps append to [security]
start_node 1
warned() { grep -q "plaintext: links to and from n1 are neither encrypted nor authenticated" "$T/node1/log"; }
wait_until 10 warned
ctl 1 status | grep -q "^security: *plaintext" || fail "status does not show plaintext: $(ctl 1 status)"
[ "$(status_field 1 security)" = plaintext ] || fail "status --json: security is $(status_field 1 security)"
# The [storage] budget is what status reports RocksDB's memory against.
[ "$(status_field 1 storage_budget_bytes)" = $((24 << 20)) ] ||
	fail "status --json: storage budget $(status_field 1 storage_budget_bytes), expected 24 MiB"
ctl 1 status | grep -q "^memory: .* MiB resident; storage .* of its 24 MiB budget" ||
	fail "status does not show the storage budget: $(ctl 1 status | grep memory)"
stop_node 1
log "plaintext: warned at start, status says plaintext; memory shown against the budget"

# Plaintext beyond loopback: refused at start (and by --check-config) with why.
cp "$T/node1/omnifs.conf" "$T/node1/omnifs.conf.loopback"
sed -i "s/^id = 1$/id = 1\nlisten = 0.0.0.0:${PORTS[0]}/" "$T/node1/omnifs.conf"
grep -q "^listen = 0.0.0.0:" "$T/node1/omnifs.conf" || fail "the test did not set listen"
for check in "" --check-config; do
	set +e
	"$OMNIFSD" $check -c "$T/node1/omnifs.conf" >/dev/null 2>"$T/err"
	rc=$?
	set -e
	[ $rc = 2 ] || fail "plaintext on 0.0.0.0 ${check:-at start}: exit $rc, expected 2"
	grep -q "listen = 0.0.0.0:${PORTS[0]} with \[security\] plaintext = true: plaintext links are neither encrypted nor authenticated" "$T/err" ||
		fail "plaintext on 0.0.0.0: $(cat "$T/err")"
	grep -q "plaintext_allow_network = true" "$T/err" || fail "the refusal does not name the setting"
done
log "plaintext on 0.0.0.0 refused: $(grep -o 'plaintext links.*' "$T/err" | cut -c1-100)"
echo "plaintext_allow_network = true" >>"$T/node1/omnifs.conf"
"$OMNIFSD" --check-config -c "$T/node1/omnifs.conf" >/dev/null 2>"$T/err" ||
	fail "plaintext_allow_network = true still refused: $(cat "$T/err")"
mv "$T/node1/omnifs.conf.loopback" "$T/node1/omnifs.conf"

sed -i "s/^cluster = .*/cluster = another/" "$T/node1/omnifs.conf"
set +e
"$OMNIFSD" -c "$T/node1/omnifs.conf" 2>"$T/err"
rc=$?
set -e
[ $rc = 3 ] || fail "foreign data dir: exit $rc, expected 3"
grep -q "belongs to cluster" "$T/err" || fail "foreign data dir: $(grep -v '^<6>' "$T/err" | tail -3)"
log "foreign data dir refused: $(grep -o 'belongs to cluster.*' "$T/err" | head -1 | cut -c1-100)"
rm -rf "$T"/node* "$T"/mnt
PIDS=()

# --- a full disk ---------------------------------------------------------------
cluster_init 3 plaintext
mkdir -p "$T/node3/data"
mount -t tmpfs -o size=24m omnifs-test-full "$T/node3/data"
CLEANUP_HOOKS+=("umount -l '$T/node3/data' 2>/dev/null")
for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do wait_until 20 has_leader "$i"; done
# Fill node 3's disk with writes (values of 64 KiB) until it stops itself
# (before the disk is quite full: it keeps a reserve).
big=$(head -c 60000 /dev/zero | tr '\0' 'x')
acked=0
for k in $(seq 1 2000); do
	if ctl 1 kv put "fill/$k" "$big" 2>/dev/null; then acked=$k; else break; fi
	kill -0 "${PIDS[3]}" 2>/dev/null || break
done
exited() { ! kill -0 "${PIDS[3]}" 2>/dev/null; }
wait_until 60 exited
set +e
wait "${PIDS[3]}"
rc=$?
set -e
PIDS[3]=""
[ $rc = 1 ] || fail "node 3 on a full disk: exit $rc, expected 1 (fail-stop)"
grep -q "No space left on device" "$T/node3/log" || fail "node 3 did not say the disk is full"
log "node 3 stopped itself on a full disk: $(grep -m1 'stopping this node' "$T/node3/log" | cut -c1-140)"
# The majority kept the writes; make room and restart node 3: it catches up.
ctl 1 kv put after-full ok
# Move node 3's data, as it was when the disk filled up, to a bigger disk.
mkdir "$T/node3/data.big"
cp -a "$T/node3/data/." "$T/node3/data.big/"
umount -l "$T/node3/data"
rmdir "$T/node3/data"
mv "$T/node3/data.big" "$T/node3/data"
start_node 3
grep "started:" "$T/node3/log" | tail -1 | grep -q "applied @0," &&
	fail "node 3 restarted from an empty state instead of its own data"
wait_until 30 has_leader 3 # a node just started may not have heard a majority yet
for i in 1 2 3; do ctl "$i" barrier; done
[ "$(ctl 3 kv get after-full)" = ok ] || fail "node 3 did not catch up after the disk was freed"
same_digest() { [ "$(ctl 1 digest)" = "$(ctl 3 digest)" ]; }
wait_until 30 same_digest
log "node 3 restarted with room again and agrees ($acked puts acknowledged before)"
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
