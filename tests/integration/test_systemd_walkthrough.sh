#!/usr/bin/env bash
# The README's "Running a cluster on three machines", as written, on three
# Debian 12 machines with systemd as PID 1 (tests/lib/machines.sh: booted with
# systemd-nspawn, each in its own network namespace with the README's
# address, omnifs installed as `meson install --prefix=/usr` puts it).
#
# Every line of the README's blocks runs on its machine as written: the real
# `systemctl enable --now --no-block omnifsd@omnifs`, the real
# `systemctl status`, `omnifsctl status`, the file written on one machine and
# read on the others. Only `scp` has a stand-in (a copy between the machines'
# roots: the machines run no ssh). Then what systemd promises about the unit:
# each is active (Type=notify: READY=1 only once mounted and caught up), its
# status line has the README's shape, the journal holds the daemon's lines
# with their fields (OMNIFS_NODE, OMNIFS_PEER: the native protocol),
# nothing was restarted and no unit failed; the daemon shares PID 1's mount
# namespace and the unit's exposure score stays at its hardening's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/readme.sh"
. "$(dirname "$0")/../lib/machines.sh"

SECTION="Running a cluster on three machines"
MX_DIR="$T/machines"
CLEANUP_HOOKS+=(machines_down)
declare -a ADDR=() PORT=() MACHINES=()

# run_on N DIR LINE: a README line on machine N, in DIR, as written; what it
# printed is shown and left in $T/out.
run_on() {
	log "machine $1: $3"
	if ! on_machine "$1" sh -ec "cd $2 && $3" >"$T/out" 2>&1; then
		cat "$T/out"
		fail "on machine $1: $3"
	fi
	cat "$T/out"
}

# scp_on N -r SRC HOST:: the stand-in for scp, a copy into HOST's /root.
scp_on() {
	local n=$1 to m
	[ $# = 4 ] && [ "$2" = -r ] && [[ "$4" == *: ]] || fail "README: scp ${*:2}: expected scp -r SRC HOST:"
	for m in "${MACHINES[@]}"; do [ "${ADDR[$m]}" = "${4%:}" ] && to=$m; done
	[ -n "${to:-}" ] || fail "README: scp to ${4%:}: no such machine"
	log "machine $n: scp ${*:2} (a copy into machine $to's /root)"
	machine_copy "$n" "$3" "$to" /root/
}

unit_active() { [ "$(on_machine "$1" systemctl is-active omnifsd@omnifs)" = active ]; }
mounted() { on_machine "$1" findmnt -n -o FSTYPE /srv/omnifs | grep -qx fuse.omnifs; }
healthy() {
	on_machine "$1" omnifsctl status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(not (s["quorum"] and s["leader"] and all(p["reachable"] for p in s["peers"])))'
}
reads_hello() { [ "$(on_machine "$1" cat /srv/omnifs/hello 2>/dev/null)" = hello ]; }

# --- The machines, from the README's omnifs-bootstrap line.
load_block BLOCK1 "$SECTION" 1
load_block BLOCK2 "$SECTION" 2
load_block BLOCK3 "$SECTION" 3
boot=$(printf '%s\n' "${BLOCK1[@]}" | grep '^omnifs-bootstrap ') ||
	fail "README: no omnifs-bootstrap line in '$SECTION'"
readme_machines "$boot"

machines_prepare
for n in "${MACHINES[@]}"; do machine_boot "$n" "${ADDR[$n]}"; done
log "machines ${MACHINES[*]} booted with systemd as PID 1: ${ADDR[*]}"
FIRST=${MACHINES[0]}

# --- Block 1 on the first machine: omnifs-bootstrap, then scp.
for line in "${BLOCK1[@]}"; do
	read -r -a w <<<"${line%%#*}"
	[ ${#w[@]} -gt 0 ] || continue
	case "${w[0]}" in
	omnifs-bootstrap) run_on "$FIRST" /root "$line" ;;
	scp) scp_on "$FIRST" "${w[@]:1}" ;;
	*) fail "README, on machine $FIRST: '$line': no stand-in for this command" ;;
	esac
done

# --- Block 2 on every machine, in the folder that holds nodeN/, as written.
for n in "${MACHINES[@]}"; do
	dir=$(on_machine "$n" find /root -maxdepth 2 -type d -name "node$n" -printf '%h\n')
	[ -n "$dir" ] && [ "$(wc -l <<<"$dir")" = 1 ] || fail "machine $n: no single node$n/ folder"
	for line in "${BLOCK2[@]}"; do
		[ -n "${line%%#*}" ] || continue
		run_on "$n" "$dir" "${line//nodeN/node$n}"
	done
	[ "$(on_machine "$n" stat -c %a "/etc/omnifs/keys/node$n.key")" = 600 ] ||
		fail "machine $n: its key is not 0600"
