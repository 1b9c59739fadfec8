#!/usr/bin/env bash
# The README's "Running a cluster on three machines", as written, on network
# namespaces standing in for the machines. Machine N is a namespace with its
# own network stack, holding the README's address (10.0.0.N/24) on a veth
# whose other end is a port of a bridge, the switch, itself in a namespace of
# its own: the host's interfaces and routes are never touched, so the
# README's addresses cannot clash with them. Machine N also has a folder
# standing in for its /etc/omnifs, /var/lib/omnifs, /srv/omnifs and /root.
#
# The commands are read from the README's code blocks and run on machine N
# inside its namespace with only those paths moved under its folder; `scp` is
# a copy into the other machine's folder, and `systemctl enable --now` runs
# the unit's ExecStart= line under a stand-in notify socket (unit.sh), since
# the test machines have no systemd as PID 1. A README command with no stand-in
# here fails the test. Then what the README promises: every node READY=1 and
# mounted, a leader and a quorum with every peer reachable, a file written on
# machine 1 read on machines 2 and 3. Then machine 3's cable is pulled at the
# switch: machines 1 and 2 go on writing, machine 3 serves reads and fails
# writes with EROFS; plugged back, it catches up.
#
# Machines are entered with `nsenter --net=` only: a mount namespace per
# machine (which `ip netns exec` makes at every call) would hide the FUSE
# mounts from the test and from the next command on the same machine.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/unit.sh"

SRC="$(cd "$(dirname "$0")/../.." && pwd)"
README="$SRC/README.md"
SECTION="Running a cluster on three machines"

# omnifs as installed: omnifs-bootstrap and omnifs-keygen on the PATH.
mkdir -p "$T/bin"
ln -s "$SRC/tools/omnifs-bootstrap.sh" "$T/bin/omnifs-bootstrap"
export PATH="$T/bin:$OMNIFS_BUILD/tools:$PATH"

NET="omnifs$$" # namespace names: unique per run, so a leftover never collides
SWITCH="$NET-sw"
declare -a ADDR=()     # ADDR[N]: machine N's address, from the README
declare -a PORT=()     # PORT[N]: its omnifs port, from the README
declare -a MACHINES=() # the machine numbers, in the README's order
declare -a NETNS=()    # every namespace made, for the cleanup

# Deleting a namespace deletes its veth ends (and so their peers) and the
# bridge; one still holding a daemon goes when lib.sh kills the daemon.
net_teardown() {
	local ns
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
}
CLEANUP_HOOKS+=(net_teardown)

# machine N's root: where its /etc/omnifs, /var/lib/omnifs, /srv/omnifs and /root are.
root() { echo "$T/m$1"; }

# paths N: stdin with machine N's absolute paths moved under its root (only
# where a path starts: after a blank, '=', '>' or ':', or at the line's start).
paths() {
	R="$(root "$1")" perl -pe \
		's#(?<![^\s=>:])(/etc/omnifs|/var/lib/omnifs|/srv/omnifs|/root)(?=/|\s|$)#$ENV{R}$1#g'
}

# on N CMD...: CMD on machine N (its network stack, the test's mounts).
on() {
	local n=$1
	shift
	nsenter --net="/run/netns/$NET-m$n" -- "$@"
}

# run_on N DIR LINE: a README command line on machine N, in DIR.
run_on() {
	local n=$1 dir=$2 line=$3
	log "machine $n: $line"
	(cd "$dir" && on "$n" sh -ec "$(paths "$n" <<<"$line")") || fail "on machine $n: $line"
}

# readme_block K: the K-th sh code block of the README's walkthrough section.
readme_block() {
	python3 - "$README" "$SECTION" "$1" <<'PY'
import re, sys
path, title, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), open(path).read(), re.M | re.S)
if not m:
    sys.exit("%s: no section '## %s'" % (path, title))
blocks = re.findall(r"^```sh\n(.*?)^```", m.group(1), re.M | re.S)
if len(blocks) < k:
    sys.exit("%s: section '%s' has %d sh blocks, expected at least %d" % (path, title, len(blocks), k))
print(blocks[k - 1], end="")
PY
}

# machine_of HOST: the machine whose address HOST is.
machine_of() {
	local n
	for n in "${MACHINES[@]}"; do
		[ "${ADDR[$n]}" = "$1" ] && { echo "$n"; return; }
	done
	fail "no machine has address $1"
}

# The switch: a bridge in a namespace of its own.
make_switch() {
	NETNS+=("$SWITCH")
	ip netns add "$SWITCH"
	ip -n "$SWITCH" link add br0 type bridge
	ip -n "$SWITCH" link set br0 up
}

