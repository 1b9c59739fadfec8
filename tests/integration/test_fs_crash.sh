#!/usr/bin/env bash
# A crash never wedges a mount. Writers on all three mounts create files
# (open, write, close; or a temp file renamed over its name) and replace a
# config file each (write a temp file, fsync, rename), all in ONE shared
# directory, so the killed node has local renames in flight (the kernel holds
# the directory's lock while it waits for the daemon's answer) while the
# changes of the other nodes make its invalidation thread wait for that same
# lock. One daemon at a time is killed at a random moment (the leader every
# other time), with -9, or every fourth time with SIGABRT (a core dump: the
# dumping thread waits for the others to exit, so the main thread stays);
# after each kill, within 2 s:
#  - the killed daemon has exited, every thread of it (none stays in the
#    kernel waiting for a lock its dead FUSE connection holds);
#  - every writer of that mount has come back from the kernel (an error such
#    as ENOTCONN, then more errors until the node is back);
# then the node is started again (every other time onto the dead mount it
# left, which the daemon must clear itself; otherwise after the lazy unmount
# the unit's ExecStopPost does) and mounts. At the end nothing a writer was
# told was written is lost, and the nodes' state digests agree. Then a few
# clean stops (SIGTERM) under the same load: each exits 0 within 10 s (the
# invalidation thread must not wait, at the stop, for a directory lock held
# by a request no thread will serve any more).
#
# OMNIFS_KILLS (default 16) sets the number of kills, OMNIFS_STOPS (default 2)
# the number of stops; OMNIFS_SEED replays the schedule (victims and
# moments), printed at the start.
. "$(dirname "$0")/lib.sh"

KILLS=${OMNIFS_KILLS:-16}
STOPS=${OMNIFS_STOPS:-2}
SEED=${OMNIFS_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
log "seed $SEED (OMNIFS_SEED=$SEED replays it), $KILLS kills"
RANDOM=$SEED
ELECTION_MS=200
WRITERS=2 # per node
CLEAR_S=2 # the time a crash may take to let go of everything

fs_cluster 3
mkdir "$M1/d"
for i in 2 3; do wait_until 10 test -d "$T/mnt/node$i/d"; done

# --- The writers: each records an operation it was told succeeded in its
# ledger (after close or rename returned 0), and after every attempt, failed
# or not, bumps its progress counter (local files, never on a mount).
cat >"$T/writer.py" <<'PY'
import hashlib, os, sys, time
mnt, node, w, ledger, progress, stop = sys.argv[1:]
d = os.path.join(mnt, "d")
led = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
prog = os.open(progress, os.O_WRONLY | os.O_CREAT, 0o644)
cfg = os.path.join(d, "cfg.%s.%s" % (node, w))
n = attempts = 0
while not os.path.exists(stop):
    n += 1
    name = "f.%s.%s.%d" % (node, w, n)
    data = (("%s " % name) * (1 + n % 40)).encode()
    ok = True
    try:
        if n % 2:  # a plain create: open, write, close
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        else:  # a temp file renamed over its name
            tmp = os.path.join(d, ".t." + name)
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(d, name))
        os.write(led, ("f %s %s\n" % (name, hashlib.md5(data).hexdigest())).encode())
        if n % 3 == 0:  # the config file replaced: temp, fsync, rename
            fd = os.open(cfg + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, b"%d\n" % n)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(cfg + ".tmp", cfg)
            os.write(led, ("c %s %d\n" % (os.path.basename(cfg), n)).encode())
    except OSError:
        ok = False
    attempts += 1
    os.pwrite(prog, b"%-15d\n" % attempts, 0)
    if not ok:
        time.sleep(0.05)
PY
declare -a WPIDS=()
for i in 1 2 3; do
	for w in $(seq 1 $WRITERS); do
		python3 "$T/writer.py" "$T/mnt/node$i" "$i" "$w" "$T/ledger.$i.$w" \
			"$T/progress.$i.$w" "$T/stop" &
		WPIDS+=($!)
	done
done
CLEANUP_HOOKS+=('touch "$T/stop"; for p in "${WPIDS[@]}"; do kill -9 "$p" 2>/dev/null; done')

acked() { cat "$T"/ledger."$1".* 2>/dev/null | wc -l; }
acked_above() { [ "$(acked "$1")" -gt "$2" ]; }
progress() { tr -d ' \n' <"$T/progress.$1.$2" 2>/dev/null || echo 0; }
now_ms() { date +%s%3N; }
for i in 1 2 3; do wait_until 30 acked_above "$i" 20; done
log "writers running: $WRITERS per node, all in one directory"

