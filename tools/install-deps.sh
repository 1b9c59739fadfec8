#!/usr/bin/env bash
# Installs every Debian package omnifs needs to build, test and run.
# Idempotent: does nothing when all are present; runs `apt-get update` once
# only if something is missing. Needs root (or sudo).
set -euo pipefail

packages=(
	# build
	meson ninja-build pkg-config gcc clang clang-format libclang-rt-14-dev
	# libraries
	libfuse3-dev librocksdb-dev libzmq3-dev libcmocka-dev libinih-dev libsystemd-dev libssl-dev
	libjansson-dev libmicrohttpd-dev
	# run
	fuse3
	# tests: network namespaces, link cuts, systemd unit checks
	iproute2 iptables procps psmisc python3 systemd
	# tests: Debian 12 machines with systemd as PID 1 (tests/lib/machines.sh)
	debootstrap systemd-container
	# benchmarks: the etcd comparison of the KV benchmark
	etcd-server libcurl4-openssl-dev
	# tests: xattrs on the mount (setfattr, getfattr)
	attr
	# tests: inotify watchers of other nodes' changes (inotifywait), workflows (rsync)
	inotify-tools rsync
	# tests: the man pages render without warnings (man -l)
	man-db groff-base
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
