#!/usr/bin/env bash
# Whole-cluster power cuts lose nothing acknowledged. Every node's data dir is
# on tests/lib/powercut_fs (a FUSE passthrough that, when unmounted, forgets
# every write and directory change not made durable by fsync; see its header
# for the exact model). First a check of the harness itself: a file written
# without fsync, a name created without fsync of its directory, a rename not
# synced and a truncation not synced come back as they were, synced ones stay;
# after SIGUSR1 everything stays.
# Then 3 daemons with mounts and writers on every mount (creates: open, write,
# close; and replaces: temp file, fsync, rename over the name), each
# recording in a ledger outside the cluster what it was told succeeded.
# Each cut: after a random moment of load every daemon is killed with -9 at
# once, the passthrough is unmounted (everything unsynced dropped) and
# mounted again, the daemons restart, and node 1 holds every write
# acknowledged since the last check. At the end it holds them all, and the
# state digests agree.
#
# OMNIFS_CUTS (default 6) sets the number of cuts; OMNIFS_SEED replays the
# moments, printed at the start.
. "$(dirname "$0")/lib.sh"

PCFS="$OMNIFS_BUILD/tests/lib/powercut_fs"
CUTS=${OMNIFS_CUTS:-6}
SEED=${OMNIFS_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
log "seed $SEED (OMNIFS_SEED=$SEED replays it), $CUTS cuts"
RANDOM=$SEED
[ -e /dev/fuse ] || {
	log "SKIP: no /dev/fuse"
	exit 77
}

PL="$T/powercut" # the passthrough's backing dir
PM="$T/durable"	 # its mount: every data dir is below it
PCFS_PID=""
mkdir -p "$PL/live" "$PM"
pcfs_up() {
	"$PCFS" "$PL" "$PM" -f >"$T/powercut.log" 2>&1 &
	PCFS_PID=$!
	wait_until 20 mountpoint -q "$PM"
}
# pcfs_cut: the power goes: unmount, wait for the passthrough to have
# rewritten its tree to what was durable, and exit.
pcfs_cut() {
	fusermount3 -u -z "$PM"
	wait "$PCFS_PID" || fail "powercut_fs exited $? (see $T/powercut.log: $(tail -3 "$T/powercut.log"))"
	PCFS_PID=""
}
CLEANUP_HOOKS+=('[ -n "$PCFS_PID" ] && kill -9 "$PCFS_PID" 2>/dev/null')

# --- The harness drops what it must and keeps what it must.
pcfs_up
python3 - "$PM" before <<'PY'
import os, sys
m = sys.argv[1]
def put(p, data, sync):
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    os.close(fd)
def syncdir(d):
    fd = os.open(d, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
os.mkdir(m + "/d")
syncdir(m)
put(m + "/d/kept", b"A" * 100000, True)
put(m + "/d/old", b"old", True)
syncdir(m + "/d")
put(m + "/d/named", b"B", True)  # the name is not synced
put(m + "/d/kept", b"C" * 10, False)  # truncated and rewritten, not synced
fd = os.open(m + "/d/grow", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"1" * 100)
os.fsync(fd)
syncdir(m + "/d")  # grow's name, and named's
os.write(fd, b"2" * 100)  # not synced
os.close(fd)
put(m + "/d/tmp", b"new", True)
os.rename(m + "/d/tmp", m + "/d/old")  # the directory is not synced
os.mkdir(m + "/unsynced")
PY
pcfs_cut
pcfs_up
got=$(cd "$PM" && for f in d/*; do echo "$f $(wc -c <"$f") $(head -c 3 "$f")"; done &&
	if [ -e unsynced ]; then echo "unsynced kept"; fi)
want="d/grow 100 111
d/kept 100000 AAA
d/named 1 B
d/old 3 old"
[ "$got" = "$want" ] || fail "powercut_fs kept the wrong things: got
$got
want
$want"
rm -rf "$PM/d"
# SIGUSR1: everything durable now (as sync(1) would make it).
echo unsynced >"$PM/synced-by-signal"
kill -USR1 "$PCFS_PID"
wait_until 10 test -s "$PL/checkpoints"
pcfs_cut
pcfs_up
[ "$(cat "$PM/synced-by-signal" 2>&1)" = unsynced ] || fail "powercut_fs: SIGUSR1 did not sync"
rm "$PM/synced-by-signal"
log "powercut_fs: unsynced writes, names, renames and truncations dropped, synced ones kept"

# --- The cluster, each data dir on the passthrough.
fs_cluster_init() {
	MOUNT=1
	cluster_init 3
	local i
	for i in 1 2 3; do
		sed -i "s|^data_dir = .*|data_dir = $PM/node$i|" "$T/node$i/omnifs.conf"
	done
}
ELECTION_MS=200
# Compaction every 100 entries: the cuts also fall on state syncs and trims
# of the log (the applied state is synced only before its entries go).
EXTRA_CONFIG="[compaction]\nmax_entries = 100\nretain_entries = 0"
fs_cluster_init
cluster_start() {
	local i
	for i in 1 2 3; do start_node "$i"; done
	for i in 1 2 3; do
		wait_until 30 mountpoint -q "$T/mnt/node$i"
		wait_until 30 has_leader "$i"
	done
}
cluster_start
M1=$T/mnt/node1
mkdir "$M1/d"
for i in 2 3; do wait_until 10 test -d "$T/mnt/node$i/d"; done

# --- The writers: each records an operation it was told succeeded in its
# ledger (after close or rename returned 0), never on a mount; failures (a
# dead mount, a node still starting) are retried after a pause.
cat >"$T/writer.py" <<'PY'
import hashlib, os, sys, time
mnt, node, w, ledger, stop = sys.argv[1:]
d = os.path.join(mnt, "d")
led = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
cfg = os.path.join(d, "cfg.%s.%s" % (node, w))
n = 0
while not os.path.exists(stop):
    n += 1
    name = "f.%s.%s.%d" % (node, w, n)
    # Every fourth file spans two blocks: values and log entries that
    # large go to RocksDB's blob files, whose syncs the cuts check too.
    data = (("%s " % name) * (1 + n % 40 if n % 4 else 96 * 1024 // (len(name) + 1))).encode()
    try:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        os.write(led, ("f %s %s\n" % (name, hashlib.md5(data).hexdigest())).encode())
        if n % 2 == 0:  # the config file replaced: temp, fsync, rename
            fd = os.open(cfg + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, b"%d\n" % n)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(cfg + ".tmp", cfg)
            os.write(led, ("c %s %d\n" % (os.path.basename(cfg), n)).encode())
    except OSError:
        time.sleep(0.05)
    time.sleep(0.02)  # a bounded ledger: the checks read every file in it
PY
WRITERS=2 # per node
declare -a WPIDS=()
for i in 1 2 3; do
	for w in $(seq 1 $WRITERS); do
		python3 "$T/writer.py" "$T/mnt/node$i" "$i" "$w" "$T/ledger.$i.$w" "$T/stop" &
		WPIDS+=($!)
	done
done
CLEANUP_HOOKS+=('touch "$T/stop"; for p in "${WPIDS[@]}"; do kill -9 "$p" 2>/dev/null; done')
# check_node I [FROM]: node I holds every write acknowledged so far (from
# the ledger's line FROM on: the ledger is read first, so the barrier orders
# each of them before node I's reads).
check_node() {
	cat "$T"/ledger.* >"$T/ledger"
	ctl "$1" barrier >/dev/null
	python3 "$(dirname "$0")/check_ledger.py" "$T/mnt/node$1/d" "$T/ledger" "${2:-0}"
}
acked() { cat "$T"/ledger.* 2>/dev/null | wc -l || true; }
acked_above() { [ "$(acked)" -gt "$1" ]; }

for k in $(seq 1 "$CUTS"); do
	before=$(acked)
	wait_until 60 acked_above "$((before + 30))"
	delay_ms=$((RANDOM % 1500))
	sleep "$((delay_ms / 1000)).$(printf %03d $((delay_ms % 1000)))"
	kill -9 "${PIDS[1]}" "${PIDS[2]}" "${PIDS[3]}"
	for i in 1 2 3; do
		wait "${PIDS[$i]}" 2>/dev/null || true
		PIDS[$i]=""
		# What the unit's ExecStopPost does.
		if grep -q " $T/mnt/node$i " /proc/mounts; then fusermount3 -u -z "$T/mnt/node$i"; fi
	done
	pcfs_cut
	log "cut $k, ${delay_ms} ms after the 30th write acknowledged since the last:" \
		"$(acked) acknowledged in all; $(tail -1 "$T/powercut.log" | sed 's/^powercut_fs: cut: //')"
	log "  unsynced, dropped: $(sed -n 's/^powercut_fs: unsynced writes dropped: //p;
		s/^powercut_fs: unsynced entries dropped in \(.*\)/entries of \1/p' "$T/powercut.log" |
		sort | tr '\n' ' ')"
	pcfs_up
	cluster_start
	# The writes acknowledged since the last cut's check (all at the end).
	check_node 1 "${checked:-0}" >/dev/null || fail "cut $k: acknowledged writes lost"
	checked=$(wc -l <"$T/ledger")
done

# --- Every acknowledged write on every node.
touch "$T/stop"
for p in "${WPIDS[@]}"; do wait "$p" || fail "a writer failed"; done
check_node 1 || fail "node 1 lost acknowledged writes"
# The same state everywhere, so every node holds them.
wait_until 20 digests_agree 1 2 3
log "digests agree: $(ctl 1 digest)"
for i in 1 2 3; do stop_node "$i"; done
log "PASS: $CUTS whole-cluster power cuts, nothing acknowledged lost"