# make_machine N: machine N's namespace, cabled to the switch (port mN) with
# ADDR[N]/24 on its eth0, and its root folder.
make_machine() {
	local n=$1 ns="$NET-m$1"
	[ -n "${ADDR[$n]:-}" ] || fail "no address for machine $n"
	NETNS+=("$ns")
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip link add eth0 netns "$ns" type veth peer name "m$n" netns "$SWITCH"
	ip -n "$SWITCH" link set "m$n" master br0 up
	ip -n "$ns" addr add "${ADDR[$n]}/24" dev eth0
	ip -n "$ns" link set eth0 up
	[ "$(on "$n" ip -4 -o addr show scope global | awk '{ print $4 }')" = "${ADDR[$n]}/24" ] ||
		fail "machine $n does not have ${ADDR[$n]}/24 alone"
	mkdir -p "$(root "$n")/root"
	mkdir -p "$T/node$n" # lib.sh shows $T/node*/log on failure and scans them
}

# plug N up|down: machine N's cable, at the switch's end.
plug() { ip -n "$SWITCH" link set "m$1" "$2"; }

# scp_copy N ARGS...: `scp -r SRC HOST:[DIR]` run on machine N, as a copy from
# machine N's folder into HOST's (the remote side of scp is root's home).
scp_copy() {
	local n=$1
	shift
	if [ $# != 3 ] || [ "$1" != -r ] || [[ "$3" != *:* ]]; then
		fail "README: scp $*: expected scp -r SRC HOST:"
	fi
	local src to
	src=$(paths "$n" <<<"$2")
	to=$(machine_of "${3%%:*}")
	log "machine $n: scp $* (a copy into machine $to's folder)"
	cp -r "$src" "$(root "$to")/root/${3#*:}"
}

# start_unit_on N INSTANCE: what systemd does to start omnifsd@INSTANCE on
# machine N: the unit's StateDirectory= (mode 0700), then its ExecStart= line
# under a notify socket, inside the machine's network namespace (nsenter
# execs in place, so the daemon keeps the pid systemd would watch).
start_unit_on() {
	local n=$1 inst=$2 r conf
	r=$(root "$n")
	conf="$r/etc/omnifs/$inst.conf"
	[ -f "$conf" ] || fail "machine $n: no $conf"
	# The config names machine paths: here they are under the machine's root.
	paths "$n" <"$conf" >"$T/conf" && cat "$T/conf" >"$conf"
	install -d -m 0700 "$r/var/lib/omnifs"
	local start
	mapfile -t start < <(unit_cmd ExecStart "$inst" "$r/etc/omnifs")
	[ "${start[0]:-}" = "$OMNIFSD" ] || fail "no ExecStart for machine $n"
	notify_listen $((10 + n)) "$T/notify$n.sock" "$T/notify$n.log" "$r/srv/omnifs"
	start_unit "$n" "$T/notify$n.sock" nsenter --net="/run/netns/$NET-m$n" -- "${start[@]}" \
		>>"$T/node$n/log" 2>&1
}

ready() { grep -q ' READY=1 mounted=True' "$T/notify$1.log"; }
# status_line N: what systemctl status shows of the daemon: its last STATUS=.
status_line() { sed -n 's/^[0-9.]* STATUS=//p' "$T/notify$1.log" | tail -1; }

# systemctl_on N ARGS...: the README's systemctl lines on machine N.
systemctl_on() {
	local n=$1
	shift
	local verb=$1 unit=${*: -1} now=0 block=1 a
	[[ "$unit" == omnifsd@* ]] || fail "README: systemctl $*: not an omnifsd@ unit"
	local inst=${unit#omnifsd@}
	inst=${inst%.service}
	case "$verb" in
	enable)
		for a in "${@:2:$#-2}"; do
			case "$a" in
			--now) now=1 ;;
			--no-block) block=0 ;;
			*) fail "README: systemctl $*: no stand-in for $a" ;;
			esac
		done
		log "machine $n: systemctl $*"
		[ $now = 1 ] || return 0 # enable alone starts nothing until the next boot
		start_unit_on "$n" "$inst"
		[ $block = 0 ] || wait_until 120 ready "$n" # TimeoutStartSec=
		;;
	status)
		[ $# = 2 ] || fail "README: systemctl $*: expected systemctl status UNIT"
		log "machine $n: systemctl $*: Status: \"$(status_line "$n")\""
		;;
	*) fail "README: systemctl $*: no stand-in for $verb" ;;
	esac
}

