#!/usr/bin/env bash
# omnifsd under its systemd unit, as far as a machine without systemd as PID 1
# allows: `systemd-analyze verify` accepts the unit; the unit gets no private
# mount namespace (the mount must be visible to the machine); and the daemon,
# started exactly as the unit's ExecStart starts it (NOTIFY_SOCKET,
# WATCHDOG_USEC and WATCHDOG_PID as systemd sets them), says READY=1 only
# once mounted and caught up with data written while it was away, pings the
# watchdog in time, reports STATUS=, says STOPPING=1 and exits 0 on SIGTERM
# with its mount gone and nothing acknowledged lost; killed with -9, the
# unit's ExecStopPost line removes the dead mount and the node restarts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/unit.sh"
INSTANCE=node3

log "systemd-analyze verify"
mkdir -p "$T/units" "$T/etc"
# verify checks that ExecStart's binary exists: point a copy of the unit at
# the built omnifsd (everything else unchanged). Man pages are checked by
# test_install, where they are installed.
sed "s|^ExecStart=[^ ]*/omnifsd |ExecStart=$OMNIFSD |" "$UNIT" >"$T/units/omnifsd@.service"
grep -q "^ExecStart=$OMNIFSD " "$T/units/omnifsd@.service" || fail "unit has no omnifsd ExecStart"
systemd-analyze verify --man=no "$T/units/omnifsd@.service" >"$T/verify.out" 2>&1 ||
	{ cat "$T/verify.out"; fail "systemd-analyze verify rejects the unit"; }
[ ! -s "$T/verify.out" ] || { cat "$T/verify.out"; fail "systemd-analyze verify warns"; }

# systemd-analyze security's exposure score of the unit (0 to 10, lower is
# safer; the unit before its sandboxing scored 7.6). A dropped setting or an
# added capability raises it above what the unit reaches and fails here.
EXPOSURE_MAX=4.3
systemd-analyze security --offline=true --no-pager "$T/units/omnifsd@.service" >"$T/security.out" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$T/security.out")
[ -n "$exposure" ] || { cat "$T/security.out"; fail "systemd-analyze security printed no exposure level"; }
awk -v e="$exposure" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(e <= m) }' ||
	{ grep '✗' "$T/security.out"; fail "the unit's exposure level is $exposure, above $EXPOSURE_MAX"; }
log "systemd-analyze security: exposure $exposure (at most $EXPOSURE_MAX)"

# Each of these gives the service its own mount namespace (systemd.exec(5),
# PrivateMounts=): the FUSE mount would be invisible outside the service.
ns='PrivateMounts|PrivateTmp|PrivateDevices|ProtectSystem|ProtectHome|ReadWritePaths|ReadOnlyPaths'
ns+='|InaccessiblePaths|ExecPaths|NoExecPaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths'
ns+='|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectProc'
ns+='|ProcSubset|RootDirectory|RootImage|MountAPIVFS|DynamicUser|MountFlags'
if grep -E "^($ns)=" "$UNIT"; then
	fail "the unit would run omnifsd in a private mount namespace"
fi
grep -q '^Type=notify$' "$UNIT" || fail "the unit is not Type=notify"
grep -q '^WatchdogSec=' "$UNIT" || fail "the unit sets no WatchdogSec="

MOUNT=1 cluster_init 3
ln -s "$T/node3/omnifs.conf" "$T/etc/$INSTANCE.conf"
mapfile -t START < <(unit_cmd ExecStart "$INSTANCE" "$T/etc")
mapfile -t STOPPOST < <(unit_cmd ExecStopPost "$INSTANCE" "$T/etc")
[ "${START[0]:-}" = "$OMNIFSD" ] || fail "ExecStart does not run omnifsd: ${START[*]}"
[ "${#STOPPOST[@]}" -gt 0 ] || fail "no ExecStopPost= line to run"
log "ExecStart here: ${START[*]}"

notify_listen 9 "$T/notify.sock" "$T/notify.log" "$T/mnt/node3"
# start_unit3: node 3 as the unit starts it.
start_unit3() {
	NOTIFY_MARK=$(wc -l <"$T/notify.log")
	start_unit 3 "$T/notify.sock" "${START[@]}" >>"$T/node3/log" 2>&1
}
# notes: the notify lines since the last start.
notes() { tail -n +"$((NOTIFY_MARK + 1))" "$T/notify.log"; }
ready() { notes | grep -q ' READY=1 '; }

