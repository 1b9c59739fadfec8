#!/usr/bin/env bash
# Metrics on three real omnifsd processes with mounts, each also serving
# HTTP ([metrics] listen): the page at /.omnifs/metrics, at
# http://.../metrics and from omnifsctl metrics parses strictly
# (metrics_check.py, whose own selftest runs first); after writes through
# node 1 its applied index, FUSE write count, proposal and log sync counts
# and bytes sent to each peer grow, and the other nodes apply the writes
# too; exactly one node says it is the leader; a stopped peer reads as
# unreachable; other paths get 404; every daemon stops cleanly; a daemon
# whose metrics port is taken does not start (exit 3) and says why.
. "$(dirname "$0")/lib.sh"
CHECK="$(dirname "$0")/metrics_check.py"

python3 "$CHECK" selftest

# Nothing here needs a quick election; a slow one rides out a loaded
# machine (or TSan) without links timing out and leaders changing.
ELECTION_MS=1000
MOUNT=1
cluster_init 3
read -r -a HTTP_PORTS <<<"$(free_ports 3)"
for i in 1 2 3; do
	printf '[metrics]\nlisten = 127.0.0.1:%s\n' "${HTTP_PORTS[$((i - 1))]}" >>"$T/node$i/omnifs.conf"
done
for i in 1 2 3; do start_node "$i"; done
# Generous deadlines: polled, and a loaded machine or TSan slows elections.
for i in 1 2 3; do
	wait_until 60 mountpoint -q "$T/mnt/node$i"
	wait_until 60 has_leader "$i"
done

# scrape I NAME: node I's page over HTTP into $T/NAME (fails on a status
# other than 200 or another Content-Type).
scrape() {
	python3 - "http://127.0.0.1:${HTTP_PORTS[$(($1 - 1))]}/metrics" "$T/$2" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    ctype = r.headers.get("Content-Type")
    assert r.status == 200, r.status
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    open(sys.argv[2], "wb").write(r.read())
PY
}

# snap I NAME: node I's page, read through its mount, into $T/NAME.
snap() { cat "$T/mnt/node$1/.omnifs/metrics" >"$T/$2"; }

# val NAME METRIC [LABEL=VALUE...]: one sample of a saved page.
val() {
	local f=$1
	shift
	python3 "$CHECK" value "$T/$f" "$@"
}

log "the page parses, from the mount, over HTTP and from omnifsctl"
for i in 1 2 3; do
	snap "$i" "fs$i"
	scrape "$i" "http$i"
	ctl "$i" metrics >"$T/ctl$i"
	python3 "$CHECK" check "$T/fs$i" "$T/http$i" "$T/ctl$i" || fail "node $i's page does not parse"
done
ls "$T/mnt/node1/.omnifs" | grep -qx metrics || fail "metrics is not listed in /.omnifs"
! grep -h "metrics: http:" "$T"/node*/log || fail "the HTTP server complained (above)"
for m in omnifs_applied_index omnifs_decided_index omnifs_compacted_index omnifs_is_leader \
	omnifs_leader_changes_total omnifs_ballot omnifs_proposal_duration_seconds_count \
	omnifs_log_sync_duration_seconds_count omnifs_state_transfers_total \
	omnifs_state_transfer_received_bytes_total omnifs_invalidation_queue_depth \
	omnifs_resident_memory_bytes omnifs_rocksdb_memory_budget_bytes omnifs_mounted; do
	val http1 "$m" >/dev/null || fail "no $m on node 1"
done
for p in 2 3; do
	val http1 omnifs_peer_connected peer="$p" >/dev/null || fail "no omnifs_peer_connected for n$p"
	val http1 omnifs_peer_link_failures_total peer="$p" >/dev/null ||
		fail "no omnifs_peer_link_failures_total for n$p"
done
# (a loaded machine may have let a link fall silent once already)
failures3=$(val http1 omnifs_peer_link_failures_total peer=3)
[ "$(val http1 omnifs_mounted)" = 1 ] || fail "node 1 says it is not mounted"
[ "$(val http1 omnifs_resident_memory_bytes)" -gt 1000000 ] || fail "resident memory under 1 MB"
[ "$(val http1 omnifs_rocksdb_memory_budget_bytes)" = $((16 << 20)) ] ||
	fail "RocksDB's budget is not the default 16 MiB: $(val http1 omnifs_rocksdb_memory_budget_bytes)"
