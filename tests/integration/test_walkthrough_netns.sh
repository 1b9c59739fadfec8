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
# Then the README's "Adding, removing and replacing a machine", as written,
# on two more namespaces on the switch (its 10.0.0.4 and 10.0.0.5), with the
# same stand-ins: `omnifs-bootstrap --add` on machine 1, node4/ copied, the
# install block on machine 4, `member add` on machine 1 with the key
# omnifs-bootstrap printed in place of the README's placeholder (the README's
# line so filled in must be the printed one), `member list` on every member.
# Machine 4 says READY=1 mounted only once added and serves the whole tree,
# a file written on machine 2 just before the change included; its write is
# read on machine 1. `member remove 2`: machine 2 says it was removed and
# fails writes with EROFS; the README's `systemctl disable --now` stops it
# (SIGTERM, exit 0, unmounted). Machine 5 is prepared as machine 4 was,
# machine 3 is killed (-9, then the unit's ExecStopPost), and `member
# replace` runs on machine 4: machine 5 serves the tree, and members 1, 4
# and 5 are healthy, list the same members, read each other's writes and
# reach the same digest. omnifsctl lines run as written, with the machine's
# config for their default /etc/omnifs/omnifs.conf.
#
# Machines are entered with `nsenter --net=` only: a mount namespace per
# machine (which `ip netns exec` makes at every call) would hide the FUSE
# mounts from the test and from the next command on the same machine.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/unit.sh"
. "$(dirname "$0")/readme.sh"
. "$(dirname "$0")/../lib/netns.sh"

SRC="$(cd "$(dirname "$0")/../.." && pwd)"
SECTION="Running a cluster on three machines"

# omnifs as installed: omnifs-bootstrap, omnifs-keygen, omnifsctl and omnifsd on the PATH.
mkdir -p "$T/bin"
ln -s "$SRC/tools/omnifs-bootstrap.sh" "$T/bin/omnifs-bootstrap"
export PATH="$T/bin:$OMNIFS_BUILD/tools:$OMNIFS_BUILD/fs:$PATH"

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

# What a machine's /etc/omnifs/omnifs.conf is to omnifsctl run without -c:
# here the machine's config is under its folder, so a README line calling
# omnifsctl gets it named (after paths, like any machine path).
STANDINS='omnifsctl() { command omnifsctl -c /etc/omnifs/omnifs.conf "$@"; }'

# with_keys: stdin with each 'PUBLIC-KEY-OF-NODE-I' placeholder replaced by
# $KEY_I, node I's public key; a placeholder with no key fails.
with_keys() {
	perl -pe 's/PUBLIC-KEY-OF-NODE-(\d+)/
		defined $ENV{"KEY_$1"} ? $ENV{"KEY_$1"} : die "no public key known for node $1\n"/ge'
}

