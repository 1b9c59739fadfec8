#!/usr/bin/env bash
# inotify on a node sees other nodes' changes as it sees its own: for each
# shell workflow (echo >, cp, mv, sed -i, an editor's save by rename, rm,
# mkdir, rmdir, chmod, chown, touch, setfattr, ln -s, ln, mkfifo, mv across
# directories and of a directory, rm -r, tar x, rsync), the
# events `inotifywait -m -r` prints on node B while the workflow runs on
# node A equal those it prints while the same workflow runs on B itself.
# Also a watch on a directory alone and one on a single file.
#
# Normalised away, as what may legitimately differ: IN_OPEN, IN_ACCESS and
# IN_CLOSE_NOWRITE (readers, inotifywait's own listing of new directories);
# how many IN_MODIFY in a row (a write(2) each locally, a commit each from
# elsewhere); random temporary names (sed's, rsync's); and, within a run of
# IN_MODIFY/IN_ATTRIB/IN_CLOSE_WRITE on one file, their order (the log
# records the changes, not when the writer closed the file), and an
# IN_CLOSE_WRITE after no IN_MODIFY (touch opens the file for writing, but a
# close that wrote nothing commits nothing, so no other node learns of it);
# IN_MODIFY of a directory as IN_ATTRIB (only a change of its times makes
# either: utimensat with the atime omitted, as tar does, is IN_MODIFY, with
# the atime named, as rsync does, IN_ATTRIB, and both leave the same state).
# Moves show their cookie as c1, c2... in order: IN_MOVED_FROM and
# IN_MOVED_TO of one rename share one. Directories a
# workflow fills exist before the watch starts: a directory created while
# watching is watched by inotifywait only once it sees it, a race of its own
# on any filesystem.
. "$(dirname "$0")/lib.sh"

command -v inotifywait >/dev/null || fail "inotifywait missing (inotify-tools)"
command -v rsync >/dev/null || fail "rsync missing"
fs_cluster 3
A=1
B=2
MA=$M1
MB=$M2

synced() { for i in 1 2 3; do ctl "$i" barrier >/dev/null; done; }
replay_idle() { [ "$(status_field $B replays_pending)" = 0 ]; }

# A source tree outside the mount for cp, tar and rsync.
SRC="$T/src"
mkdir -p "$SRC/tree/etc/conf.d" "$SRC/tree/bin"
for i in 1 2 3; do printf 'key%d = %d\n' "$i" "$i" >"$SRC/tree/etc/conf.d/$i.conf"; done
printf '#!/bin/sh\necho hi\n' >"$SRC/tree/bin/run"
chmod 0755 "$SRC/tree/bin/run"
touch -d "2020-01-02 03:04:05" "$SRC/tree/etc/conf.d/1.conf"
echo "copied" >"$SRC/file.conf"
tar -C "$SRC/tree" -cf "$T/tree.tar" .

# --- the workflows: setup_X DIR prepares (not watched), run_X DIR is watched
setup_none() { :; }
setup_file() { echo "x = 1" >"$1/cfg"; }
setup_dirs() { mkdir -p "$1/etc/conf.d" "$1/bin"; }
setup_sub() { mkdir "$1/sub"; }
setup_tree() {
	mkdir -p "$1/a/deep" "$1/b"
	echo 1 >"$1/a/f"
	echo 2 >"$1/a/deep/g"
}

