#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time and fails on any finding.
# Builds with clang in build/fuzz (-Dfuzz=true).
#
#   tools/fuzz.sh        the wire decoder 40 s, every other target 15 s
#   tools/fuzz.sh 600    each target ten minutes
#   OMNIFS_FUZZ_SECONDS=N tools/fuzz.sh    as tools/fuzz.sh N
#
# Targets (tests/<area>/fuzz_<name>.c, seeds in tests/<area>/fuzz_*corpus/):
#   wire      transport/fuzz_decode   the wire codec's frame decoder
#   ctl       ctl/fuzz_ctl            the control socket's request parsing
#   members   replica/fuzz_members    member tables (MEMBERS frames, stop-signs)
#   step      replica/fuzz_step       in-step frames (STEP, fetched entries, relays)
#   kv-txn    kv/fuzz_txn             KV transactions (log entries)
#   kv-note   kv/fuzz_note            change notes and feed batches (omnifsctl watch)
#   schema    fs/fuzz_schema          the filesystem's keys and stored values
#   chunk     kv/fuzz_chunk           state-transfer chunks (kv_import_chunk, on
#                                     a RocksDB store in a temporary directory)
#   locks     fs/fuzz_lock_table      the lock table's records, leases and keys
#   snapshot  kv/fuzz_snapshot        snapshot files (kv_snapshot_read, offline)
# Seeds are read only; inputs the fuzzer finds go to a temporary directory,
# crashes to build/fuzz/fuzz-artifacts/<target>-crash-...; reproduce one with
# build/fuzz/tests/<area>/fuzz_<name> <artifact>.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${OMNIFS_FUZZ_SECONDS:-}}"
dir=build/fuzz
if [ ! -f "$dir/build.ninja" ]; then
	CC=clang meson setup "$dir" -Dfuzz=true -Dbuildtype=debugoptimized >/dev/null
fi

# name, binary, seed corpus, default seconds, largest input
targets=(
	"wire    tests/transport/fuzz_decode tests/transport/fuzz_corpus   40 65536"
	"ctl     tests/ctl/fuzz_ctl          tests/ctl/fuzz_ctl_corpus     15 4096"
	"members tests/replica/fuzz_members  tests/replica/fuzz_members_corpus 15 4096"
	"step    tests/replica/fuzz_step     tests/replica/fuzz_step_corpus 15 4096"
	"kv-txn  tests/kv/fuzz_txn           tests/kv/fuzz_txn_corpus      15 4096"
	"kv-note tests/kv/fuzz_note          tests/kv/fuzz_note_corpus     15 16384"
	"schema  tests/fs/fuzz_schema        tests/fs/fuzz_schema_corpus   15 512"
	"chunk   tests/kv/fuzz_chunk         tests/kv/fuzz_chunk_corpus    15 4096"
	"locks   tests/fs/fuzz_lock_table    tests/fs/fuzz_lock_table_corpus 15 1024"
	"snapshot tests/kv/fuzz_snapshot     tests/kv/fuzz_snapshot_corpus 15 16384"
)
bins=()
for t in "${targets[@]}"; do
	read -r _ bin _ <<<"$t"
	bins+=("$bin")
done
# Quiet when the build works; its whole output, on stdout, when it does not.
if ! out="$(ninja -C "$dir" "${bins[@]}" 2>&1)"; then
	printf '%s\n' "$out"
	echo "fuzz: building the targets in $dir failed (above)"
	exit 1
fi

work="$(mktemp -d)"
# Targets that need files (fuzz_chunk's store) make them here, in memory
# when /dev/shm is there: a finding ends a target before it cleans up.
files="$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)"
trap 'rm -rf "$work" "$files"' EXIT
mkdir -p "$dir/fuzz-artifacts"
failed=0
for t in "${targets[@]}"; do
	read -r name bin corpus default max_len <<<"$t"
	s="${secs:-$default}"
	log="$dir/fuzz-$name.log"
	mkdir -p "$work/$name"
	if TMPDIR="$files" "$dir/$bin" -max_total_time="$s" -timeout=10 -rss_limit_mb=2048 \
		-max_len="$max_len" -print_final_stats=1 \
		-artifact_prefix="$dir/fuzz-artifacts/$name-" "$work/$name" "$corpus" \
		>"$log" 2>&1; then
		findings=0
	else
		findings=1
		failed=1
		tail -n 40 "$log" >&2
	fi
	runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
	if [ "$findings" = 0 ]; then
		echo "fuzz: $name ran ${s}s, ${runs:-?} inputs, no finding"
	else
		echo "fuzz: $name ran ${runs:-?} inputs, FINDING (log: $log, input in $dir/fuzz-artifacts/$name-*)"
	fi
done
exit "$failed"