# run_on N DIR LINE: a README command line on machine N, in DIR; what it
# printed is shown and left in $T/out.
run_on() {
	local n=$1 dir=$2 line=$3 script
	log "machine $n: $line"
	# Keys go in after paths: a Z85 key may hold what looks like a path.
	script=$(paths "$n" <<<"$STANDINS
$line" | with_keys) || fail "on machine $n: $line"
	if ! (cd "$dir" && on "$n" sh -ec "$script") >"$T/out" 2>&1; then
		cat "$T/out"
		fail "on machine $n: $line"
	fi
	cat "$T/out"
}

# machine_of HOST: the machine whose address HOST is.
machine_of() {
	local n
	for n in "${!ADDR[@]}"; do
		[ "${ADDR[$n]}" = "$1" ] && { echo "$n"; return; }
	done
	fail "no machine has address $1"
}

# The switch: a bridge in a namespace of its own.
make_switch() {
	NETNS+=("$SWITCH")
	netns_switch "$SWITCH"
}

# make_machine N: machine N's namespace, cabled to the switch (port mN) with
# ADDR[N]/24 on its eth0, and its root folder.
make_machine() {
	local n=$1 ns="$NET-m$1"
	[ -n "${ADDR[$n]:-}" ] || fail "no address for machine $n"
	NETNS+=("$ns")
	netns_machine "$SWITCH" "$ns" "m$n" "${ADDR[$n]}"
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

# stop_unit_on N: what systemd does to stop it: SIGTERM to the main process,
# which must exit 0 (a failed stop would leave the unit failed) and unmount.
stop_unit_on() {
	local n=$1 rc=0
	kill -TERM "${PIDS[$n]}"
	wait "${PIDS[$n]}" || rc=$?
	PIDS[n]=""
	[ $rc = 0 ] || fail "machine $n's omnifsd exited $rc on SIGTERM"
	! grep -q " $(root "$n")/srv/omnifs " /proc/mounts || fail "machine $n still mounted after stop"
}

# kill_unit_on N: machine N dies (kill -9); then what systemd does next, the
# unit's ExecStopPost= line, which takes the dead daemon's mount away.
kill_unit_on() {
	local n=$1 mnt
	local -a post
	mnt=" $(root "$n")/srv/omnifs "
	kill -9 "${PIDS[$n]}"
	wait "${PIDS[$n]}" 2>/dev/null || true
	PIDS[n]=""
	grep -q "$mnt" /proc/mounts || fail "machine $n: no dead mount after kill -9"
	mapfile -t post < <(unit_cmd ExecStopPost omnifs "$(root "$n")/etc/omnifs")
	[ ${#post[@]} -gt 0 ] || fail "no ExecStopPost for machine $n"
	on "$n" "${post[@]}" || fail "machine $n: ExecStopPost failed"
	! grep -q "$mnt" /proc/mounts || fail "machine $n: ExecStopPost left the dead mount"
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
	disable)
		for a in "${@:2:$#-2}"; do
			case "$a" in
			--now) now=1 ;;
			*) fail "README: systemctl $*: no stand-in for $a" ;;
			esac
		done
		log "machine $n: systemctl $*"
		[ $now = 1 ] || return 0 # disable alone stops nothing before the next boot
		stop_unit_on "$n"
		;;
	status)
		[ $# = 2 ] || fail "README: systemctl $*: expected systemctl status UNIT"
		log "machine $n: systemctl $*: Status: \"$(status_line "$n")\""
		;;
	*) fail "README: systemctl $*: no stand-in for $verb" ;;
	esac
}