run_echo() {
	echo one >"$1/new"
	echo two >>"$1/new"
}
run_overwrite() { echo "x = 2" >"$1/cfg"; }
run_cp() { cp "$SRC/file.conf" "$1/copy.conf"; }
run_mv() { mv "$1/cfg" "$1/renamed"; }
run_sed() { sed -i 's/1/3/' "$1/cfg"; }
run_editor() {
	# What vim (backupcopy=no), emacs and most config tools do to save.
	python3 - "$1" <<-'EOF'
		import os, sys
		d = sys.argv[1]
		with open(os.path.join(d, ".cfg.tmp"), "w") as f:
		    f.write("x = 9\n")
		os.chmod(os.path.join(d, ".cfg.tmp"), 0o644)
		os.replace(os.path.join(d, ".cfg.tmp"), os.path.join(d, "cfg"))
	EOF
}
run_rm() { rm "$1/cfg"; }
run_mkdir() { mkdir "$1/newdir"; }
run_rmdir() { rmdir "$1/sub"; }
run_chmod() { chmod 0600 "$1/cfg"; }
run_chown() { chown 1234:4321 "$1/cfg"; }
run_touch() {
	touch "$1/cfg"
	touch "$1/fresh"
}
run_xattr() { setfattr -n user.origin -v test "$1/cfg"; }
run_symlink() { ln -s cfg "$1/link"; }
run_link() { ln "$1/cfg" "$1/hard"; }
run_fifo() { mkfifo "$1/pipe"; }
run_mv_across() { mv "$1/a/f" "$1/b/f"; }
run_mv_dir() { mv "$1/a" "$1/b/"; }
run_rm_r() { rm -r "$1/a"; }
run_tar() { tar -C "$1" -xpf "$T/tree.tar"; }
run_rsync() { rsync -a "$SRC/tree/" "$1/"; }

# normalise FILE DIR [FILE_WATCHED]: the event lines of FILE for the watches
# under DIR (or only for the watch on FILE_WATCHED), as compared.
normalise() {
	python3 - "$@" <<-'EOF'
		import re, sys
		path, prefix = sys.argv[1], sys.argv[2]
		only = sys.argv[3] if len(sys.argv) > 3 else None
		drop = {"OPEN", "ACCESS", "CLOSE_NOWRITE"}
		runs = {"MODIFY", "ATTRIB", "CLOSE_WRITE"}
		out = []  # [name, events] or [name, set of a run's kinds]
		cookies = {}  # a move's cookie -> c1, c2... in order of appearance
		for line in open(path):
		    where, _, ev = line.rstrip("\n").rpartition(" ")
		    w, _, f = where.partition("|")
		    f, _, cookie = f.rpartition("|")
		    if cookie != "0":
		        ev += " c%d" % cookies.setdefault(cookie, len(cookies) + 1)
		    if only is not None:
		        if w != only or f:
		            continue
		        name = "(the file)"
		    elif w.startswith(prefix) and ".end-marker" not in f:
		        name = (w + f)[len(prefix):] or "."
		    else:
		        continue
		    flags = ev.split(",")
		    if flags[0] in drop:
		        continue
		    name = re.sub(r"sed[A-Za-z0-9]{6}$", "sedXXXXXX", name)
		    name = re.sub(r"(^|/)\.([^/]+)\.[A-Za-z0-9]{6}$", r"\1.\2.XXXXXX", name)
		    kind = flags[0]
		    if kind == "MODIFY" and ("ISDIR" in flags or name.endswith("/") or name == "."):
		        kind = "ATTRIB"  # a directory's times set: see the top
		    if kind in runs and out and out[-1][0] == name and isinstance(out[-1][1], set):
		        out[-1][1].add(kind)
		        continue
		    out.append([name, {kind} if kind in runs else ev])
		for name, ev in out:
		    if isinstance(ev, set):
		        if "MODIFY" not in ev:
		            ev.discard("CLOSE_WRITE")
		        if not ev:
		            continue
		        ev = ",".join(sorted(ev))
		    print(name, ev)
	EOF
}

# watch OUT PATH... [inotifywait args]: starts inotifywait, waits until its
# watches are set; WATCH_PID is its pid.
watch() {
	local out=$1
	shift
	stdbuf -oL inotifywait -m --format '%w|%f|%c %e' "$@" >"$out" 2>"$out.err" &
	WATCH_PID=$!
	CLEANUP_HOOKS+=("kill $WATCH_PID 2>/dev/null")
	wait_until 20 grep -qs "Watches established" "$out.err"
}