# Nodes 1 and 2 form a quorum and take writes while node 3 is away.
for i in 1 2; do start_node "$i"; done
for i in 1 2; do
	wait_until 30 mountpoint -q "$T/mnt/node$i"
	wait_until 20 has_leader "$i"
done
for f in $(seq 1 40); do echo "early $f" >"$T/mnt/node1/early-$f"; done
ctl 1 barrier
written=$(status_field 1 decided_idx)
log "nodes 1 and 2 decided @$written"

start_unit3
wait_until 60 ready
notes | grep ' READY=1 ' | grep -q 'mounted=True' || fail "READY=1 came before the mount"
# The STATUS= after READY=1 was sampled right after the check: what node 3
# had applied, and (being caught up means a route to a leader with a quorum)
# never NO QUORUM.
at_ready_line=$(notes | sed -n '/ READY=1 /,$p' | grep -m1 -o 'STATUS=.*')
[[ "$at_ready_line" != *"NO QUORUM"* ]] || fail "READY=1 with $at_ready_line"
at_ready=$(sed -n 's/.*applied @\([0-9]*\).*/\1/p' <<<"$at_ready_line")
[ -n "$at_ready" ] || fail "no STATUS= with an applied index after READY=1"
[ "$at_ready" -ge "$written" ] || fail "READY=1 at applied @$at_ready, before @$written written earlier"
log "READY=1 at applied @$at_ready (>= @$written), mounted"
[ "$(cat "$T/mnt/node3/early-40")" = "early 40" ] || fail "node 3 does not show early-40"

# Watchdog pings every WATCHDOG_USEC/2, checked over at least 4 intervals.
pings() { [ "$(notes | grep -c ' WATCHDOG=1$')" -ge 6 ]; }
wait_until 30 pings
maxgap=$(notes | awk '/ WATCHDOG=1$/ { if (p) { g = $1 - p; if (g > m) m = g } p = $1 } END { printf "%d", m * 1000 }')
limit=$((WATCHDOG_USEC / 2000 + 500))
[ "$maxgap" -le "$limit" ] || fail "watchdog gap ${maxgap} ms > ${limit} ms (WATCHDOG_USEC=$WATCHDOG_USEC)"
[ "$(notes | grep -c ' STATUS=.*leader n')" -ge 2 ] || fail "fewer than 2 STATUS= lines"
log "watchdog: largest gap ${maxgap} ms (limit ${limit} ms); $(notes | grep -c ' STATUS=') STATUS= lines"

# Acknowledged writes on node 3 survive a clean stop.
for f in $(seq 1 10); do echo "acked $f" >"$T/mnt/node3/acked-$f"; done
kill -TERM "${PIDS[3]}"
rc=0
wait "${PIDS[3]}" || rc=$?
PIDS[3]=""
[ "$rc" = 0 ] || fail "omnifsd exited $rc on SIGTERM"
notes | grep -q ' STOPPING=1$' || fail "no STOPPING=1 on SIGTERM"
! grep -q " $T/mnt/node3 " /proc/mounts || fail "the mount is still there after the stop"
log "SIGTERM: STOPPING=1, exit 0, unmounted"

start_unit3
wait_until 60 ready
for f in $(seq 1 10); do
	[ "$(cat "$T/mnt/node3/acked-$f")" = "acked $f" ] || fail "acked-$f lost over a restart"
done
echo after >"$T/mnt/node3/after-restart"
log "restarted: the acknowledged files are there"

# kill -9 leaves a dead mount; the unit's ExecStopPost removes it.
kill -9 "${PIDS[3]}"
wait "${PIDS[3]}" 2>/dev/null || true
PIDS[3]=""
grep -q " $T/mnt/node3 " /proc/mounts || fail "no dead mount left by kill -9 (nothing to test)"
"${STOPPOST[@]}" || fail "ExecStopPost failed: ${STOPPOST[*]}"
! grep -q " $T/mnt/node3 " /proc/mounts || fail "ExecStopPost left the dead mount"
log "kill -9: ExecStopPost removed the dead mount"
start_unit3
wait_until 60 ready
[ "$(cat "$T/mnt/node3/after-restart")" = after ] || fail "after-restart lost over kill -9"
[ "$(cat "$T/mnt/node2/after-restart")" = after ] || fail "node 2 does not show after-restart"
echo again >"$T/mnt/node3/after-kill"
[ "$(cat "$T/mnt/node1/after-kill")" = again ] || wait_until 10 grep -qx again "$T/mnt/node1/after-kill"
stop_node 3
for i in 1 2; do stop_node "$i"; done
log "PASS"
