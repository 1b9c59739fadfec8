#!/usr/bin/env bash
# Quick start: installs what omnifs needs, builds it, and brings up a local
# 3-node cluster (three omnifsd processes on loopback, CURVE on, each with its
# own mount) under one folder. Run again, it reports that it is already up.
#
#   tools/omnifs-up.sh          bring the cluster up (or say it is up)
#   tools/omnifs-up.sh --down   stop it (data is kept for the next start)
#   tools/omnifs-up.sh --purge  stop it and delete its data
#
# The folder is $OMNIFS_LOCAL, /var/tmp/omnifs-local by default.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dir="${OMNIFS_LOCAL:-/var/tmp/omnifs-local}"
bin="$repo/build/release"
base_port="${OMNIFS_PORT:-7101}"

# running I: node I's daemon is alive: its pid names an omnifsd that is
# neither a zombie nor dying (kill -0 succeeds on both; a daemon killed while
# a thread of it was stuck in the kernel stays a zombie until its mount is
# aborted).
running() {
	local pid st
	pid=$(cat "$dir/node$1/pid" 2>/dev/null) || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = omnifsd ] || return 1
	st=$(cat "/proc/$pid/status" 2>/dev/null) || return 1
	! grep -qE '^State:[[:space:]]+[ZX]' <<<"$st" || return 1
	! grep -qE '^CoreDumping:[[:space:]]+1' <<<"$st" || return 1
	# A SIGKILL pending for the whole process (bit 9 of ShdPnd): dying.
	[ $((0x$(sed -n 's/^ShdPnd:[[:space:]]*//p' <<<"$st") >> 8 & 1)) = 0 ]
}

# clear_dead_mount I: what a dead (or dying) daemon of node I left on its
# mountpoint goes: its FUSE connection aborted (which lets a daemon stuck in
# the kernel exit), the mount lazily unmounted. A running daemon's mount is
# left alone.
clear_dead_mount() {
	[ -x "$bin/fs/omnifsd" ] && [ -f "$dir/node$1/omnifs.conf" ] || return 0
	"$bin/fs/omnifsd" -c "$dir/node$1/omnifs.conf" --clear-dead-mount >>"$dir/node$1/log" 2>&1 ||
		true
}

down() {
	local i
	for i in 1 2 3; do
		if running "$i"; then
			kill -TERM "$(cat "$dir/node$i/pid")"
		fi
	done
	for i in 1 2 3; do
		for _ in $(seq 1 100); do running "$i" || break; sleep 0.1; done
		running "$i" && kill -9 "$(cat "$dir/node$i/pid")"
		clear_dead_mount "$i"
		rm -f "$dir/node$i/pid"
	done
	echo "omnifs-up: the local cluster in $dir is stopped"
}

usage_text() {
	cat <<TXT
omnifs: a local 3-node cluster is up in $dir
  mounts:   $dir/mnt/node1  $dir/mnt/node2  $dir/mnt/node3
  try:      echo hello > $dir/mnt/node1/hello.txt && cat $dir/mnt/node3/hello.txt
  status:   $bin/tools/omnifsctl -c $dir/node1/omnifs.conf status
            cat $dir/mnt/node2/.omnifs/status.json
  logs:     $dir/node1/log (and node2, node3)
  stop:     tools/omnifs-up.sh --down   (or --purge: stop and delete the data)
TXT
}

# "--down --purge" means --purge; anything else extra is a mistake.
[ $# -le 1 ] || [ "$*" = "--down --purge" ] || [ "$*" = "--purge --down" ] || set -- --help
[ $# -le 1 ] || set -- --purge
case "${1:-}" in
--down)
	down
	exit 0
	;;
--purge)
	down
	rm -rf "$dir"
	echo "omnifs-up: deleted $dir"
	exit 0
	;;
"") ;;
*)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac

if running 1 && running 2 && running 3; then
	echo "omnifs-up: already up"
	usage_text
	exit 0
fi

tools/install-deps.sh
echo "omnifs-up: building omnifs in build/release (the first build takes a few minutes)"
BUILD_PROGRESS=1 tools/build.sh release

mkdir -p "$dir"
if [ ! -f "$dir/node1/omnifs.conf" ]; then
	for i in 1 2 3; do
		mkdir -p "$dir/node$i" "$dir/mnt/node$i"
		"$bin/tools/omnifs-keygen" -d "$dir/node$i" "node$i" >/dev/null 2>&1
	done
	for i in 1 2 3; do
		{
			echo "# node $i of the local cluster made by tools/omnifs-up.sh"
			echo "[node]"
			echo "id = $i"
			echo "cluster = local"
			echo "data_dir = $dir/node$i/data"
			echo "mountpoint = $dir/mnt/node$i"
			echo "control_socket = $dir/node$i/ctl.sock"
			echo "[peers]"
			for j in 1 2 3; do echo "$j = 127.0.0.1:$((base_port + j - 1))"; done
			echo "[peer_keys]"
			for j in 1 2 3; do
				[ "$j" = "$i" ] || echo "$j = $(cat "$dir/node$j/node$j.pub")"
			done
			echo "[security]"
			echo "secret_key_file = $dir/node$i/node$i.key"
		} >"$dir/node$i/omnifs.conf"
	done
fi

for i in 1 2 3; do
	running "$i" && continue
	clear_dead_mount "$i"
	setsid "$bin/fs/omnifsd" -c "$dir/node$i/omnifs.conf" >>"$dir/node$i/log" 2>&1 </dev/null &
	echo $! >"$dir/node$i/pid"
done
for i in 1 2 3; do
	for _ in $(seq 1 300); do
		grep -q " $dir/mnt/node$i " /proc/mounts && break
		running "$i" || { echo "omnifs-up: node $i exited; see $dir/node$i/log" >&2; tail -5 "$dir/node$i/log" >&2; exit 1; }
		sleep 0.1
	done
	grep -q " $dir/mnt/node$i " /proc/mounts || { echo "omnifs-up: node $i did not mount; see $dir/node$i/log" >&2; exit 1; }
done
# Writable once every node follows a leader with a quorum.
for i in 1 2 3; do
	for _ in $(seq 1 200); do
		"$bin/tools/omnifsctl" -s "$dir/node$i/ctl.sock" status --json 2>/dev/null |
			grep -q '"quorum":true' && break
		sleep 0.1
	done
done
usage_text