# install_machine N: the README's second block on machine N, in the folder
# that holds nodeN/ (/root/omnifs-prod on machine 1, root's home on the others).
install_machine() {
	local n=$1 dir line
	local -a block w
	mapfile -t block < <(readme_block 2)
	[ ${#block[@]} -gt 0 ] || fail "README: no second code block in '$SECTION'"
	dir=$(find "$(root "$n")/root" -maxdepth 2 -type d -name "node$n" -printf '%h\n')
	if [ -z "$dir" ] || [ "$(wc -l <<<"$dir")" != 1 ]; then
		fail "machine $n: no single node$n/ folder: $dir"
	fi
	for line in "${block[@]}"; do
		line=${line//nodeN/node$n}
		read -r -a w <<<"${line%%#*}"
		[ ${#w[@]} -gt 0 ] || continue
		case "${w[0]}" in
		install | mkdir) run_on "$n" "$dir" "$line" ;;
		systemctl) systemctl_on "$n" "${w[@]:1}" ;;
		*) fail "README, on machine $n: '$line': no stand-in for this command" ;;
		esac
	done
	[ "$(stat -c %a "$(root "$n")/etc/omnifs/keys/node$n.key")" = 600 ] ||
		fail "machine $n: its key is not 0600"
}

status_json() { on "$1" "$OMNIFSCTL" -c "$(root "$1")/etc/omnifs/omnifs.conf" status --json; }
# status_is N PYEXPR: PYEXPR holds for machine N's status s (omnifsctl status --json).
status_is() {
	status_json "$1" | python3 -c "import json, sys; s = json.load(sys.stdin); sys.exit(not ($2))"
}
HEALTHY='s["quorum"] and s["leader"] and all(p["reachable"] for p in s["peers"])'

# write_on N FILE TEXT: TEXT written to FILE (a machine path) on machine N.
write_on() { on "$1" sh -c "echo $3 >$(paths "$1" <<<"$2")"; }
has_text() { [ "$(on "$1" cat "$(paths "$1" <<<"$2")" 2>/dev/null)" = "$3" ]; }
# prints N LINE TEXT: the command LINE (machine paths) prints TEXT on machine N.
prints() { [ "$(on "$1" sh -c "$(paths "$1" <<<"$2")" 2>/dev/null)" = "$3" ]; }

# --- The README, block 1, on machine 1: omnifs-bootstrap, then scp.
mapfile -t BLOCK1 < <(readme_block 1)
[ ${#BLOCK1[@]} -gt 0 ] || fail "README: no first code block in '$SECTION'"
boot=$(printf '%s\n' "${BLOCK1[@]}" | grep '^omnifs-bootstrap ') ||
	fail "README: no omnifs-bootstrap line in '$SECTION'"
for w in $boot; do
	if [[ "$w" =~ ^([0-9]+)=([0-9.]+):([0-9]+)$ ]]; then
		MACHINES+=("${BASH_REMATCH[1]}")
		ADDR[BASH_REMATCH[1]]=${BASH_REMATCH[2]}
		PORT[BASH_REMATCH[1]]=${BASH_REMATCH[3]}
	fi
done
[ ${#MACHINES[@]} = 3 ] || fail "README: expected three members in: $boot"

make_switch
for n in "${MACHINES[@]}"; do make_machine "$n"; done
log "machines ${MACHINES[*]}: namespaces $NET-m*, addresses ${ADDR[*]} on switch $SWITCH"

FIRST=${MACHINES[0]}
for line in "${BLOCK1[@]}"; do
	read -r -a w <<<"${line%%#*}"
	[ ${#w[@]} -gt 0 ] || continue
	case "${w[0]}" in
	omnifs-bootstrap) run_on "$FIRST" "$(root "$FIRST")/root" "$line" ;;
	scp) scp_copy "$FIRST" "${w[@]:1}" ;;
	*) fail "README, on machine $FIRST: '$line': no stand-in for this command" ;;
	esac
done

# --- Block 2, on each machine.
for n in "${MACHINES[@]}"; do install_machine "$n"; done
for n in "${MACHINES[@]}"; do wait_until 60 ready "$n"; done
log "READY=1 and mounted on machines ${MACHINES[*]}"
for n in "${MACHINES[@]}"; do
	# Each daemon listens on its README address, in its own machine's network stack.
	on "$n" ss -Hltn | grep -qF " ${ADDR[$n]}:${PORT[$n]} " ||
		fail "machine $n: omnifsd does not listen on ${ADDR[$n]}:${PORT[$n]}"
done

# --- Block 3, on any machine: status, then hello written on one, read on the others.
mapfile -t BLOCK3 < <(readme_block 3)
[ ${#BLOCK3[@]} -gt 0 ] || fail "README: no third code block in '$SECTION'"
for n in "${MACHINES[@]}"; do
	for line in "${BLOCK3[@]}"; do
		read -r -a w <<<"${line%%#*}"
		[ ${#w[@]} -gt 0 ] || continue
		case "${w[0]}" in
		systemctl)
			systemctl_on "$n" "${w[@]:1}"
			# The README's example status, numbers and role left free.
			[[ "$line" =~ \#\ Status:\ \"(.*)\" ]] || fail "README: '$line': no example status"
			shape=$(sed -E 's/^[a-z]+,/(leader|follower),/; s/n[0-9]+/n[0-9]+/g; s/@[0-9]+/@[0-9]+/g' \
				<<<"${BASH_REMATCH[1]}")
			grep -Eqx "$shape" <<<"$(status_line "$n")" ||
				fail "machine $n: status '$(status_line "$n")' is not shaped like the README's '$shape'"
			;;
		omnifsctl)
			[ "${w[*]}" = "omnifsctl status" ] || fail "README: '$line': no stand-in"
			[[ "$line" == *"quorum: yes, every peer reachable"* ]] ||
				fail "README: '$line': the test checks a quorum with every peer reachable"
			wait_until 20 status_is "$n" "$HEALTHY"
			log "machine $n: omnifsctl status"
			on "$n" "$OMNIFSCTL" -c "$(root "$n")/etc/omnifs/omnifs.conf" status
			;;
		echo)
			[ "$n" = "$FIRST" ] || continue
			cmd=${line%%#*}
			run_on "$n" "$(root "$n")/root" "${cmd%"${cmd##*[! ]}"}"
			[[ "$line" =~ "on another machine: "(.*)$ ]] || fail "README: '$line': no read to check"
			read_cmd=${BASH_REMATCH[1]}
			text=$(sh -c "${line%%>*}")
			for m in "${MACHINES[@]}"; do
				[ "$m" = "$n" ] && continue
				wait_until 10 prints "$m" "$read_cmd" "$text"
				log "machine $m: $read_cmd: $text"
			done
			;;
		*) fail "README: '$line': no stand-in for this command" ;;
		esac
	done
done
log "the walkthrough as written works on machines ${MACHINES[*]}"

# --- Separate network stacks: machine 3's cable pulled at the switch.
CUT=${MACHINES[2]}
plug "$CUT" down
log "machine $CUT cut off"
wait_until 20 status_is "$CUT" 'not s["quorum"]'
# A write made as soon as the status says so waits for the node to know it is
# cut off, then fails with EROFS (README, "Errors"); reads go on.
if err=$(write_on "$CUT" /srv/omnifs/from-cut x 2>&1); then
	fail "a write on machine $CUT succeeded without a quorum"
fi
[[ "$err" == *"Read-only file system"* ]] || fail "machine $CUT: write failed with '$err', not EROFS"
has_text "$CUT" /srv/omnifs/hello hello || fail "machine $CUT no longer serves reads"
log "machine $CUT serves reads and fails writes: $err"
for n in "${MACHINES[@]}"; do
	[ "$n" = "$CUT" ] && continue
	wait_until 20 status_is "$n" "s['quorum'] and s['leader'] not in (0, $CUT) and not \
		[p for p in s['peers'] if p['id'] == $CUT][0]['reachable']"
done
write_on "$FIRST" /srv/omnifs/during-cut one-cut-off || fail "a write on machine $FIRST failed"
for n in "${MACHINES[@]}"; do
	[ "$n" = "$CUT" ] && continue
	wait_until 10 has_text "$n" /srv/omnifs/during-cut one-cut-off
done
log "a write on machine $FIRST succeeds and is read on the other connected machine"
on "$CUT" "$OMNIFSCTL" -c "$(root "$CUT")/etc/omnifs/omnifs.conf" status
[ ! -e "$(paths "$CUT" <<</srv/omnifs/during-cut)" ] || fail "machine $CUT sees a write made after its cut"

plug "$CUT" up
log "machine $CUT plugged back"
wait_until 30 has_text "$CUT" /srv/omnifs/during-cut one-cut-off
wait_until 30 status_is "$CUT" "$HEALTHY"
write_on "$CUT" /srv/omnifs/back back || fail "a write on machine $CUT failed after it came back"
wait_until 10 has_text "$FIRST" /srv/omnifs/back back
# A write refused with EROFS was never proposed: it does not come back with the node.
[ ! -e "$(paths "$FIRST" <<</srv/omnifs/from-cut)" ] || fail "a write refused with EROFS was applied"
log "machine $CUT caught up and writes again"

# systemctl stop: SIGTERM, the daemon unmounts and exits 0.
for n in "${MACHINES[@]}"; do
	kill -TERM "${PIDS[$n]}"
	wait "${PIDS[$n]}" || fail "machine $n's omnifsd exited $? on SIGTERM"
	PIDS[n]=""
	! grep -q " $(root "$n")/srv/omnifs " /proc/mounts || fail "machine $n still mounted after stop"
done
log "PASS"
