#!/usr/bin/env bash
# omnifsctl's compare-and-set on three real omnifsd processes (KV only):
# `kv get --version` prints the version a `kv put --version` printed, on every
# node after a barrier; `--if-version` at the wrong version exits 4 with
# "version mismatch" and writes nothing; version 0 means "only if absent";
# `kv del --if-version`; the value from standard input (`-` and `--stdin`);
# bad options exit 64 (EX_USAGE). (The daemon's side is in tests/replica/test_kv_cas.c.)
. "$(dirname "$0")/lib.sh"

cluster_up 3

# expect_status WANT CMD...: CMD exits with WANT (its stderr kept in $T/err).
expect_status() {
	local want=$1 rc=0
	shift
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = "$want" ] || fail "$* exited $rc, not $want: $(cat "$T/err")"
}

v1=$(ctl 1 kv put --if-version 0 --version cfg one)
[[ "$v1" =~ ^[1-9][0-9]*$ ]] || fail "put --version printed '$v1'"
expect_status 4 ctl 2 kv put --if-version 0 cfg two
grep -q "version mismatch" "$T/err" || fail "no 'version mismatch' in: $(cat "$T/err")"
for i in 1 2 3; do
	ctl "$i" barrier
	[ "$(ctl "$i" kv get --version cfg)" = "$v1"$'\n'one ] || fail "n$i: get --version cfg"
done
[ -z "$(ctl 1 kv put again plain)" ] || fail "a put without --version printed something"

# From v1: one put wins, a second from v1 exits 4 and writes nothing.
v2=$(ctl 3 kv put --if-version "$v1" --version cfg two)
[ "$v2" -gt "$v1" ] || fail "version $v2 after $v1"
expect_status 4 ctl 1 kv put --if-version "$v1" cfg three
ctl 1 barrier
[ "$(ctl 1 kv get cfg)" = two ] || fail "a refused put wrote"
log "compare-and-set: @$v1 -> @$v2, a second put from @$v1 refused"

# Guarded deletes.
expect_status 4 ctl 2 kv del --if-version "$v1" cfg
ctl 2 kv del --if-version "$v2" cfg
expect_status 1 ctl 2 kv get cfg
expect_status 4 ctl 2 kv del --if-version "$v2" cfg
grep -q "absent" "$T/err" || fail "mismatch on an absent key does not say so: $(cat "$T/err")"

# Values from standard input, never on the command line.
printf 'secret value' | ctl 1 kv put --stdin token
[ "$(ctl 1 kv get token)" = "secret value" ] || fail "put --stdin"
v=$(ctl 1 kv get --version token | head -n1)
printf 'second' | ctl 2 kv put --if-version "$v" token -
ctl 3 barrier
[ "$(ctl 3 kv get token)" = second ] || fail "put --if-version V KEY -"

# Bad usage.
expect_status 64 ctl 1 kv put --if-version x k v
expect_status 64 ctl 1 kv del --if-version 0 k
expect_status 64 ctl 1 kv put --bogus k v
expect_status 64 ctl 1 kv put --stdin k v
expect_status 64 ctl 1 kv get --if-version 3 k
expect_status 64 ctl 1 kv put --if-version
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
