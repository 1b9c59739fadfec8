#!/usr/bin/env bash
# omnifsd@.service as systemd runs it, on three Debian 12 machines with
# systemd as PID 1 (tests/lib/machines.sh), under a write load:
#  - kill -9 of the daemon (the leader, then a follower, twice each;
#    OMNIFS_KILLS sets how many): Restart=on-failure brings the node back,
#    mounted and serving; the dead mount never hangs a program on that
#    machine (its guardian aborts the FUSE connection, ExecStopPost unmounts
#    it); the writers on that machine go on once it is back. The writers
#    create and rename files in ONE directory shared by all machines: a
#    killed daemon's thread that invalidates another machine's change there
#    waits for the directory's lock, held by a local rename in flight, which
#    without the guardian kept the dead daemon from ever exiting;
#  - SIGSTOP of the daemon (its replica loop stalls): the watchdog gets it
#    killed and restarted;
#  - `systemctl stop`: exit 0, the mount gone; `systemctl start` again;
#  - a config error: `systemctl status` shows the daemon's line naming the
#    file, line and key (in the journal at priority err), and the unit fails
#    at once, never restarted.
# At the end every file a writer was told was written is on every machine,
# with its content, and the machines' state digests agree.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../lib/machines.sh"

MX_DIR="$T/machines"
CLEANUP_HOOKS+=(machines_down)
MACHINES=(1 2 3)
UNIT=omnifsd@omnifs
KILLS=${OMNIFS_KILLS:-4}

addr() { echo "10.0.0.$1"; }
prop() { on_machine "$1" systemctl show -P "$2" "$3"; }
main_pid() { prop "$1" MainPID "$UNIT"; }
restarts() { prop "$1" NRestarts "$UNIT"; }
unit_active() { [ "$(on_machine "$1" systemctl is-active "$UNIT")" = active ]; }
# serving N: active, an omnifs mount that answers, a quorum and a leader.
serving() {
	unit_active "$1" && on_machine "$1" timeout 5 stat -f /srv/omnifs >/dev/null 2>&1 &&
		on_machine "$1" omnifsctl status --json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(not (s["quorum"] and s["leader"]))'
}
leader() { on_machine 1 omnifsctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])'; }
# hung N: the programs on machine N stuck in the kernel (D state) right now.
hung() { on_machine "$1" ps -eo stat=,pid=,comm=,wchan:32= | awk '$1 ~ /^D/' || true; }
no_hung() { [ -z "$(hung "$1")" ]; }
acked() { on_machine "$1" sh -c 'wc -l </root/acked'; }
# The checks wait_until polls (they must read anew each time).
acked_above() { [ "$(acked "$1")" -gt "$2" ]; }
restarted_since() { [ "$(restarts "$1")" -gt "$2" ]; }
digest_is() { [ "$(on_machine "$1" omnifsctl digest)" = "$2" ]; }

# --- Three machines, a cluster made with omnifs-bootstrap, the unit enabled.
machines_prepare
for n in "${MACHINES[@]}"; do machine_boot "$n" "$(addr "$n")"; done
on_machine 1 omnifs-bootstrap -c restart -o /root/out 1=10.0.0.1:7100 2=10.0.0.2:7100 \
	3=10.0.0.3:7100 >/dev/null
for n in "${MACHINES[@]}"; do
	[ "$n" = 1 ] || machine_copy 1 "/root/out/node$n" "$n" /root/
	machine_sh "$n" "cd /root/out 2>/dev/null || cd /root
		install -D -m 0644 node$n/omnifs.conf /etc/omnifs/omnifs.conf
		install -D -m 0600 node$n/node$n.key /etc/omnifs/keys/node$n.key
		mkdir -p /srv/omnifs
		systemctl enable --now --no-block $UNIT"
done
for n in "${MACHINES[@]}"; do wait_until 120 serving "$n"; done
log "a cluster of 3 under systemd, serving on every machine"

