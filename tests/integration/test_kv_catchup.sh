#!/usr/bin/env bash
# A node stopped while 50,000 entries are written and the log compacted past
# them catches up by a chunked state transfer when it comes back, and then
# holds exactly the same state as the others. While it runs, `omnifsctl
# status` shows the bytes received and the source's estimate of the whole
# (sampled: a fast transfer may finish between two looks); after it, the
# JSON keeps the last transfer's figures, which must be there. Then large
# entries: a compaction keeps retain_entries entries below the applied index,
# but no more than a quarter of max_bytes_mb of them.
. "$(dirname "$0")/lib.sh"

EXTRA_CONFIG="[compaction]\nmax_entries = 5000\nretain_entries = 500\nmax_bytes_mb = 8"
cluster_up 3 plaintext
ctl 1 kv put first 1
ctl 3 barrier
stop_node 3
log "n3 stopped at applied @$(ctl 1 digest | cut -d' ' -f1)"

"$OMNIFS_BUILD/tools/omnifs-kvload" -s "$T/node1/ctl.sock" -n 50000 -c 32 -b 100 -p bulk/ |
	tee "$T/load.out"
grep -q "puts 50000 ok 0 failed" "$T/load.out" || fail "not every put of the bulk load succeeded"
compacted=$(status_field 1 compacted_idx)
[ "$compacted" -gt 40000 ] || fail "n1's log was not compacted (compacted_idx $compacted)"
log "n1 compacted its log to @$compacted"

start_node 3
# caught_up: also records what the status says while the transfer runs.
seen=""
caught_up() {
	ctl 3 status --json >"$T/st.json" 2>/dev/null || return 1
	if [ "$(jq -r .state_transfer "$T/st.json")" = true ]; then
		ctl 3 status | grep -q "state transfer: [0-9.]* \(of about [0-9.]* \)\?MiB from n[12]" &&
			seen=$(jq -r '"\(.state_transfer_bytes) of about \(.state_transfer_total_bytes)"' \
				"$T/st.json")
	fi
	[ "$(jq -r .caught_up "$T/st.json")" = true ]
}
wait_until 120 caught_up
grep -q "state transfer done" "$T/node3/log" || fail "n3 did not catch up by state transfer"
bytes=$(status_field 3 state_transfer_bytes)
total=$(status_field 3 state_transfer_total_bytes)
# 50,000 keys "bulk/N" with 100-byte values: more than 5 MB either way.
[ "$bytes" -gt 5000000 ] || fail "status: state_transfer_bytes $bytes"
[ "$total" -gt 5000000 ] || fail "status: state_transfer_total_bytes $total"
log "status after the transfer: $bytes bytes of about $total; seen while it ran: ${seen:-(too fast to see)}"
ctl 1 kv put last 1
for i in 1 2 3; do ctl "$i" barrier; done
same_digest() { [ "$(ctl 1 digest)" = "$(ctl 3 digest)" ] && [ "$(ctl 2 digest)" = "$(ctl 3 digest)" ]; }
wait_until 30 same_digest
[ "$(ctl 3 kv list bulk/ | wc -l)" = 50000 ] || fail "n3 does not list the 50,000 keys"
log "n3 caught up by state transfer: $(grep 'state transfer done' "$T/node3/log" | tail -1)"

# 300 entries of 64 KiB (19 MiB): compactions every 8 MiB applied keep what
# fits in 2 MiB (31 of them), not 500 entries (up to 31 MiB of these).
"$OMNIFS_BUILD/tools/omnifs-kvload" -s "$T/node1/ctl.sock" -n 300 -c 8 -b 65536 -p big/ |
	tee "$T/big.out"
grep -q "puts 300 ok 0 failed" "$T/big.out" || fail "not every large put succeeded"
ctl 1 barrier
kept=$(($(status_field 1 applied_idx) - $(status_field 1 compacted_idx)))
# At most 31 kept at the last compaction, plus 128 entries (8 MiB) since.
[ "$kept" -le 160 ] || fail "n1's log keeps $kept entries of 64 KiB below the applied index"
log "n1's log keeps $kept entries of 64 KiB"
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
