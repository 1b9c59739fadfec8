#!/usr/bin/env bash
# Mounts omnifs on one node (ofs_local_mount: no consensus; the replicated
# KV's RocksDB store in a temporary dir, each transaction applied at once)
# and runs everyday shell workflows on it, then the same workflow on a local
# directory, and compares the two trees: content (diff -r), and type, mode,
# owner, size, link count and mtime of every entry. Then checks errno
# behaviour and limits that a comparison cannot show.
#
#   test_mount.sh PATH/TO/ofs_local_mount
#
# Exits 77 (skip) only when /dev/fuse is missing. Always unmounts, even on
# failure, and is bounded in time (every wait has a deadline).
set -euo pipefail

BIN=$(realpath "${1:?usage: test_mount.sh PATH/TO/ofs_local_mount}")
[ -c /dev/fuse ] || { echo "# SKIP: no /dev/fuse"; exit 77; }
command -v fusermount3 >/dev/null || { echo "# SKIP: no fusermount3"; exit 77; }

TMP=$(mktemp -d /tmp/omnifs-test.XXXXXX)
PIDS=()
MOUNTS=()
cleanup() {
	local rc=$?
	for m in "${MOUNTS[@]}"; do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	if [ $rc -ne 0 ]; then
		echo "# FAILED (rc=$rc); daemon logs:"
		tail -n 30 "$TMP"/*.log 2>/dev/null | sed 's/^/#   /'
	fi
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

# start_mount NAME [options...]: mounts at $TMP/NAME, sets MNT.
start_mount() {
	local name=$1
	shift
	MNT=$TMP/$name
	mkdir -p "$MNT"
	"$BIN" "$MNT" "$TMP/$name.data" "$@" >"$TMP/$name.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	MOUNTS+=("$MNT")
	for _ in $(seq 100); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$pid" 2>/dev/null || fail "ofs_local_mount exited before mounting $name"
		sleep 0.1
	done
	fail "$name not mounted within 10 s"
}

# stop_mount NAME: stops the last daemon started (NAME) with SIGTERM, as
# systemd does, and waits for it to unmount and exit.
stop_mount() {
	local pid=${PIDS[-1]}
	kill -TERM "$pid"
	for _ in $(seq 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			mountpoint -q "$TMP/$1" && fail "$1 still mounted after SIGTERM"
			return 0
		fi
		sleep 0.1
	done
	fail "ofs_local_mount of $1 did not exit on SIGTERM"
}

expect_errno() { # expect_errno ERRNO_NAME python-statement
	python3 - "$1" "$2" <<'EOF' || exit 1
import errno, os, sys, ctypes
want, stmt = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
def fallocate(path, mode, off, length):
    fd = os.open(path, os.O_RDWR)
    r = libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(length))
    e = ctypes.get_errno()
    os.close(fd)
    if r != 0:
        raise OSError(e, os.strerror(e))
def renameat2(a, b, flags):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
try:
    exec(stmt)
except OSError as e:
    if errno.errorcode.get(e.errno) == want:
        print("ok - %s -> %s" % (stmt, want))
        sys.exit(0)
    print("not ok - %s -> %s, expected %s" % (stmt, errno.errorcode.get(e.errno), want))
    sys.exit(1)
print("not ok - %s succeeded, expected %s" % (stmt, want))
sys.exit(1)
EOF
}

# A source tree on the local disk, with modes, owners, times, links, odd names.
SRC=$TMP/src
mkdir -p "$SRC/etc/conf.d" "$SRC/bin" "$SRC/empty" "$SRC/deep/a/b/c"
printf 'foo=1\nbar=2\n' >"$SRC/etc/app.conf"
printf '#!/bin/sh\necho hi\n' >"$SRC/bin/run"
chmod 0755 "$SRC/bin/run"
printf 'secret\n' >"$SRC/etc/conf.d/key"
chmod 0600 "$SRC/etc/conf.d/key"
chown 1234:5678 "$SRC/etc/conf.d/key"
printf 'spaces\n' >"$SRC/etc/my file with spaces.txt"
printf 'utf8\n' >"$SRC/etc/héllo wörld ✓.txt"
ln -s ../etc/app.conf "$SRC/bin/app.conf"
ln -s /nonexistent/target "$SRC/dangling"
ln "$SRC/etc/app.conf" "$SRC/etc/app.conf.hard"
head -c 300000 /dev/urandom >"$SRC/deep/a/b/c/blob"
chmod 2775 "$SRC/deep"
chmod 1777 "$SRC/empty"
touch -d '2001-02-03 04:05:06.123456789' "$SRC/etc/app.conf" "$SRC/bin"
touch -h -d '1999-12-31 23:59:59' "$SRC/bin/app.conf"

# The workflow, run on the mount and on a local directory.
workflow() {
	local d=$1
	cp -a "$SRC" "$d/copy"
	mkdir -p "$d/made/x/y/z"
	mv "$d/copy/etc/my file with spaces.txt" "$d/copy/etc/renamed file.txt"
	mv "$d/copy/deep" "$d/made/x/deep"
	sed -i 's/foo=1/foo=42/' "$d/copy/etc/app.conf"
	echo appended >>"$d/copy/etc/héllo wörld ✓.txt"
	echo one >"$d/made/log"
	echo two >>"$d/made/log"
	(cd "$d/copy" && tar cf - .) | (mkdir -p "$d/untar" && cd "$d/untar" && tar xpf -)
	ln -s made/log "$d/loglink"
	ln "$d/made/log" "$d/made/log.hard"
	chmod 0640 "$d/made/log"
	chown 4321:8765 "$d/made/log"
	chmod 0700 "$d/made/x/y"
	touch -d '2010-10-10 10:10:10' "$d/made/log" "$d/made/x/y/z"
	truncate -s 100000 "$d/made/sparse"
	printf 'tail' | dd of="$d/made/sparse" bs=1 seek=70000 conv=notrunc status=none
	truncate -s 70002 "$d/made/sparse"
	rm -rf "$d/untar/deep" "$d/copy/empty"
	mkdir "$d/many"
	for i in $(seq 2000); do : >"$d/many/file number $i"; done
	rm "$d/many/file number 7"
}

listing() { # type, mode, owner, size, links (dirs: not size), mtime of non-dirs
	(cd "$1" && find . -path ./.omnifs -prune -o \
		\( -type d -printf '%p %M %U:%G %n\n' \) -o \
		\( -type l -printf '%p %M %U:%G %s %n %l\n' \) -o \
		-printf '%p %M %U:%G %s %n %T@\n') | LC_ALL=C sort
}

start_mount main
M=$MNT
REF=$TMP/ref
mkdir -p "$M/w" "$REF"
workflow "$M/w"
workflow "$REF"
pass "workflow ran on the mount"

diff -r --no-dereference "$REF" "$M/w" >"$TMP/diff.txt" || { cat "$TMP/diff.txt"; fail "contents differ"; }
pass "diff -r: same content as on a local dir"
# Times the workflow did not set itself (touch -d, cp -a) depend on when it ran:
# compare those only by presence.
listing "$REF" | sed -E 's/ [0-9]{10,}\.[0-9]+$/ T/' >"$TMP/ref.list"
listing "$M/w" | sed -E 's/ [0-9]{10,}\.[0-9]+$/ T/' >"$TMP/mnt.list"
diff "$TMP/ref.list" "$TMP/mnt.list" || fail "modes, owners, sizes or links differ"
pass "same types, modes, owners, sizes, link counts"
for f in copy/etc/app.conf.hard copy/bin/run made/log made/x/y/z copy/bin/app.conf; do
	a=$(stat -c '%Y.%y' "$REF/$f")
	b=$(stat -c '%Y.%y' "$M/w/$f")
	[ "$a" = "$b" ] || fail "mtime of $f: $b, expected $a"
done
pass "preserved and set mtimes match (ns)"
[ "$(ls "$M/w/many" | wc -l)" -eq 1999 ] || fail "2000-file directory lists wrong"
[ "$(stat -c %h "$M/w/made/log")" -eq 2 ] || fail "hard link count"
[ "$(readlink "$M/w/copy/dangling")" = /nonexistent/target ] || fail "readlink"
[ "$(stat -c %h "$M/w/made/x")" -eq 4 ] || fail "dir nlink 2 + subdirs"
pass "2000 entries, link counts, readlink"

# tar c of the mount reads back what tar x of it gives
(cd "$M/w" && tar cf "$TMP/back.tar" copy made)
mkdir "$TMP/back" && tar xpf "$TMP/back.tar" -C "$TMP/back"
diff -r --no-dereference "$REF/copy" "$TMP/back/copy" || fail "tar c of the mount"
pass "tar c from the mount round-trips"

# xattrs
f=$M/w/made/log
setfattr -n user.color -v blue "$f"
[ "$(getfattr --absolute-names --only-values -n user.color "$f")" = blue ] || fail "getfattr"
setfattr -n user.empty "$f"
getfattr --absolute-names -d "$f" | grep -q 'user.empty' || fail "listxattr"
setfattr -x user.color "$f"
expect_errno ENODATA "os.getxattr('$f', 'user.color')"
expect_errno ENODATA "os.getxattr('$f', 'user.none')"
expect_errno EEXIST "os.setxattr('$f', 'user.empty', b'x', os.XATTR_CREATE)"
expect_errno ENODATA "os.setxattr('$f', 'user.nope', b'x', os.XATTR_REPLACE)"
expect_errno ENODATA "os.removexattr('$f', 'user.nope')"
python3 -c "
import os, errno, ctypes
os.setxattr('$f', 'user.big', b'x' * 100)
buf = ctypes.create_string_buffer(10)
libc = ctypes.CDLL(None, use_errno=True)
r = libc.getxattr(b'$f', b'user.big', buf, 10)
assert r == -1 and ctypes.get_errno() == errno.ERANGE, (r, ctypes.get_errno())
assert libc.getxattr(b'$f', b'user.big', None, 0) == 100
" || fail "ERANGE / size query"
pass "xattrs: set, get, list, remove, CREATE/REPLACE, ENODATA, ERANGE"

# errno behaviour
cd "$M/w"
mkdir -p e/sub e/full && touch e/full/x e/file
expect_errno ENOTEMPTY "os.rmdir('e/full')"
expect_errno ENOTDIR "os.rmdir('e/file')"
expect_errno EISDIR "os.unlink('e/sub')"
expect_errno EEXIST "os.mkdir('e/sub')"
expect_errno EINVAL "os.rename('e', 'e/sub/inside')"
expect_errno ENAMETOOLONG "open('e/' + 'n' * 256, 'w')"
python3 -c "open('e/' + 'n' * 255, 'w').write('ok')" || fail "255-byte name"
expect_errno EEXIST "renameat2('e/file', 'e/sub', 1)"
expect_errno ENOTDIR "os.rename('e/sub', 'e/file')"
expect_errno EISDIR "os.rename('e/file', 'e/sub')"
echo A >e/a && echo B >e/b
python3 -c "
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
assert libc.renameat2(-100, b'e/a', -100, b'e/b', 2) == 0
assert open('e/a').read() == 'B\n' and open('e/b').read() == 'A\n'
" || fail "RENAME_EXCHANGE"
mv e/full e/sub/moved && [ -f e/sub/moved/x ] || fail "mv dir"
mkdir e/emptytarget && mv e/sub/moved e/emptytarget 2>/dev/null
python3 -c "import os; os.mkdir('e/t1'); os.mkdir('e/t2'); os.rename('e/t1', 'e/t2'); assert not os.path.exists('e/t1')" ||
	fail "rename over an empty dir"
expect_errno ENOTSUP "fallocate('e/file', 1, 0, 4096)"
python3 -c "import os; fd = os.open('e/file', os.O_RDWR); os.posix_fallocate(fd, 0, 5000); assert os.fstat(fd).st_size == 5000" ||
	fail "fallocate mode 0"
pass "errno: ENOTEMPTY ENOTDIR EISDIR EEXIST EINVAL ENAMETOOLONG, NOREPLACE, EXCHANGE"

# An open file stays readable (and writable) after unlink until closed.
echo "still here" >ghost
exec 3<>ghost
rm ghost
[ ! -e ghost ] || fail "unlinked file still visible"
[ "$(cat <&3)" = "still here" ] || fail "open-unlinked file not readable"
echo more >&3
exec 3>&-
pass "open-unlinked file readable until closed"

# Rename atomicity: a reader never sees a missing or half-written file
# while a writer replaces it with tmp+rename.
seq 1 5000 >cfg
(for i in $(seq 60); do seq 1 5000 >cfg.tmp && mv cfg.tmp cfg; done) &
W=$!
bad=0
for _ in $(seq 200); do
	n=$(wc -l <cfg 2>/dev/null || echo missing)
	[ "$n" = 5000 ] || bad=$((bad + 1))
	kill -0 $W 2>/dev/null || break
done
wait $W
[ $bad -eq 0 ] || fail "reader saw a missing or partial file $bad times"
pass "rename replaces files atomically"

# Big files: over the write buffer (4 MiB), many blocks, rewrite in place.
head -c 10000000 /dev/urandom >"$TMP/big"
cp "$TMP/big" big && cmp "$TMP/big" big || fail "10 MB file round-trip"
dd if=/dev/zero of=big bs=4096 seek=100 count=1 conv=notrunc status=none
dd if=/dev/zero of="$TMP/big" bs=4096 seek=100 count=1 conv=notrunc status=none
cmp "$TMP/big" big || fail "4 KiB overwrite inside a big file"
: >big && [ "$(stat -c %s big)" -eq 0 ] || fail "O_TRUNC"
pass "large files, partial overwrite, truncation"
expect_errno EFBIG "f = open('toobig', 'wb'); f.seek(64 * 1024 * 1024); f.write(b'x'); f.close()"

# /.omnifs is read-only and shows JSON.
cd /
grep -q '{' "$M/.omnifs/status.json" || fail "status.json"
[ -f "$M/.omnifs/members.json" ] || fail "members.json"
expect_errno EROFS "open('$M/.omnifs/status.json', 'w')"
expect_errno EROFS "open('$M/.omnifs/new', 'w')"
expect_errno EROFS "os.rename('$M/.omnifs', '$M/x')"
expect_errno EEXIST "os.mkdir('$M/.omnifs')"
pass "/.omnifs is read-only"

# statfs shows the limits.
[ "$(stat -f -c %c "$M")" -eq 1000000 ] || fail "statfs inode total"
[ "$(stat -f -c %l "$M")" -eq 255 ] || fail "statfs name length"
pass "statfs"

rm -rf "$M/w"
[ -z "$(ls "$M")" ] || fail "rm -rf left entries: $(ls "$M")"
pass "rm -rf"

# Limits: a tiny filesystem, and a 1 GiB file when configured.
start_mount tiny --max-total-mb 1 --max-inodes 20
T=$MNT
if head -c 2000000 /dev/zero >"$T/fill" 2>"$TMP/err"; then fail "2 MB written into 1 MiB"; fi
grep -q 'No space left' "$TMP/err" || fail "ENOSPC expected, got: $(cat "$TMP/err")"
rm -f "$T/fill"
# unlinked files are freed after a grace period (2 s)
for _ in $(seq 100); do [ "$(stat -f -c %d "$T")" -eq 19 ] && break; sleep 0.1; done
[ "$(stat -f -c %d "$T")" -eq 19 ] || fail "the unlinked file was not freed: $(stat -f -c %d "$T") free"
n=0
for i in $(seq 30); do { : >"$T/f$i"; } 2>/dev/null && n=$((n + 1)); done
[ $n -eq 19 ] || fail "created $n files with max_inodes 20 (root included), expected 19"
expect_errno ENOSPC "os.mkdir('$T/onemore')"
[ "$(stat -f -c %c "$T")" -eq 20 ] || fail "statfs of the tiny fs"
rm -f "$T"/f*
pass "ENOSPC for bytes and inodes"
start_mount bigfs --max-file-mb 1024
T=$MNT
python3 -c "
f = open('$T/huge', 'wb')
f.truncate(1 << 30)
f.seek((1 << 30) - 4096)
f.write(b'z' * 4096)
f.close()
g = open('$T/huge', 'rb')
g.seek((1 << 30) - 4096)
assert g.read() == b'z' * 4096
g.seek(12345)
assert g.read(10) == bytes(10)
" || fail "1 GiB file"
pass "a 1 GiB (sparse) file with max_file_size_mb = 1024"

# State survives a restart: unmount, mount the same data dir again.
cd /
start_mount persist
P=$MNT
mkdir -p "$P/d/e" && echo kept >"$P/d/e/f" && ln -s e/f "$P/d/l" && setfattr -n user.k -v v "$P/d/e/f"
exec 4<"$P/d/e/f" # open and unlinked at the stop: freed at the next start
rm "$P/d/e/f.tmp" 2>/dev/null || true
cp "$P/d/e/f" "$P/d/e/g" && rm "$P/d/e/f"
exec 4<&-
stop_mount persist
start_mount persist
[ "$(cat "$P/d/l" 2>/dev/null || cat "$P/d/e/g")" = kept ] || fail "content after restart"
[ "$(cat "$P/d/e/g")" = kept ] || fail "copy after restart"
[ ! -e "$P/d/e/f" ] || fail "unlinked file back after restart"
[ "$(stat -c %i "$P")" = 1 ] || fail "root inode"
pass "state survives SIGTERM and a new mount"

# A second daemon on a mounted directory refuses to start.
if timeout 20 "$BIN" "$P" >"$TMP/dup.out" 2>&1; then fail "mounted twice on $P"; fi
grep -q 'already a mount point' "$TMP/dup.out" || fail "no clear message: $(cat "$TMP/dup.out")"
pass "a mountpoint in use is refused"

# Every daemon stops cleanly on unmount, and none logged an error or a
# sanitizer report.
cd /
for m in "${MOUNTS[@]}"; do
	mountpoint -q "$m" && { fusermount3 -u "$m" || fail "unmount $m"; }
done
for p in "${PIDS[@]}"; do
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$p" 2>/dev/null && fail "ofs_local_mount $p still running after unmount"
done
if grep -E 'ERROR|runtime error|LeakSanitizer|<3>' "$TMP"/*.log | grep -v 'failed to unmount'; then
	fail "errors in the daemon logs"
fi
pass "daemons stopped cleanly, logs clean"

echo "# all mount tests passed"
