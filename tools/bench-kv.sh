#!/usr/bin/env bash
# Benchmark of the replicated KV: puts/s and latency p50/p99 on a 3-node
# omnifs cluster on loopback (release build, CURVE on, every write synced to
# disk), for 1, 16 and 64 concurrent clients and 256 B and 4 KiB values; and
# the same workload, in the same run, against a 3-member etcd cluster on
# loopback (Debian's etcd-server, through its JSON gateway), and by the
# floor (tools/floor.c: three processes replicating each batch over ZeroMQ
# with an fdatasync each and no consensus logic; its clients' entries are
# batched per round). Prints a table with omnifs's ratios to etcd and to the
# floor, the omnifs daemons' CPU per put (user+system, summed over the three
# nodes, from /proc/PID/stat) and their resident memory. Clients are spread
# over the three nodes in both systems, omnifs's from its leader on.
#
#   tools/bench-kv.sh [SECONDS_PER_CELL]      (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
. tools/bench-lib.sh
B="$OMNIFS_BUILD"

# omnifs: 3 nodes, CURVE, defaults otherwise.
ELECTION_MS=200
cluster_init 3
for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do wait_until 20 has_leader "$i"; done
# The clients are spread over the nodes, the leader's first: one client
# then writes where the floor's does, and the 1-client figures do not swing
# with whichever node won the election.
lead=$(leader_id 1)
socks="$T/node$lead/ctl.sock"
for i in 1 2 3; do [ "$i" = "$lead" ] || socks+=",$T/node$i/ctl.sock"; done

# etcd: 3 members on loopback.
read -r -a EP <<<"$(free_ports 6)"
cluster=""
for i in 1 2 3; do cluster+="${cluster:+,}e$i=http://127.0.0.1:${EP[$((i + 2))]}"; done
ETCD_PIDS=()
for i in 1 2 3; do
	etcd --name "e$i" --data-dir "$T/etcd$i" \
		--listen-client-urls "http://127.0.0.1:${EP[$((i - 1))]}" \
		--advertise-client-urls "http://127.0.0.1:${EP[$((i - 1))]}" \
		--listen-peer-urls "http://127.0.0.1:${EP[$((i + 2))]}" \
		--initial-advertise-peer-urls "http://127.0.0.1:${EP[$((i + 2))]}" \
		--initial-cluster "$cluster" --initial-cluster-state new \
		--initial-cluster-token "bench-$$" >"$T/etcd$i.log" 2>&1 &
	ETCD_PIDS+=($!)
done
CLEANUP_HOOKS+=('kill -9 "${ETCD_PIDS[@]}" 2>/dev/null; wait "${ETCD_PIDS[@]}" 2>/dev/null')
urls="http://127.0.0.1:${EP[0]},http://127.0.0.1:${EP[1]},http://127.0.0.1:${EP[2]}"
etcd_healthy() { curl -sf "http://127.0.0.1:${EP[0]}/health" | grep -q '"health":"true"'; }
wait_until 30 etcd_healthy

field() { sed -n "s/.*: \([0-9]*\) puts\/s, p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms/\\$1/p"; }
hz=$(getconf CLK_TCK)
mkdir -p "$T/floor"
echo "3 nodes on loopback, $(nproc) cores; data on $(df --output=source,fstype "$T" | tail -1)"
echo "leader: node$lead (1 client writes through it; more are spread over the nodes from it)"
rss_line | sed 's/$/ (idle)/'
printf '%-7s %-5s | %8s %6s %6s %7s | %8s %6s %6s | %8s %6s %6s | %6s %6s\n' clients value \
	"omnifs/s" "p50" "p99" "cpu ms" "etcd/s" "p50" "p99" "floor/s" "p50" "p99" "/etcd" "/floor"
for size in 256 4096; do
	for c in 1 16 64; do
		c0=$(cpu_ticks "${PIDS[@]}")
		o=$("$B/tools/omnifs-kvload" -s "$socks" -c "$c" -b "$size" -d "$secs" -p "o$c.$size/")
		c1=$(cpu_ticks "${PIDS[@]}")
		e=$("$B/tools/omnifs-etcdload" -u "$urls" -c "$c" -b "$size" -d "$secs" -p "e$c.$size/")
		f=$("$B/tools/omnifs-floor" -c "$c" -b "$size" -d "$secs" -D "$T/floor")
		or=$(echo "$o" | field 1) op50=$(echo "$o" | field 2) op99=$(echo "$o" | field 3)
		er=$(echo "$e" | field 1) ep50=$(echo "$e" | field 2) ep99=$(echo "$e" | field 3)
		fr=$(echo "$f" | field 1) fp50=$(echo "$f" | field 2) fp99=$(echo "$f" | field 3)
		# Daemon CPU per put: ticks over the cell, summed over the nodes.
		py="print(f'{($c1 - $c0) * 1000 / $hz / max($or * $secs, 1):.2f}',"
		py+=" f'{$or / max($er, 1):.2f}x', f'{$or / max($fr, 1):.2f}x')"
		read -r cpu re rf < <(python3 -c "$py")
		printf '%-7s %-5s | %8s %6s %6s %7s | %8s %6s %6s | %8s %6s %6s | %6s %6s\n' "$c" "$size" \
			"$or" "$op50" "$op99" "$cpu" "$er" "$ep50" "$ep99" "$fr" "$fp50" "$fp99" "$re" "$rf"
	done
done
rss_line | sed 's/$/ (after the run)/'
# omnifsd gives the allocator's free memory back every 10 s: what stays.
sleep 11
rss_line | sed 's/$/ (11 s after the run)/'
echo "cpu ms: the omnifs daemons' user+system CPU per put, summed over the three nodes"