done

# Type=notify: active means READY=1, which omnifsd sends once mounted and
# caught up (or after its bounded wait, which a healthy cluster never needs).
for n in "${MACHINES[@]}"; do
	wait_until 120 unit_active "$n"
	mounted "$n" || fail "machine $n: omnifsd@omnifs is active but /srv/omnifs is no omnifs mount"
done
log "omnifsd@omnifs is active and mounted on every machine"

# The sandboxing gave the daemon no mount namespace of its own: it shares
# PID 1's, so its mount is the machine's (as findmnt above, run outside the
# service, saw). systemd's exposure score of the running unit stays at what
# its hardening reached (test_systemd.sh scores the unit file the same way).
for n in "${MACHINES[@]}"; do
	pid=$(on_machine "$n" systemctl show -P MainPID omnifsd@omnifs)
	[ "$(on_machine "$n" readlink "/proc/$pid/ns/mnt")" = "$(on_machine "$n" readlink /proc/1/ns/mnt)" ] ||
		fail "machine $n: omnifsd (pid $pid) runs in a mount namespace of its own"
done
on_machine "$FIRST" systemd-analyze security --no-pager omnifsd@omnifs.service >"$T/security.out" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$T/security.out")
[ -n "$exposure" ] || { cat "$T/security.out"; fail "systemd-analyze security printed no exposure level"; }
awk -v e="$exposure" 'BEGIN { exit !(e <= 4.3) }' ||
	{ grep '✗' "$T/security.out"; fail "omnifsd@omnifs's exposure level is $exposure, above 4.3"; }
log "omnifsd shares PID 1's mount namespace on every machine; exposure level $exposure"

# --- Block 3, as written: systemctl status, omnifsctl status, a file.
for n in "${MACHINES[@]}"; do wait_until 30 healthy "$n"; done
for line in "${BLOCK3[@]}"; do
	read -r -a w <<<"${line%%#*}"
	[ ${#w[@]} -gt 0 ] || continue
	case "${w[0]}" in
	systemctl)
		for n in "${MACHINES[@]}"; do
			log "machine $n: ${line%%#*}"
			# status exits 0 only for an active unit.
			on_machine "$n" ${line%%#*} --no-pager >"$T/out" 2>&1 ||
				{ cat "$T/out"; fail "machine $n: '${line%%#*}' failed"; }
			cat "$T/out"
			grep -Eq '^ *Status: "(leader|follower), leader n[0-9]+ reached directly, applied @[0-9]+ of @[0-9]+"$' \
				"$T/out" || fail "machine $n: no status line of the README's shape"
			grep -q 'Active: active (running)' "$T/out" || fail "machine $n: not active (running)"
		done
		;;
	omnifsctl)
		for n in "${MACHINES[@]}"; do
			run_on "$n" /root "${line%%#*}"
			grep -q '^quorum: *yes' "$T/out" || fail "machine $n: omnifsctl status: no quorum"
		done
		;;
	echo)
		run_on "$FIRST" /root "${line%%#*}"
		for n in "${MACHINES[@]:1}"; do
			wait_until 10 reads_hello "$n"
			log "machine $n: cat /srv/omnifs/hello: hello"
		done
		;;
	*) fail "README: '$line': no stand-in for this command" ;;
	esac
done

# --- Other machines' changes reach watchers here: a .path unit
# (PathChanged=, inotify) on the second machine starts its service when a
# file is changed on the first, both for a root file and for another user's
# 0600 file (the daemon replays the change on its mount, which takes the
# unit's CAP_DAC_OVERRIDE for a file it does not own).
SECOND=${MACHINES[1]}
on_machine "$FIRST" sh -ec 'echo v1 >/srv/omnifs/app.conf
echo s1 >/srv/omnifs/private.conf
chown 1000:1000 /srv/omnifs/private.conf
chmod 600 /srv/omnifs/private.conf'
has_private() { on_machine "$SECOND" test -e /srv/omnifs/private.conf; }
wait_until 10 has_private
machine_sh "$SECOND" 'for f in app private; do
printf "[Path]\nPathChanged=/srv/omnifs/%s.conf\n" $f >/etc/systemd/system/$f-reload.path
printf "[Service]\nType=oneshot\nExecStart=/bin/sh -c \"cat /srv/omnifs/%s.conf >>/root/%s-reloads\"\n" \
	$f $f >/etc/systemd/system/$f-reload.service
