#!/usr/bin/env bash
# omnifsctl's compare-and-set on three real omnifsd processes (KV only):
# `kv get --version` prints the version a `kv put --version` printed, on every
# node after a barrier; `--if-version` at the wrong version exits 4 with
# "version mismatch" and writes nothing; version 0 means "only if absent";
# `kv del --if-version`; `--if-absent`; two omnifsctl processes racing with
# the same --if-version: exactly one wins; the value from standard input
# (`-` and `--stdin`) or a file, any bytes (NULs, 1 MiB, the limit; a byte
# more exits 64), back unchanged from `kv get` and `kv get --json`; bad
# options exit 64 (EX_USAGE). (The daemon's side is in tests/replica/test_kv_cas.c.)
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

grep -q "'cfg' is at version $v2, not $v1" "$T/err" || fail "mismatch message: $(cat "$T/err")"

# --if-absent is --if-version 0.
expect_status 4 ctl 1 kv put --if-absent cfg four
grep -q "exists (version $v2), not absent" "$T/err" || fail "if-absent message: $(cat "$T/err")"
va=$(ctl 2 kv put --if-absent --version fresh one)
[[ "$va" =~ ^[1-9][0-9]*$ ]] || fail "put --if-absent --version printed '$va'"

# Two omnifsctl processes on two nodes put from the same version at once:
# the log orders them, exactly one wins, the other exits 4.
ctl 1 kv put race start
ctl 1 barrier
for round in 1 2 3; do
	vr=$(ctl 1 kv get --version race | head -n1)
	rc1=0 rc2=0
	ctl 1 kv put --if-version "$vr" race "a$round" >/dev/null 2>"$T/race1" &
	p1=$!
	ctl 2 kv put --if-version "$vr" race "b$round" >/dev/null 2>"$T/race2" &
	p2=$!
	wait "$p1" || rc1=$?
	wait "$p2" || rc2=$?
	[ "$rc1$rc2" = 04 ] || [ "$rc1$rc2" = 40 ] ||
		fail "race $round from @$vr: exit statuses $rc1 and $rc2: $(cat "$T/race1" "$T/race2")"
	winner=a$round
	[ "$rc1" = 0 ] || winner=b$round
	for i in 1 2 3; do
		ctl "$i" barrier
		[ "$(ctl "$i" kv get race)" = "$winner" ] || fail "race $round: n$i does not show $winner"
	done
done
log "three races of two --if-version puts: one winner each"

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

# Any bytes: NULs and 1 MiB (the limit), through stdin and from a file.
{ printf 'a\0\0b\n\0'; head -c $((1048576 - 6)) /dev/urandom; } >"$T/bin"
[ "$(stat -c %s "$T/bin")" = 1048576 ] || fail "test value is not 1 MiB"
vb=$(ctl 1 kv put --version bin - <"$T/bin")
ctl 2 barrier
ctl 2 kv get bin >"$T/back"
cmp "$T/bin" "$T/back" || fail "binary value changed on its way through stdin and n2"
ctl 3 barrier
ctl 3 kv get --json bin >"$T/json"
[ "$(jq -r .version "$T/json")" = "$vb" ] || fail "get --json version: $(head -c 200 "$T/json")"
[ "$(jq -r .key "$T/json")" = bin ] || fail "get --json key"
jq -r .value "$T/json" | base64 -d | cmp - "$T/bin" || fail "get --json value differs"
printf 'x\0y' >"$T/small"
ctl 2 kv put --if-version "$vb" --file "$T/small" bin
ctl 2 kv get bin | cmp - "$T/small" || fail "put --file"
[ "$(ctl 2 kv get --json bin | jq -r .value)" = eAB5 ] || fail "get --json of x NUL y"
head -c 1048577 /dev/zero >"$T/big"
expect_status 64 ctl 1 kv put big - <"$T/big"
grep -q "more than 1048576 bytes (1 MiB)" "$T/err" || fail "over the limit: $(cat "$T/err")"
expect_status 64 ctl 1 kv put --file "$T/big" big
expect_status 1 ctl 1 kv get big
expect_status 64 ctl 1 kv put --file "$T/nonexistent" big
log "1 MiB with NUL bytes round trip (stdin, get, get --json, --file); 1 MiB + 1 refused"

# Bad usage.
expect_status 64 ctl 1 kv put --if-version x k v
expect_status 64 ctl 1 kv del --if-version 0 k
expect_status 64 ctl 1 kv put --bogus k v
expect_status 64 ctl 1 kv put --stdin k v
expect_status 64 ctl 1 kv get --if-version 3 k
expect_status 64 ctl 1 kv put --if-version
expect_status 64 ctl 1 kv put --if-absent --if-version 3 k v
expect_status 64 ctl 1 kv put --stdin --file "$T/small" k
expect_status 64 ctl 1 kv del --if-absent k
expect_status 64 ctl 1 kv get --json k extra
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