# finish DIR OUT: every event of the workflow is printed: a marker made on B
# after all of them shows up last; then the watcher goes.
finish() {
	local dir=$1 out=$2
	touch "$dir/.end-marker"
	wait_until 20 grep -q "end-marker" "$out"
	kill "$WATCH_PID"
	wait "$WATCH_PID" 2>/dev/null || true
}

# events ON NAME SETUP RUN [inotifywait args] prints the normalised events
# B's watcher sees when RUN runs on node ON (A or B), in a fresh directory.
events() {
	local on=$1 name=$2 setup=$3 run=$4
	shift 4
	local m=$MA
	[ "$on" = "$B" ] && m=$MB
	local dir="w-$name-$on" out="$T/events-$name-$on"
	mkdir "$m/$dir"
	"$setup" "$m/$dir"
	synced
	wait_until 30 replay_idle
	if [ "${WATCH_FILE:-}" ]; then
		# The directory is watched too, for the end marker.
		watch "$out" "$@" "$MB/$dir/$WATCH_FILE" "$MB/$dir"
	else
		watch "$out" "$@" "$MB/$dir"
	fi
	"$run" "$m/$dir"
	synced
	wait_until 30 replay_idle
	finish "$MB/$dir" "$out"
	if [ "${WATCH_FILE:-}" ]; then
		normalise "$out" "$MB/$dir/" "$MB/$dir/$WATCH_FILE" >"$out.norm"
	else
		normalise "$out" "$MB/$dir/" >"$out.norm"
	fi
	cat "$out.norm"
}

# same NAME SETUP RUN [inotifywait args]: the workflow on A and on B, B's
# watcher sees the same events.
same() {
	local name=$1
	# Not in a subshell: the cleanup must know of the watchers.
	events $A "$@" >"$T/remote-$name"
	events $B "$@" >"$T/local-$name"
	[ -s "$T/local-$name" ] || fail "$name: no events at all for the local change (test bug)"
	if ! cmp -s "$T/remote-$name" "$T/local-$name"; then
		log "$name: events on B for the change on B, and for the change on A:"
		diff -y "$T/local-$name" "$T/remote-$name" >&2 || true
		log "replays on B: $(status_field $B replays_done) done," \
			"$(status_field $B replays_failed) failed, $(status_field $B replays_dropped) dropped"
		cat "$T/events-$name-$A" >&2
		fail "$name: B's watcher saw A's change differently from its own"
	fi
	log "$name: same events: $(tr '\n' ';' <"$T/remote-$name")"
}

same echo setup_none run_echo -r
same overwrite setup_file run_overwrite -r
same cp setup_none run_cp -r
same mv setup_file run_mv -r
same sed setup_file run_sed -r
same editor setup_file run_editor -r
same rm setup_file run_rm -r
same mkdir setup_none run_mkdir -r
same rmdir setup_sub run_rmdir -r
same chmod setup_file run_chmod -r
same chown setup_file run_chown -r
same touch setup_file run_touch -r
same xattr setup_file run_xattr -r
same symlink setup_file run_symlink -r
same link setup_file run_link -r
same fifo setup_none run_fifo -r
same mv-across setup_tree run_mv_across -r
same mv-dir setup_tree run_mv_dir -r
same rm-r setup_tree run_rm_r -r
same tar setup_dirs run_tar -r
same rsync setup_dirs run_rsync -r
# A directory watched alone, and a single file.
same dir-only setup_file run_sed
WATCH_FILE=cfg same file-modify setup_file run_overwrite
WATCH_FILE=cfg same file-rm setup_file run_rm
WATCH_FILE=cfg same file-chmod setup_file run_chmod

# A watcher that reads the file on each IN_CLOSE_WRITE (a config reloader)
# reads what was written, not what its page cache held from the last read.
mkdir "$MA/reload"
echo v0 >"$MA/reload/cfg"
synced
wait_until 30 replay_idle
python3 - "$MB/reload" "$T/reads" <<'EOF' &
import ctypes, os, struct, sys
d, out = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init()
libc.inotify_add_watch(fd, d.encode(), 0x8)  # IN_CLOSE_WRITE
n = 0
with open(os.path.join(d, "cfg")) as f:
    f.read()  # cached here from now on