# gone PID: the process has exited, every thread of it (a zombie whose
# threads are all gone, or reaped).
gone() {
	local s
	s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 0
	[ "$s" = Z ] && [ "$(ls "/proc/$1/task" 2>/dev/null | wc -l)" -le 1 ]
}
# stuck PID: its threads and their kernel wait channels, for the report.
stuck() {
	local t
	for t in /proc/"$1"/task/*; do
		echo "    $(cut -d' ' -f3 "$t/stat" 2>/dev/null) $(cat "$t/comm" 2>/dev/null)" \
			"$(cat "$t/wchan" 2>/dev/null)"
	done
}
conn_of() { awk -v m="$T/mnt/node$1" '$5 == m { d = $3 } END { print d }' /proc/self/mountinfo; }
# abort_conn MAJ:MIN: what an operator would have to do for a wedged mount.
abort_conn() {
	[ -d /sys/fs/fuse/connections ] || return 0
	grep -q ' /sys/fs/fuse/connections ' /proc/mounts ||
		mount -t fusectl fusectl /sys/fs/fuse/connections
	[ -e "/sys/fs/fuse/connections/${1#*:}/abort" ] &&
		echo 1 >"/sys/fs/fuse/connections/${1#*:}/abort"
	return 0
}

wedged=0
worst_ms=0
for k in $(seq 1 "$KILLS"); do
	leader=$(leader_id 1)
	if [ $((k % 2)) = 1 ]; then
		v=$leader
		why="the leader"
	else
		v=$(((leader + RANDOM % 2) % 3 + 1))
		why="a follower"
	fi
	# The victim's writers must be at work: some acknowledged writes since
	# its last start, then a random moment.
	before=$(acked "$v")
	wait_until 30 acked_above "$v" "$((before + 3))"
	delay_ms=$((100 + RANDOM % 1400))
	sleep "$((delay_ms / 1000)).$(printf %03d $((delay_ms % 1000)))"
	pid=${PIDS[$v]}
	conn=$(conn_of "$v")
	declare -a p0=()
	for w in $(seq 1 $WRITERS); do p0[w]=$(progress "$v" "$w"); done
	sig=KILL
	[ $((k % 4)) != 0 ] || sig=ABRT
	t0=$(now_ms)
	kill -"$sig" "$pid"
	# Everything let go within CLEAR_S: the daemon gone, each writer back.
	cleared=""
	while [ $(($(now_ms) - t0)) -lt $((CLEAR_S * 1000)) ]; do
		ok=1
		gone "$pid" || ok=0
		for w in $(seq 1 $WRITERS); do
			[ "$(progress "$v" "$w")" -ge $((p0[w] + 2)) ] || ok=0
		done
		if [ $ok = 1 ]; then
			cleared=$(($(now_ms) - t0))
			break
		fi
		sleep 0.05
	done
	if [ -z "$cleared" ]; then
		wedged=$((wedged + 1))
		log "kill $k: SIG$sig to n$v ($why, pid $pid, after ${delay_ms} ms of load): WEDGED," \
			"not cleared after ${CLEAR_S} s; its threads (state, name, wait):"
		stuck "$pid"
		for w in $(seq 1 $WRITERS); do
			log "  writer $w: $(progress "$v" "$w") attempts (was ${p0[w]})"
		done
		abort_conn "$conn"
		wait_until 20 gone "$pid"
	else
		[ "$cleared" -le "$worst_ms" ] || worst_ms=$cleared
		log "kill $k: SIG$sig to n$v ($why, pid $pid, after ${delay_ms} ms of load): cleared in" \
			"${cleared} ms"
	fi
	wait "$pid" 2>/dev/null || true
	PIDS[$v]=""
	# Every other time, what the unit's ExecStopPost does; otherwise the
	# daemon must clear its own dead mount when it starts.
	if [ $((k % 4)) -lt 2 ] && grep -q " $T/mnt/node$v " /proc/mounts; then
		fusermount3 -u -z "$T/mnt/node$v"
	fi
	start_node "$v"
	wait_until 30 mountpoint -q "$T/mnt/node$v"
	wait_until 30 has_leader "$v"
done
log "$wedged of $KILLS kills wedged a mount; the others cleared within ${worst_ms} ms"

# --- Clean stops under the load: exit 0 within 10 s.
hung=0
for s in $(seq 1 "$STOPS"); do
	v=$((RANDOM % 3 + 1))
	before=$(acked "$v")
	wait_until 30 acked_above "$v" "$((before + 3))"
	delay_ms=$((100 + RANDOM % 1400))
	sleep "$((delay_ms / 1000)).$(printf %03d $((delay_ms % 1000)))"
	pid=${PIDS[$v]}
	t0=$(now_ms)
	kill -TERM "$pid"
	until gone "$pid" || [ $(($(now_ms) - t0)) -ge 10000 ]; do sleep 0.05; done
	if ! gone "$pid"; then
		hung=$((hung + 1))
		log "stop $s: SIGTERM to n$v (pid $pid): HUNG, not gone after 10 s; its threads:"
		stuck "$pid"
		kill -9 "$pid" # the guardian aborts the mount
		wait_until 20 gone "$pid"
		wait "$pid" 2>/dev/null || true
	else
		rc=0
		wait "$pid" || rc=$?
		[ $rc = 0 ] || fail "stop $s: n$v exited $rc on SIGTERM"
		log "stop $s: SIGTERM to n$v (pid $pid): exit 0 in $(($(now_ms) - t0)) ms"
	fi
	PIDS[$v]=""
	start_node "$v"
	wait_until 30 mountpoint -q "$T/mnt/node$v"
	wait_until 30 has_leader "$v"
done
log "the guardians aborted $(cat "$T"/node*/log | grep -c 'guard: .*aborted') connections;" \
	"starts cleared $(cat "$T"/node*/log | grep -c 'unmounted the dead mount') dead mounts"

# --- The end of the load: every acknowledged write on every node.
touch "$T/stop"
for p in "${WPIDS[@]}"; do wait "$p" || fail "a writer failed"; done
for i in 1 2 3; do ctl "$i" barrier >/dev/null; done
cat "$T"/ledger.* >"$T/ledger"
for i in 1 2 3; do
	python3 "$(dirname "$0")/check_ledger.py" "$T/mnt/node$i/d" "$T/ledger" ||
		fail "node $i lost acknowledged writes"
done
wait_until 20 digests_agree 1 2 3
log "digests agree: $(ctl 1 digest)"
[ "$wedged" = 0 ] || fail "$wedged of $KILLS kills wedged a mount"
[ "$hung" = 0 ] || fail "$hung of $STOPS stops under load hung"
for i in 1 2 3; do stop_node "$i"; done
log "PASS: $KILLS kills, none wedged (worst ${worst_ms} ms); $STOPS stops under load;" \
	"nothing acknowledged lost"