# install_machine N NODE LINE...: an install block of the README (the same
# shape for the first machines and an added one) on machine N, with NODE, the
# block's name for the node ("nodeN", "node4"), read as nodeN (N this
# machine), in the folder that holds nodeN/ (/root/omnifs-prod on machine 1,
# root's home on the others).
install_machine() {
	local n=$1 name=$2 dir line
	local -a w
	shift 2
	dir=$(find "$(root "$n")/root" -maxdepth 2 -type d -name "node$n" -printf '%h\n')
	if [ -z "$dir" ] || [ "$(wc -l <<<"$dir")" != 1 ]; then
		fail "machine $n: no single node$n/ folder: $dir"
	fi
	for line in "$@"; do
		line=${line//"$name"/node$n}
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

# csv I...: the ids sorted, comma-separated, as omnifsctl prints members.
csv() { printf '%s\n' "$@" | sort -n | paste -sd, -; }
# pub_of N: node N's public key, from the key file installed on machine N.
pub_of() {
	sed -n 's/^[ \t]*public-key[ \t]*=[ \t]*\([^ \t]*\)[ \t]*$/\1/p' \
		"$(root "$1")/etc/omnifs/keys/node$1.key"
}
listening() { on "$1" ss -Hltn | grep -qF " ${ADDR[$1]}:${PORT[$1]} "; }
# csv_without X I...: csv of I... less X.
csv_without() {
	local x=$1 m
	shift
	for m in "$@"; do [ "$m" = "$x" ] || echo "$m"; done | sort -n | paste -sd, -
}

# bootstrap_add LINE: the README's `omnifs-bootstrap --add` LINE on machine
# FIRST, which reads the member's /etc/omnifs/omnifs.conf by default: named
# here, so that paths moves it under the machine's folder. It must take the
# members from the running node, and print node ID's `member add` line with
# its public key: KEY_ID, for the README's placeholder.
bootstrap_add() {
	local line=$1 cmd id key
	[[ "$line" =~ --add\ ([0-9]+)= ]] || fail "README: '$line': no ID=HOST:PORT"
	id=${BASH_REMATCH[1]}
	cmd=${line%%#*}
	cmd=${cmd%"${cmd##*[! ]}"}
	[[ "$cmd" == *.conf ]] || cmd+=" /etc/omnifs/omnifs.conf"
	run_on "$FIRST" "$(root "$FIRST")/root" "$cmd"
	cp "$T/out" "$T/add$id.out"
	grep -qF "members $(csv "${MEMBERS[@]}"), from node $FIRST's member list" "$T/out" ||
		fail "omnifs-bootstrap --add: not the members $(csv "${MEMBERS[@]}") from node $FIRST"
	key=$(sed -n "s/^ *omnifsctl member add $id ${ADDR[$id]}:${PORT[$id]} '\(.*\)'\$/\1/p" "$T/out")
	[ -n "$key" ] || fail "omnifs-bootstrap --add printed no member add line for node $id"
	export "KEY_$id=$key"
}

# as_repl LINE: a line of the README's addition of node NEW, for node REPL
# (its id, address, folder and host): the README shows --add for node NEW
# only and says to prepare the replacement with it.
as_repl() {
	local l=$1
	l=${l//"$NEW=${ADDR[NEW]}:${PORT[NEW]}"/"$REPL=${ADDR[REPL]}:${PORT[REPL]}"}
	l=${l//"${ADDR[NEW]}:"/"${ADDR[REPL]}:"}
	l=${l//"node$NEW"/"node$REPL"}
	l=${l//"add$NEW"/"add$REPL"}
	echo "$l"
}

# prepare N: the README's first block on machine FIRST for node N, then its
# install block on machine N: node N started, waiting to be added.
prepare() {
	local n=$1 line
	local -a w
	for line in "${ADD1[@]}"; do
		[ "$n" = "$NEW" ] || line=$(as_repl "$line")
		read -r -a w <<<"${line%%#*}"
		[ ${#w[@]} -gt 0 ] || continue
		case "${w[0]}" in
		omnifs-bootstrap) bootstrap_add "$line" ;;
		scp) scp_copy "$FIRST" "${w[@]:1}" ;;
		*) fail "README, on machine $FIRST: '$line': no stand-in for this command" ;;
		esac
	done
	install_machine "$n" "node$NEW" "${ADD2[@]}"
	[ "$(pub_of "$n")" = "$(printenv "KEY_$n")" ] ||
		fail "machine $n: the key installed is not the one omnifs-bootstrap --add printed"
	wait_until 10 listening "$n"
	wait_until 10 status_is "$n" 's["joining"]'
	log "machine $n: omnifsd up on ${ADDR[$n]}:${PORT[$n]}, waiting to be added"
}

# change_on N LINE CSV: the README's `omnifsctl member ...` LINE on machine N
# prints the new configuration, with members CSV, as the README's comment
# does when it shows the answer.
change_on() {
	local n=$1 line=$2 want=$3
	if [[ "$line" =~ \#\ configuration\ N:\ members\ ([0-9,]+) ]]; then
		[ "${BASH_REMATCH[1]}" = "$want" ] || fail "README: '$line': the members after it are $want"
	fi
	run_on "$n" "$(root "$n")/root" "$line"
	grep -Eqx "configuration [0-9]+: members $want" "$T/out" ||
		fail "machine $n: '$line' did not print 'configuration N: members $want'"
	IFS=, read -r -a MEMBERS <<<"$want"
}

# member_list_on N LINE: the README's `omnifsctl member list` LINE on machine
# N names every member with its address and public key, itself marked; what
# it says, less the mark, in $T/listN.
member_list_on() {
	local n=$1 line=$2 m
	run_on "$n" "$(root "$n")/root" "$line"
	head -1 "$T/out" | grep -Eqx 'configuration [0-9]+' ||
		fail "machine $n: member list does not start with its configuration"
	for m in "${MEMBERS[@]}"; do
		printf 'n%s %s:%s %s%s\n' "$m" "${ADDR[$m]}" "${PORT[$m]}" "$(pub_of "$m")" \
			"$([ "$m" = "$n" ] && echo ' (this node)')"
	done | sort -V >"$T/list.expected"
	tail -n +2 "$T/out" | sort -V | diff "$T/list.expected" - ||
		fail "machine $n: member list not of members $(csv "${MEMBERS[@]}") (- expected, + printed)"
	{ head -1 "$T/out" && tail -n +2 "$T/out" | sed 's/ (this node)$//' | sort -V; } >"$T/list$n"
}
# member_lists_agree LINE: LINE on every member, each listing the same.
member_lists_agree() {
	local m
	for m in "${MEMBERS[@]}"; do
		member_list_on "$m" "$1"
		cmp -s "$T/list${MEMBERS[0]}" "$T/list$m" ||
			fail "machines ${MEMBERS[0]} and $m list other members"
	done
}

mount_of() { echo "$(root "$1")/srv/omnifs"; }
# serves_tree N: machine N is READY=1 mounted and shows the tree machine FIRST shows.
serves_tree() {
	wait_until 60 ready "$1"
	wait_until 10 same_trees "$(mount_of "$FIRST")" "$(mount_of "$1")"
}
digest_on() { on "$1" "$OMNIFSCTL" -c "$(root "$1")/etc/omnifs/omnifs.conf" digest; }
digests_agree_on() {
	local m first
	first=$(digest_on "$1")
	for m in "${@:2}"; do [ "$(digest_on "$m")" = "$first" ] || return 1; done
}

# --- The README, block 1, on machine 1: omnifs-bootstrap, then scp.
load_block BLOCK1 "$SECTION" 1
boot=$(printf '%s\n' "${BLOCK1[@]}" | grep '^omnifs-bootstrap ') ||
	fail "README: no omnifs-bootstrap line in '$SECTION'"
readme_machines "$boot"

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
load_block BLOCK2 "$SECTION" 2
for n in "${MACHINES[@]}"; do install_machine "$n" nodeN "${BLOCK2[@]}"; done
for n in "${MACHINES[@]}"; do wait_until 60 ready "$n"; done
log "READY=1 and mounted on machines ${MACHINES[*]}"
# Each daemon listens on its README address, in its own machine's network stack.
for n in "${MACHINES[@]}"; do
	listening "$n" || fail "machine $n: omnifsd does not listen on ${ADDR[$n]}:${PORT[$n]}"
done

# --- Block 3, on any machine: status, then hello written on one, read on the others.
load_block BLOCK3 "$SECTION" 3
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

# === "Adding, removing and replacing a machine", as written, on the running
# cluster: machine NEW (10.0.0.4) added, machine GONE (2) removed and
# stopped, machine DEAD (3) killed and replaced by machine REPL (10.0.0.5).
SUB="Adding, removing and replacing a machine"
declare -a ADD1=() ADD2=() ADD3=() ADD4=()
load_block ADD1 "$SUB" 1 # on machine 1: omnifs-bootstrap --add, scp
load_block ADD2 "$SUB" 2 # on the new machine: install, start
load_block ADD3 "$SUB" 3 # on any member: member add, member list
load_block ADD4 "$SUB" 4 # member remove, member replace
readme_part "$SUB" >"$T/sub" || fail "README: no '$SUB'"

line=$(printf '%s\n' "${ADD1[@]}" | grep '^omnifs-bootstrap --add ') ||
	fail "README: no omnifs-bootstrap --add line under '$SUB'"
[[ "$line" =~ --add\ ([0-9]+)=([0-9.]+):([0-9]+) ]] || fail "README: '$line': no ID=HOST:PORT"
NEW=${BASH_REMATCH[1]}
ADDR[NEW]=${BASH_REMATCH[2]}
PORT[NEW]=${BASH_REMATCH[3]}
line=$(printf '%s\n' "${ADD4[@]}" | grep '^omnifsctl member remove ') ||
	fail "README: no member remove line under '$SUB'"
[[ "$line" =~ remove\ ([0-9]+) ]] || fail "README: '$line': no id"
GONE=${BASH_REMATCH[1]}
line=$(printf '%s\n' "${ADD4[@]}" | grep '^omnifsctl member replace ') ||
	fail "README: no member replace line under '$SUB'"
[[ "$line" =~ replace\ ([0-9]+)\ ([0-9]+)\ ([0-9.]+):([0-9]+) ]] ||
	fail "README: '$line': expected member replace OLD ID HOST:PORT"
DEAD=${BASH_REMATCH[1]}
REPL=${BASH_REMATCH[2]}
ADDR[REPL]=${BASH_REMATCH[3]}
PORT[REPL]=${BASH_REMATCH[4]}
if [ "$GONE" = "$FIRST" ] || [ "$DEAD" = "$FIRST" ]; then
	fail "README: machine $FIRST, where the additions are prepared, is removed or replaced"
fi
make_machine "$NEW"
make_machine "$REPL"
MEMBERS=("${MACHINES[@]}")
log "machines $NEW and $REPL: addresses ${ADDR[NEW]} and ${ADDR[REPL]} on switch $SWITCH"

# --- Block 1 on machine 1, block 2 on machine NEW.
prepare "$NEW"

# --- Block 3, on members: member add, then member list on every member.
for line in "${ADD3[@]}"; do
	read -r -a w <<<"${line%%#*}"
	[ ${#w[@]} -gt 0 ] || continue
	case "${w[*]:0:3}" in
	"omnifsctl member add")
		# The README's line, its key filled in, is the one omnifs-bootstrap printed.
		cmd=${line%%#*}
		cmd=$(with_keys <<<"${cmd%"${cmd##*[! ]}"}") || fail "README: '$line': no key for it"
		grep -qxF "  $cmd" "$T/add$NEW.out" ||
			fail "README: '$line' is not what omnifs-bootstrap --add printed (above)"
		# Written on a member right before the change: node NEW must get it too.
		W=${MACHINES[1]}
		write_on "$W" /srv/omnifs/before-add "from-$W" || fail "a write on machine $W failed"
		# Not added yet, it formed no cluster of its own: not ready.
		! ready "$NEW" || fail "machine $NEW said READY=1 before it was added"
		status_is "$NEW" 's["joining"]' || fail "machine $NEW is no longer waiting to be added"
		change_on "$FIRST" "$line" "$(csv "${MEMBERS[@]}" "$NEW")"
		serves_tree "$NEW"
		;;
	"omnifsctl member list")
		LIST=$line
		member_lists_agree "$line"
		;;
	*) fail "README, on a member: '$line': no stand-in for this command" ;;
	esac
done
has_text "$NEW" /srv/omnifs/hello hello || fail "machine $NEW does not serve the hello file"
has_text "$NEW" /srv/omnifs/before-add "from-$W" ||
	fail "machine $NEW does not serve the file written on machine $W before it was added"
write_on "$NEW" /srv/omnifs/from-new "from-$NEW" || fail "a write on machine $NEW failed"
wait_until 10 has_text "$FIRST" /srv/omnifs/from-new "from-$NEW"
log "machine $NEW added: READY=1 mounted, serves the tree, its write is read on machine $FIRST"

# The command the README gives to stop a removed node, in its prose.
stop_cmd=$(perl -0777 -ne 'print "$1\n" while /`(systemctl [^`]+)`/g' "$T/sub")
if [ -z "$stop_cmd" ] || [ "$(wc -l <<<"$stop_cmd")" != 1 ]; then
	fail "README: expected one systemctl command under '$SUB', found: $stop_cmd"
fi

# --- Block 4: member remove, then member replace of a dead machine.
for line in "${ADD4[@]}"; do
	read -r -a w <<<"${line%%#*}"
	[ ${#w[@]} -gt 0 ] || continue
	case "${w[*]:0:3}" in
	"omnifsctl member remove")
		change_on "$FIRST" "$line" "$(csv_without "$GONE" "${MEMBERS[@]}")"
		# Removed, it keeps running: it says so and refuses writes.
		wait_until 20 status_is "$GONE" 's["removed"]'
		if err=$(write_on "$GONE" /srv/omnifs/from-removed x 2>&1); then
			fail "a write on removed machine $GONE succeeded"
		fi
		[[ "$err" == *"Read-only file system"* ]] ||
			fail "machine $GONE: write failed with '$err', not EROFS"
		on "$GONE" "$OMNIFSCTL" -c "$(root "$GONE")/etc/omnifs/omnifs.conf" status >"$T/status" ||
			fail "machine $GONE: omnifsctl status failed"
		cat "$T/status"
		grep -q "removed from the cluster" "$T/status" ||
			fail "machine $GONE's status does not say it was removed"
		read -r -a w <<<"$stop_cmd"
		[ "${w[0]}" = systemctl ] || fail "README: '$stop_cmd': no stand-in"
		systemctl_on "$GONE" "${w[@]:1}"
		[ -z "${PIDS[$GONE]}" ] || fail "README: '$stop_cmd' does not stop the node"
		log "machine $GONE removed: refuses writes ($err), says so, stopped"
		;;
	"omnifsctl member replace")
		prepare "$REPL"
		log "machine $DEAD dies"
		kill_unit_on "$DEAD"
		# On a live member: the one that joined.
		change_on "$NEW" "$line" "$(csv_without "$DEAD" "${MEMBERS[@]}" "$REPL")"
		serves_tree "$REPL"
		log "machine $REPL replaced machine $DEAD: READY=1 mounted, serves the tree"
		;;
	*) fail "README, on a member: '$line': no stand-in for this command" ;;
	esac
done

# --- The members left: healthy, the same members and state, each one's write read on the others.
for m in "${MEMBERS[@]}"; do wait_until 20 status_is "$m" "$HEALTHY"; done
[ -n "${LIST:-}" ] || fail "README: no omnifsctl member list line under '$SUB'"
member_lists_agree "$LIST"
for m in "${MEMBERS[@]}"; do
	write_on "$m" "/srv/omnifs/last-from-$m" "m$m" || fail "a write on machine $m failed"
done
for m in "${MEMBERS[@]}"; do
	for o in "${MEMBERS[@]}"; do wait_until 10 has_text "$o" "/srv/omnifs/last-from-$m" "m$m"; done
done
wait_until 20 digests_agree_on "${MEMBERS[@]}"
mapfile -t mounts < <(for m in "${MEMBERS[@]}"; do mount_of "$m"; done)
wait_until 10 same_trees "${mounts[@]}"
log "members $(csv "${MEMBERS[@]}"): same member list, digest $(digest_on "$FIRST"), each write read"

# systemctl stop: SIGTERM, the daemon unmounts and exits 0.
for m in "${MEMBERS[@]}"; do stop_unit_on "$m"; done
log "PASS"