# --- The load: on each machine two writers that make files (write, then
# rename over the name: what editors and config tools do) in the one folder
# all machines share, and record each one they were told is done in
# /root/acked (machine-local). A failed write (EROFS, ENOTCONN, EIO while its
# node is down) is retried later.
on_machine 1 mkdir -p /srv/omnifs/shared
declare -a WRITERS=()
for n in "${MACHINES[@]}"; do
	wait_until 10 on_machine "$n" test -d /srv/omnifs/shared
	on_machine "$n" sh -c ": >/root/acked"
	for w in a b; do
		on_machine "$n" sh -c 'i=0; d=/srv/omnifs/shared
			while [ ! -e /root/stop ]; do
				i=$((i + 1))
				f=m'"$n$w"'.f$i
				if echo "$f" >$d/.$f.tmp 2>/dev/null && mv $d/.$f.tmp $d/$f 2>/dev/null; then
					echo '"$w"'$i >>/root/acked
				else
					sleep 0.2
				fi
			done' </dev/null >/dev/null 2>&1 &
		WRITERS+=($!)
	done
done
for n in "${MACHINES[@]}"; do wait_until 20 acked_above "$n" 20; done
log "writers running on every machine"

# kill_and_recover N WHY: kill -9 of omnifsd on machine N under the load;
# systemd restarts it, it serves again, nothing on the machine stays hung,
# and its writer makes progress again.
kill_and_recover() {
	local n=$1 pid before_restarts before_acked
	pid=$(main_pid "$n")
	before_restarts=$(restarts "$n")
	log "kill -9 of omnifsd on machine $n ($2, pid $pid)"
	on_machine "$n" kill -9 "$pid"
	wait_until 60 restarted_since "$n" "$before_restarts"
	wait_until 60 serving "$n"
	[ "$(main_pid "$n")" != "$pid" ] || fail "machine $n: the same pid serves after kill -9"
	if ! wait_until 20 no_hung "$n"; then
		hung "$n"
		fail "machine $n: programs stuck in the kernel after the restart"
	fi
	before_acked=$(acked "$n")
	wait_until 30 acked_above "$n" "$((before_acked + 5))"
	log "machine $n: restarted by systemd ($(restarts "$n") restarts), serving, writer going on"
}

for k in $(seq 1 "$KILLS"); do
	l=$(leader)
	if [ $((k % 2)) = 1 ]; then
		kill_and_recover "$l" "the leader"
	else
		kill_and_recover "$((l % 3 + 1))" "a follower"
	fi
done

# The guardians aborted the FUSE connection of each daemon they saw dying
# (fusectl inside the machine; a daemon that was gone before they looked
# needed none) and never failed to.
aborts=0
for n in "${MACHINES[@]}"; do
	on_machine "$n" journalctl -u "$UNIT" --no-pager -o cat >"$T/journal$n"
	! grep 'guard: .*failed' "$T/journal$n" || fail "machine $n: a guardian could not abort"
	aborts=$((aborts + $(grep -c 'guard: .*aborted its FUSE connection' "$T/journal$n" || true)))
done
log "$KILLS kills: the guardians aborted $aborts FUSE connections"

# --- The watchdog: a daemon that stops answering (SIGSTOP) is killed and
# restarted (WatchdogSec=10, then TimeoutAbortSec=).
pid=$(main_pid 2)
before=$(restarts 2)
log "SIGSTOP of omnifsd on machine 2 (pid $pid): the watchdog must notice"
on_machine 2 kill -STOP "$pid"
# 27 s when the machine is idle (10 + 15 + RestartSec=2); the deadline leaves
# room for a machine shared with other work.
wait_until 120 restarted_since 2 "$before"
wait_until 60 serving 2
on_machine 2 journalctl -u "$UNIT" --no-pager -o cat >"$T/journal2"
if ! grep -q 'Watchdog timeout' "$T/journal2"; then
	tail -30 "$T/journal2"
	fail "machine 2: no watchdog timeout in the journal"
fi
log "machine 2: the watchdog killed the stalled daemon and systemd restarted it"

