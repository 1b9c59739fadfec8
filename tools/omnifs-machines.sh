#!/usr/bin/env bash
# Debian 12 machines with systemd as PID 1 on this host, for trying omnifs as
# it runs on real machines (the tests under tests/integration/test_systemd_*
# use the same harness, tests/lib/machines.sh). Each machine is a
# systemd-nspawn container with its own network namespace and address
# 10.0.0.N on a private switch, omnifs installed in /usr as `meson install`
# puts it, and /dev/fuse. Nothing is configured or started: follow the
# README's "Running a cluster on three machines" on them.
#
#   tools/omnifs-machines.sh up [N]         boot machines 1..N (default 3)
#   tools/omnifs-machines.sh run I CMD...   run CMD on machine I (as root, in /root)
#   tools/omnifs-machines.sh shell I        a shell on machine I
#   tools/omnifs-machines.sh copy I SRC J DST   copy SRC on machine I to DST on J (scp's stand-in)
#   tools/omnifs-machines.sh down           power them off and delete them
#
# The folder is $OMNIFS_MACHINES, /var/tmp/omnifs-machines by default. The
# first `up` makes a Debian root with debootstrap (about a minute) and keeps
# it in build/nspawn/. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMNIFS_SRC=$PWD
MX_DIR="${OMNIFS_MACHINES:-/var/tmp/omnifs-machines}"
. tests/lib/machines.sh

usage() {
	sed -n '10,15p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}

# The machines of a set made earlier by `up`.
load() {
	[ -f "$MX_DIR/name" ] || { echo "omnifs-machines: no machines in $MX_DIR (run: $0 up)" >&2; exit 1; }
	MX_NAME=$(cat "$MX_DIR/name")
	local d
	for d in "$MX_DIR"/m*/; do
		[ -d "$d" ] && MX_MACHINES+=("$(basename "$d" | cut -c2-)")
	done
}

case "${1:-}" in
up)
	n=${2:-3}
	[[ "$n" =~ ^[1-9]$ ]] || { echo "omnifs-machines: 1 to 9 machines" >&2; exit 2; }
	[ ! -f "$MX_DIR/name" ] || { echo "omnifs-machines: already up in $MX_DIR ($0 down first)" >&2; exit 1; }
	tools/install-deps.sh
	# Whatever fails half-way is taken down again.
	trap 'machines_down' ERR
	machines_prepare
	for i in $(seq 1 "$n"); do machine_boot "$i" "10.0.0.$i"; done
	trap - ERR
	echo "omnifs-machines: machines 1..$n are up (10.0.0.1..$n, omnifs installed)"
	echo "  a shell:  $0 shell 1"
	echo "  stop:     $0 down"
	;;
run)
	[ $# -ge 3 ] || usage
	load
	on_machine "$2" "${@:3}"
	;;
shell)
	[ $# = 2 ] || usage
	load
	on_machine "$2" bash -l
	;;
copy)
	[ $# = 5 ] || usage
	load
	machine_copy "$2" "$3" "$4" "$5"
	;;
down)
	if [ -f "$MX_DIR/name" ]; then
		load
		machines_down
		echo "omnifs-machines: the machines in $MX_DIR are gone"
	else
		echo "omnifs-machines: no machines in $MX_DIR"
	fi
	;;
-h | --help) usage 0 ;;
*) usage ;;
esac