with open(out, "w", buffering=1) as o:
    o.write("ready\n")
    while n < 10:
        buf = os.read(fd, 65536)
        off = 0
        while off < len(buf):
            wd, mask, cookie, ln = struct.unpack_from("iIII", buf, off)
            name = buf[off + 16:off + 16 + ln].rstrip(b"\0").decode()
            off += 16 + ln
            if name == "cfg":
                n += 1
                with open(os.path.join(d, "cfg")) as f:
                    o.write("%d %s\n" % (n, f.read().strip()))
EOF
READER=$!
CLEANUP_HOOKS+=("kill $READER 2>/dev/null")
wait_until 20 grep -qs ready "$T/reads"
for i in $(seq 1 10); do
	echo "v$i" >"$MA/reload/cfg"
	wait_until 20 grep -q "^$i " "$T/reads"
	grep -qx "$i v$i" "$T/reads" || fail "read on event $i: '$(grep "^$i " "$T/reads")', not v$i"
done
wait "$READER"
log "a reader on each IN_CLOSE_WRITE read the new content each time"

dropped=$(status_field $B replays_dropped)
failed=$(status_field $B replays_failed)
log "replays on B: $(status_field $B replays_done) done, $failed failed, $dropped dropped"
[ "$dropped" = 0 ] || fail "replays dropped on an idle cluster"
[ "$failed" = 0 ] || fail "replays failed"

# Parallel writers on A: their changes are decided together, so B applies
# them in batches; B's watcher still sees every file created, and B drops
# no replay (each is resolved in the state just before its change).
mkdir "$MA/par"
for j in $(seq 1 8); do mkdir "$MA/par/w$j"; done
synced
wait_until 30 replay_idle
dropped=$(status_field $B replays_dropped)
watch "$T/par-events" -r "$MB/par"
WRITERS=()
for j in $(seq 1 8); do
	(for k in $(seq 1 40); do echo "$k" >"$MA/par/w$j/f$k" || exit 1; done) &
	WRITERS+=($!)
	CLEANUP_HOOKS+=("kill $! 2>/dev/null")
done
for w in "${WRITERS[@]}"; do wait "$w" || fail "a writer on A failed"; done
synced
wait_until 60 replay_idle
creates() { grep -cE '/par/w[0-9]+/\|f[0-9]+\|[0-9]+ CREATE$' "$T/par-events" || true; }
all_created() { [ "$(creates)" = 320 ]; }
seen_created() {
	echo "B's watcher saw $(creates) of 320 files created by 8 writers on A;" \
		"$(($(status_field $B replays_dropped) - dropped)) replays dropped"
}
WAIT_WHY=seen_created wait_until 30 all_created
kill "$WATCH_PID" 2>/dev/null || true
[ "$(status_field $B replays_dropped)" = "$dropped" ] || fail "replays dropped under parallel writers"
log "8 parallel writers on A: B's watcher saw all 320 files created"

# A directory nobody on B looks at: A's changes in it need no replay on B,
# as no watch could see them (B's kernel holds none of its inodes once B's
# replay of its mkdir lets the directory go); counted unseen, none done.
# Once a watcher looks, they are replayed again, events and all.
mkdir "$MA/quiet"
synced
wait_until 30 replay_idle
probes=0
probe_unseen() {
	local before
	before=$(status_field $B replays_unseen)
	probes=$((probes + 1))
	echo p >"$MA/quiet/probe$probes"
	synced
	wait_until 30 replay_idle
	[ "$(status_field $B replays_unseen)" -gt "$before" ]
}
# (B's kernel forgets the directory a moment after the replay of its mkdir.)
wait_until 10 probe_unseen
done0=$(status_field $B replays_done)
unseen0=$(status_field $B replays_unseen)
for k in $(seq 1 20); do echo "$k" >"$MA/quiet/f$k"; done
rm "$MA/quiet/f1"
mv "$MA/quiet/f2" "$MA/quiet/g2"
chmod 0600 "$MA/quiet/f3"
synced
wait_until 30 replay_idle
unseen=$(($(status_field $B replays_unseen) - unseen0))
replayed=$(($(status_field $B replays_done) - done0))
[ "$unseen" = 23 ] && [ "$replayed" = 0 ] ||
	fail "changes in a directory B never looked at: $unseen unseen, $replayed replayed (want 23, 0)"