[ "$(val http1 omnifs_rocksdb_memory_bytes use=memtables)" -gt 0 ] || fail "no memtables counted"

# one_leader: exactly one node's is_leader is 1 (polled: an election may run).
one_leader() {
	local i n=0
	for i in 1 2 3; do
		scrape "$i" "lead$i" || return 1
		n=$((n + $(val "lead$i" omnifs_is_leader)))
	done
	[ "$n" = 1 ]
}
wait_until 60 one_leader

log "writes through node 1 move its counters"
scrape 1 before
applied0=$(val before omnifs_applied_index)
writes0=$(val before omnifs_fuse_operation_duration_seconds_count op=write)
proposals0=$(val before omnifs_proposal_duration_seconds_count)
declare -A sent0
for p in 2 3; do sent0[$p]=$(val before omnifs_peer_sent_bytes_total peer="$p"); done
for k in $(seq 1 20); do
	printf 'metrics file %d\n' "$k" >"$T/mnt/node1/f$k"
done
sync_file="$T/mnt/node1/f20"
[ -s "$sync_file" ] || fail "the last file is empty"
scrape 1 after
applied1=$(val after omnifs_applied_index)
writes1=$(val after omnifs_fuse_operation_duration_seconds_count op=write)
proposals1=$(val after omnifs_proposal_duration_seconds_count)
[ "$applied1" -ge $((applied0 + 20)) ] || fail "applied index $applied0 -> $applied1 after 20 files"
[ "$writes1" -ge $((writes0 + 20)) ] || fail "FUSE writes $writes0 -> $writes1 after 20 files"
[ "$proposals1" -ge $((proposals0 + 20)) ] || fail "proposals $proposals0 -> $proposals1"
[ "$(val after omnifs_log_sync_duration_seconds_count)" -gt 0 ] || fail "no log sync counted"
for p in 2 3; do
	sent1=$(val after omnifs_peer_sent_bytes_total peer="$p")
	[ "$sent1" -gt "${sent0[$p]}" ] || fail "bytes sent to n$p: ${sent0[$p]} -> $sent1"
	[ "$(val after omnifs_peer_connected peer="$p")" = 1 ] || fail "n$p unreachable from n1"
done
python3 "$CHECK" check "$T/after" || fail "the page after writes does not parse"

# applied_at_least I IDX: node I's page (through its mount) shows applied >= IDX.
applied_at_least() {
	snap "$1" "applied$1" && [ "$(val "applied$1" omnifs_applied_index)" -ge "$2" ]
}
for i in 2 3; do wait_until 60 applied_at_least "$i" "$applied1"; done

log "only /metrics is served"
code=$(python3 - "http://127.0.0.1:${HTTP_PORTS[0]}/other" <<'PY'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=10)
    print(200)
except urllib.error.HTTPError as e:
    print(e.code)
PY
)
[ "$code" = 404 ] || fail "GET /other answered $code"

log "a stopped peer reads as unreachable"
stop_node 3
# n3_down: node 1 sees its link to n3 down.
n3_down() { scrape 1 down && [ "$(val down omnifs_peer_connected peer=3)" = 0 ]; }
wait_until 60 n3_down
python3 "$CHECK" check "$T/down" || fail "the page with a peer down does not parse"
[ "$(val down omnifs_peer_link_failures_total peer=3)" -gt "$failures3" ] ||
	fail "n1 does not count its link to the stopped n3 as failed"

stop_node 2
stop_node 1

log "a metrics port taken by another process stops the start (exit 3)"
python3 - "$OMNIFSD" "$T/node1/omnifs.conf" "${HTTP_PORTS[0]}" "$T/node1/log" <<'PY' ||
import socket, subprocess, sys
daemon, conf, port, logf = sys.argv[1:]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(port)))
s.listen()
with open(logf, "a") as log:
    rc = subprocess.run([daemon, "-c", conf], stdout=log, stderr=log, timeout=60).returncode
assert rc == 3, "omnifsd exited %d" % rc
PY
	fail "omnifsd started with its metrics port taken"
grep -q "cannot start: \[metrics\] listen = 127.0.0.1:${HTTP_PORTS[0]}: cannot serve HTTP there" \
	"$T/node1/log" || fail "no line saying the metrics port could not be used"
log "PASS"