# --- The end of the load: every acknowledged file everywhere.
for n in "${MACHINES[@]}"; do on_machine "$n" touch /root/stop; done
# The writers look for /root/stop between two files: wait for them to end.
writers_done() {
	local p
	for p in "${WRITERS[@]}"; do kill -0 "$p" 2>/dev/null && return 1; done
	return 0
}
wait_until 30 writers_done
for n in "${MACHINES[@]}"; do on_machine "$n" omnifsctl barrier >/dev/null; done
for n in "${MACHINES[@]}"; do
	on_machine "$n" cat /root/acked >"$T/acked$n"
	log "machine $n: $(wc -l <"$T/acked$n") files acknowledged"
	for m in "${MACHINES[@]}"; do
		on_machine "$m" sh -c "cd /srv/omnifs/shared && for i in \$(cat); do
			f=m$n\${i%%[0-9]*}.f\${i#[ab]}
			[ \"\$(cat \$f)\" = \"\$f\" ] || echo \"\$f\"; done" <"$T/acked$n" \
			>"$T/missing" || fail "machine $m: cannot read the shared folder"
		[ ! -s "$T/missing" ] ||
			fail "machine $m: acknowledged files of machine $n missing or wrong: $(head -5 "$T/missing")"
	done
done
d1=$(on_machine 1 omnifsctl digest)
for n in 2 3; do
	wait_until 10 digest_is "$n" "$d1"
done
log "every acknowledged file is on every machine; digests agree ($d1)"

# --- systemctl stop: SIGTERM, exit 0, no mount left; then start again.
on_machine 3 systemctl stop "$UNIT"
[ "$(prop 3 Result "$UNIT")" = success ] || fail "machine 3: stop did not end in success"
[ "$(prop 3 ExecMainStatus "$UNIT")" = 0 ] || fail "machine 3: omnifsd did not exit 0 on stop"
! on_machine 3 findmnt /srv/omnifs >/dev/null || fail "machine 3: still mounted after stop"
on_machine 3 systemctl start "$UNIT"
serving 3 || fail "machine 3: not serving right after systemctl start returned"
log "machine 3: systemctl stop: exit 0, unmounted; systemctl start: serving once it returned"

# --- A config error: a clear line in systemctl status, and no restart loop.
machine_sh 1 "sed 's/^id *=.*/id = banana/' /etc/omnifs/omnifs.conf >/etc/omnifs/bad.conf"
! on_machine 1 systemctl start omnifsd@bad 2>/dev/null || fail "omnifsd@bad started"
bad_failed() { [ "$(on_machine 1 systemctl is-active omnifsd@bad)" = failed ]; }
wait_until 10 bad_failed
# The daemon's own line, as systemctl status shows the unit's last journal lines.
# It names the file, the line and the key.
bad_line="omnifsd: /etc/omnifs/bad.conf:[0-9]+: \\[node\\] id = 'banana'"
bad_status_says() {
	on_machine 1 systemctl status omnifsd@bad --no-pager >"$T/bad" 2>&1
	grep -Eq "$bad_line" "$T/bad"
}
for _ in $(seq 1 50); do bad_status_says && break; sleep 0.2; done
cat "$T/bad"
grep -Eq "$bad_line" "$T/bad" ||
	fail "systemctl status omnifsd@bad does not show the file, line and key at fault"
# Logged at priority err: the daemon saw its stderr was the journal
# (JOURNAL_STREAM) and gave the line its "<3>" prefix.
on_machine 1 journalctl -u omnifsd@bad -p err --no-pager -o cat >"$T/bad.err"
grep -Eq "^$bad_line" "$T/bad.err" ||
	fail "the config error is not in the journal at priority err: $(cat "$T/bad.err")"
# Failed without a restart: a restart loop would hold the unit in
# activating (auto-restart) between attempts and count them in NRestarts,
# and a failed unit is never restarted.
[ "$(prop 1 ExecMainStatus omnifsd@bad)" = 2 ] || fail "omnifsd@bad did not exit 2"
[ "$(prop 1 NRestarts omnifsd@bad)" = 0 ] || fail "omnifsd@bad was restarted after a config error"
bad_failed || fail "omnifsd@bad is not failed"
log "PASS: kill -9, watchdog, stop and a bad config under systemd as PID 1"