watch "$T/quiet-events" "$MB/quiet"
echo 21 >"$MA/quiet/f21"
rm "$MA/quiet/f4"
synced
wait_until 30 replay_idle
finish "$MB/quiet" "$T/quiet-events"
grep -q "|f21|0 CLOSE_WRITE" "$T/quiet-events" && grep -q "|f4|0 DELETE" "$T/quiet-events" ||
	fail "a watcher set on the directory later missed A's changes: $(cat "$T/quiet-events")"
log "a directory nobody watched: 23 changes unseen, none replayed; watched, replayed again"

# flood PREFIX: 400 files written on A, each retried while A sees no quorum
# (a node was just stopped or started; slow under the sanitizers).
flood() {
	local i try
	for i in $(seq 1 400); do
		for try in $(seq 1 100); do
			echo "$i" 2>/dev/null >"$MA/flood/$1$i" && break
			sleep 0.05
		done
	done
}

# SIGTERM while B replays a flood from A for a watcher: B stops at once and
# cleanly (its replay thread neither hangs the unmount nor the exit).
mkdir "$MA/flood"
synced
wait_until 30 replay_idle
watch "$T/flood-events" -r "$MB/flood"
before=$(status_field $B replays_done)
flood f &
FLOOD=$!
CLEANUP_HOOKS+=("kill $FLOOD 2>/dev/null")
replaying() { [ "$(status_field $B replays_done)" -gt $((before + 20)) ]; }
wait_until 60 replaying
kill -TERM "${PIDS[$B]}"
gone() { ! kill -0 "${PIDS[$B]}" 2>/dev/null; }
wait_until 30 gone
wait "${PIDS[$B]}" || fail "node $B exited with $? on SIGTERM while replaying"
PIDS[$B]=""
kill "$WATCH_PID" 2>/dev/null || true
wait "$FLOOD"
log "stopped while replaying: clean exit"

# kill -9 of node C while it replays for a watcher: it dies at once (the
# replay thread's calls on the mount do not hold it; the guardian aborts the
# connection); after a restart its watchers see A's changes again.
start_node $B
wait_until 30 mountpoint -q "$MB"
wait_until 60 has_leader $B
wait_until 60 has_leader $A
C=3
MC=$M3
watch "$T/kill-events" -r "$MC/flood"
flood g &
FLOOD=$!
CLEANUP_HOOKS+=("kill $FLOOD 2>/dev/null")
before=$(status_field $C replays_done)
replaying_c() { [ "$(status_field $C replays_done)" -gt $((before + 20)) ]; }
wait_until 60 replaying_c
kill_node $C # returns once the daemon is dead
# The watcher keeps its watches on the lazily unmounted tree, as on any
# filesystem: it goes by hand.
kill "$WATCH_PID" 2>/dev/null || true
wait "$FLOOD"
start_node $C
wait_until 30 mountpoint -q "$MC"
wait_until 60 has_leader $C
watch "$T/restart-events" "$MC/flood"
# A may not count C back yet (EROFS while it sees no quorum): retried.
write_back() { echo back 2>/dev/null >"$MA/flood/after-restart"; }
wait_until 60 write_back
wait_until 30 grep -q "|after-restart|0 CLOSE_WRITE" "$T/restart-events"
kill "$WATCH_PID" 2>/dev/null || true
log "killed while replaying: the mount went with it; after the restart, events again"
log "PASS"
