#!/usr/bin/env bash
# A minority cut off (the transport's fault switch drops all its traffic)
# gets the no-quorum error (EROFS) at once, while the majority keeps
# writing; after healing, the minority converges to the same state.
. "$(dirname "$0")/lib.sh"

cluster_up 3 plaintext
ctl 1 kv put before-cut 1
for i in 1 2 3; do ctl "$i" barrier; done

# Cut node 3 off in both directions, from its own side and from the others'.
ctl 3 debug fault 0 both
ctl 1 debug fault 3 both
ctl 2 debug fault 3 both
no_quorum() { [ "$(status_field 3 quorum)" = False ]; }
wait_until 10 no_quorum
out=$(ctl 3 kv put on-minority 1 2>&1) && fail "a put on the cut-off node succeeded"
echo "$out" | grep -q "Read-only file system" || fail "expected EROFS on the minority, got: $out"
log "minority refuses writes: $out"
start=$SECONDS
for k in $(seq 1 20); do ctl 1 kv put "during-cut/$k" "$k"; done
ctl 2 kv put during-cut/from2 x
log "majority wrote 21 entries while the minority was cut off ($((SECONDS - start))s)"
[ "$(ctl 3 kv get during-cut/20 2>/dev/null || true)" = "" ] || fail "the minority saw a write while cut off"

# Heal.
ctl 3 debug fault 0 none
ctl 1 debug fault 3 none
ctl 2 debug fault 3 none
has_key() { [ "$(ctl 3 kv get during-cut/from2 2>/dev/null)" = x ]; }
wait_until 20 has_key
quorum_back() { [ "$(status_field 3 quorum)" = True ]; }
wait_until 10 quorum_back
ctl 3 kv put after-heal ok
for i in 1 2 3; do ctl "$i" barrier; done
same_digest() { [ "$(ctl 1 digest)" = "$(ctl 3 digest)" ] && [ "$(ctl 2 digest)" = "$(ctl 3 digest)" ]; }
wait_until 20 same_digest
log "converged after healing: $(ctl 3 digest)"
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