done
systemctl daemon-reload
systemctl start app-reload.path private-reload.path'
on_machine "$FIRST" sh -ec 'echo v2 >/srv/omnifs/app.conf; echo s2 >/srv/omnifs/private.conf'
app_reloaded() { on_machine "$SECOND" grep -qx v2 /root/app-reloads 2>/dev/null; }
private_reloaded() { on_machine "$SECOND" grep -qx s2 /root/private-reloads 2>/dev/null; }
wait_until 15 app_reloaded
wait_until 15 private_reloaded
log "machine $SECOND: .path units started their services for changes made on machine $FIRST (root's file, and uid 1000's 0600 file)"

# --- READY means current: a unit ordered after omnifsd@omnifs (the README's
# After= and Requires=) finds the tree as it is, not as the node left it.
# The last machine is stopped, the tree changes without it, then a unit that
# reads the tree is started there: it pulls omnifsd@omnifs in and runs only
# once the daemon said READY=1.
LAST=${MACHINES[-1]}
on_machine "$LAST" systemctl stop omnifsd@omnifs
on_machine "$FIRST" sh -c 'echo while-you-were-away >/srv/omnifs/hello'
machine_sh "$LAST" 'cat >/etc/systemd/system/reader.service <<EOF
[Unit]
After=omnifsd@omnifs.service
Requires=omnifsd@omnifs.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c "cat /srv/omnifs/hello >/root/seen"
EOF
systemctl daemon-reload
systemctl start reader.service'
seen=$(on_machine "$LAST" cat /root/seen)
[ "$seen" = while-you-were-away ] ||
	fail "machine $LAST: a unit ordered after omnifsd@omnifs read '$seen', not the current file"
log "machine $LAST: a unit ordered after omnifsd@omnifs read the file as changed while it was down"

# --- What systemd saw: no restart, no failed unit, the daemon's lines in the
# journal, with omnifs's fields (OMNIFS_NODE, OMNIFS_PEER).
for n in "${MACHINES[@]}"; do
	restarts=$(on_machine "$n" systemctl show -P NRestarts omnifsd@omnifs)
	[ "$restarts" = 0 ] || fail "machine $n: omnifsd@omnifs was restarted $restarts times"
	[ -z "$(on_machine "$n" systemctl list-units --failed --plain --no-legend)" ] ||
		fail "machine $n: failed units: $(on_machine "$n" systemctl --failed --no-pager)"
	on_machine "$n" journalctl -u omnifsd@omnifs --no-pager -o cat >"$T/journal$n"
	grep -q 'transport: n[0-9]* listening on' "$T/journal$n" ||
		fail "machine $n: the journal has no line of omnifsd's"
	# Natively logged, with fields: the node on omnifsd's lines, the peer on
	# a line about one ("link to n2 is up").
	on_machine "$n" journalctl -u omnifsd@omnifs --no-pager -o json >"$T/journal$n.json"
	# (MESSAGE is an array of bytes when not UTF-8, absent in some entries.)
	msg='select((.MESSAGE | type) == "string")'
	node=$(jq -r "$msg"' | select(.MESSAGE | test("transport: n[0-9]+ listening on")) |
		.OMNIFS_NODE' "$T/journal$n.json" | head -n1)
	[[ "$node" =~ ^[1-9][0-9]*$ ]] ||
		fail "machine $n: omnifsd's line in journalctl -o json has no OMNIFS_NODE ('$node')"
	# A replica's message about a peer names it in OMNIFS_PEER (not every
	# machine logs a link coming up: looked for on all of them together).
	jq -c "$msg"' | select(.MESSAGE | test("replica: link to n[0-9]+ is up")) |
		select(.OMNIFS_NODE == "'"$node"'" and .SYSLOG_IDENTIFIER == "omnifsd") |
		select((.OMNIFS_PEER // "?") as $p | .MESSAGE | contains("link to n" + $p + " is up")) |
		{MESSAGE, OMNIFS_NODE, OMNIFS_PEER}' \
		"$T/journal$n.json" >>"$T/peer-lines"
	log "machine $n: journalctl -u omnifsd@omnifs (last lines):"
	on_machine "$n" journalctl -u omnifsd@omnifs --no-pager -n 4
done
[ -s "$T/peer-lines" ] ||
	fail "no machine's journal has a 'replica: link to nX is up' with OMNIFS_PEER=X"
log "journal fields: OMNIFS_NODE on every machine; $(head -n1 "$T/peer-lines")"
log "PASS: the README's three-machine walkthrough under systemd as PID 1"
