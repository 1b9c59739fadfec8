#!/usr/bin/env bash
# Two nodes, two real mounts (ofs_pair_mount): a change on one node shows on
# the other at once although the kernel may cache entries and attributes
# for 60 s (so only invalidation explains it), and a name created on both
# nodes at the same time is created once.
#
#   test_pair.sh PATH/TO/ofs_pair_mount
#
# Exits 77 only without /dev/fuse; always unmounts; every wait has a deadline.
set -euo pipefail

BIN=$(realpath "${1:?usage: test_pair.sh PATH/TO/ofs_pair_mount}")
[ -c /dev/fuse ] || { echo "# SKIP: no /dev/fuse"; exit 77; }

TMP=$(mktemp -d /tmp/omnifs-pair.XXXXXX)
A=$TMP/a
B=$TMP/b
PID=
cleanup() {
	local rc=$?
	cd /
	fusermount3 -u -z "$A" 2>/dev/null || true
	fusermount3 -u -z "$B" 2>/dev/null || true
	if [ -n "$PID" ]; then
		for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$PID" 2>/dev/null || true
	fi
	[ $rc -eq 0 ] || { echo "# FAILED; log:"; sed 's/^/#   /' "$TMP/log" 2>/dev/null; }
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "not ok - $*"
	exit 1
}
pass() { echo "ok - $*"; }

# Reads through the kernel's caches: coreutils stat asks for the birth time,
# which FUSE never caches, so it would always see fresh attributes; stat(2)
# and read(2) use what the kernel cached (60 s here).
content() { python3 -c 'import sys; print(open(sys.argv[1]).read(), end="")' "$1"; }
mode() { python3 -c 'import os, sys; print("%o" % (os.stat(sys.argv[1]).st_mode & 0o7777))' "$1"; }

# wait_for DESCRIPTION COMMAND...: polls for up to 3 s
wait_for() {
	local what=$1
	shift
	for _ in $(seq 60); do
		"$@" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "$what"
}

mkdir -p "$A" "$B"
"$BIN" "$A" "$B" >"$TMP/log" 2>&1 &
PID=$!
for _ in $(seq 100); do
	mountpoint -q "$A" && mountpoint -q "$B" && break
	kill -0 $PID 2>/dev/null || fail "ofs_pair_mount exited"
	sleep 0.1
done
mountpoint -q "$B" || fail "not mounted"

echo v1 >"$A/f"
[ "$(content "$B/f")" = v1 ] || fail "B does not see A's new file"
[ "$(mode "$B/f")" = 644 ] || fail "mode on B"
echo version-two >"$A/f"
wait_for "B sees A's rewrite (page cache and size invalidated)" \
	test "$(content "$B/f")" = version-two
pass "a rewrite on A shows on B"

chmod 0600 "$A/f"
wait_for "B sees A's chmod (attributes invalidated)" test "$(mode "$B/f")" = 600
pass "a chmod on A shows on B"

mv "$A/f" "$A/g"
wait_for "B sees A's rename (entries invalidated)" test ! -e "$B/f" -a -e "$B/g"
pass "a rename on A shows on B"

setfattr -n user.k -v 1 "$B/g"
[ "$(getfattr --absolute-names --only-values -n user.k "$A/g")" = 1 ] || fail "xattr across"
rm "$B/g"
wait_for "A sees B's unlink" test ! -e "$A/g"
pass "xattrs and unlink across nodes"

# Rename atomicity across nodes: while A replaces cfg by write-tmp+rename,
# readers on B never see it missing or partial.
seq 1 3000 >"$A/cfg"
wait_for "cfg on B" test -e "$B/cfg"
(for i in $(seq 100); do seq 1 3000 >"$A/cfg.tmp" && mv "$A/cfg.tmp" "$A/cfg"; done) &
W=$!
bad=0
reads=0
while kill -0 $W 2>/dev/null && [ $reads -lt 2000 ]; do
	n=$(wc -l <"$B/cfg" 2>/dev/null || echo missing)
	[ "$n" = 3000 ] || bad=$((bad + 1))
	reads=$((reads + 1))
done
wait $W
[ $bad -eq 0 ] || fail "B saw cfg missing or partial $bad times in $reads reads"
pass "rename on A is atomic for readers on B ($reads reads)"

won=0
for i in $(seq 40); do
	r=$( (mkdir "$A/x$i" 2>/dev/null && echo a) & (mkdir "$B/x$i" 2>/dev/null && echo b) & wait)
	n=$(echo "$r" | grep -c . || true)
	[ "$n" -eq 1 ] || fail "mkdir x$i on both nodes: $n successes"
	won=$((won + 1))
done
[ "$(ls "$A" | grep -c '^x')" -eq 40 ] && [ "$(ls "$B" | grep -c '^x')" -eq 40 ] || fail "listings"
pass "40 names made on both nodes at once: each created exactly once"

cd /
fusermount3 -u "$A"
fusermount3 -u "$B"
for _ in $(seq 100); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
kill -0 $PID 2>/dev/null && fail "ofs_pair_mount still running after unmount"
wait $PID || fail "ofs_pair_mount exited with an error"
PID=
if grep -E 'ERROR|runtime error|LeakSanitizer|<3>' "$TMP/log"; then fail "errors in the log"; fi
pass "clean stop"
