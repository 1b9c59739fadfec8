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

# The mount is nosuid,nodev (omnifsd is root, so FUSE's defaults for a user's
# mount do not apply): setuid bits and device nodes replicate as data but give
# no rights here. A copy of id(1) owned by uid 1234 with the setuid bit, run
# by root, still says 0; a device node for /dev/null does not open.
opts=$(awk -v m="$M1" '$5 == m { print $6 }' /proc/self/mountinfo)
case ",$opts," in *,nosuid,*nodev,* | *,nodev,*nosuid,*) ;; *) fail "mount options of $M1: '$opts'" ;; esac
cp "$(command -v id)" "$M1/suid-id"
chown 1234 "$M1/suid-id"
chmod 4755 "$M1/suid-id"
ctl 2 barrier
[ "$(stat -c %a:%u "$M2/suid-id")" = 4755:1234 ] || fail "setuid bit not replicated"
[ "$("$M2/suid-id" -u)" = 0 ] || fail "a setuid program on the mount ran as its owner"
mknod "$M1/null" c 1 3
ctl 3 barrier
[ "$(stat -c %F "$M3/null")" = "character special file" ] || fail "device node not replicated"
{ echo x >"$M3/null"; } 2>"$T/err" && fail "a device node on the mount opened as the device"
grep -q "Permission denied" "$T/err" || fail "device node: $(cat "$T/err")"
log "nosuid,nodev: a setuid copy of id runs as root, a device node does not open"

# A script written and made executable on one node runs on another as soon
# as that node shows it (the replay there, which shows the change to inotify
# watchers, must not keep it open for writing: ETXTBSY), made executable
# after it was written or written executable.
for i in 1 2 3 4 5; do
	printf '#!/bin/sh\necho ran %s\n' "$i" >"$M1/run$i"
	chmod 755 "$M1/run$i"
	printf '#!/bin/sh\necho installed %s\n' "$i" >"$T/inst$i"
	install -m 755 "$T/inst$i" "$M1/inst$i"
	ctl 2 barrier
	[ "$("$M2/run$i" 2>&1)" = "ran $i" ] || fail "run$i on node 2: $("$M2/run$i" 2>&1)"
	[ "$("$M2/inst$i" 2>&1)" = "installed $i" ] || fail "inst$i on node 2: $("$M2/inst$i" 2>&1)"
done
log "scripts made executable on node 1 run on node 2 at once"

# The mount's readahead window is [fs] read_ahead_kb's default, 4096 KiB, not
# the kernel's 128: large sequential reads come in 1 MiB requests, ahead.
ra=$(cat "/sys/class/bdi/$(mountpoint -d "$M1")/read_ahead_kb")
[ "$ra" = 4096 ] || fail "readahead of $M1: $ra KiB"
log "readahead of the mount: $ra KiB"

# The daemon checks a caller's rights itself (against the applied state):
# it must see the same supplementary groups the kernel used. User 4321 may
# write a 0770 folder of group 777 only through that supplementary group.
chmod o+x "$T" "$T/mnt"
mkdir "$M1/grp"
chown 0:777 "$M1/grp"
chmod 0770 "$M1/grp"
ctl 2 barrier
as_user() { setpriv --reuid=4321 --regid=4321 "$@"; }
as_user --groups=777 sh -c "echo hi >'$M2/grp/f' && mkdir '$M2/grp/d' && mv '$M2/grp/f' '$M2/grp/d/g'" ||
	fail "a member of the folder's group by a supplementary group could not write there"
as_user --clear-groups sh -c "echo no >'$M2/grp/h'" 2>/dev/null && fail "a stranger wrote into a 0770 folder"
[ "$(stat -c %u:%g "$M2/grp/d/g")" = 4321:4321 ] || fail "owner of a file made by user 4321"
as_user --clear-groups chmod 0600 "$M2/suid-id" 2>/dev/null && fail "user 4321 chmod'ed another user's file"
log "permissions: supplementary groups reach the daemon's checks; strangers are refused"
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
