#!/usr/bin/env bash
# Every filesystem operation made on node A shows on B and C, with its
# attributes: create, write, append, truncate, chmod, chown, utimens, mkdir,
# rmdir, rename (file, directory, over a file, RENAME_EXCHANGE), symlink,
# hard link, xattrs, unlink; and errors are POSIX's.
. "$(dirname "$0")/lib.sh"

fs_cluster 3
converged() { same_trees "$M1" "$M2" "$M3"; }
check() {
	local what=$1
	wait_until 10 converged || true
	converged || {
		diff <(tree_listing "$M1") <(tree_listing "$M2") | head -20
		diff <(tree_listing "$M1") <(tree_listing "$M3") | head -20
		fail "after $what, the trees differ"
	}
	log "ok: $what"
}

echo hello >"$M1/file"
check "create + write"
echo more >>"$M1/file"
check "append"
truncate -s 3 "$M1/file"
ctl 2 barrier # reads on another node follow its replication lag
[ "$(cat "$M2/file")" = hel ] || fail "truncate not seen on B"
check "truncate"
chmod 0640 "$M1/file"
chown 1234:5678 "$M1/file"
check "chmod + chown"
touch -d "2020-01-02 03:04:05" "$M1/file"
ctl 3 barrier
[ "$(stat -c %Y "$M3/file")" = "$(date -d '2020-01-02 03:04:05' +%s)" ] || fail "mtime not seen on C"
check "utimens"
mkdir -p "$M1/d1/d2/d3"
check "mkdir -p"
mv "$M1/file" "$M1/d1/renamed"
check "rename a file"
mv "$M1/d1/d2" "$M1/moved"
check "rename a directory"
echo old >"$M1/target"
echo new >"$M1/source"
mv "$M1/source" "$M1/target"
ctl 2 barrier
[ "$(cat "$M2/target")" = new ] || fail "rename over a file not seen"
check "rename over a file"
echo a >"$M1/xa"
echo b >"$M1/xb"
python3 - "$M1/xa" "$M1/xb" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
if libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), RENAME_EXCHANGE) != 0:
    sys.exit("renameat2(RENAME_EXCHANGE): " + os.strerror(ctypes.get_errno()))
PY
ctl 3 barrier
[ "$(cat "$M3/xa")" = b ] && [ "$(cat "$M3/xb")" = a ] || fail "RENAME_EXCHANGE not seen on C"
check "RENAME_EXCHANGE"
ln -s d1/renamed "$M1/link"
ctl 2 barrier
[ "$(readlink "$M2/link")" = d1/renamed ] || fail "symlink not seen"
check "symlink"
ln "$M1/d1/renamed" "$M1/hard"
ctl 2 barrier
[ "$(stat -c %h "$M2/hard")" = 2 ] || fail "hard link count on B"
check "hard link"
setfattr -n user.color -v blue "$M1/hard"
ctl 3 barrier
[ "$(getfattr --only-values -n user.color "$M3/d1/renamed")" = blue ] || fail "xattr not seen on C"
setfattr -x user.color "$M1/hard"
ctl 2 barrier
getfattr -n user.color "$M2/hard" 2>/dev/null && fail "removed xattr still on B"
check "xattrs"
rm "$M1/hard"
ctl 2 barrier
[ "$(stat -c %h "$M2/d1/renamed")" = 1 ] || fail "link count after unlink on B"
rmdir "$M1/moved/d3"
check "unlink + rmdir"

# Errors as on Linux's own filesystems.
mkdir "$M2/d1" 2>"$T/err" && fail "mkdir of an existing name succeeded"
grep -q "File exists" "$T/err" || fail "mkdir over an existing name: $(cat "$T/err")"
rmdir "$M2/d1" 2>"$T/err" && fail "rmdir of a non-empty directory succeeded"
grep -q "not empty" "$T/err" || fail "rmdir non-empty: $(cat "$T/err")"
# rename(2) itself (mv checks this in user space before asking the filesystem).
python3 -c "import os,sys; os.rename(sys.argv[1], sys.argv[2])" "$M2/d1" "$M2/d1/inside" \
	2>"$T/err" && fail "moved a directory into itself"
grep -q "Invalid argument" "$T/err" || fail "dir into its subtree: $(cat "$T/err")"
touch "$M2/$(printf 'n%.0s' $(seq 1 256))" 2>"$T/err" && fail "a 256-byte name was accepted"
grep -q "File name too long" "$T/err" || fail "long name: $(cat "$T/err")"
echo x >"$M2/.omnifs/status.json" 2>"$T/err" && fail "wrote into /.omnifs"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['node'] == 3" "$M3/.omnifs/status.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['members']) == 3" "$M1/.omnifs/members.json"
log "errors and /.omnifs as expected"
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
