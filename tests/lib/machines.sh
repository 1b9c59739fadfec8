# Debian 12 machines with systemd as PID 1, booted with systemd-nspawn, each
# with its own network namespace and address, for tests that need the real
# systemd: Type=notify, WatchdogSec=, Restart=, ExecStopPost=, the journal.
#
# The machines share one cached Debian root (debootstrap, made once and kept
# under build/nspawn/, keyed by its package list) and one layer holding omnifs
# as `meson install --prefix=/usr` puts it; each machine sees both through an
# overlay of its own, so what it writes (config, data dir, journal) is its
# own and is gone with it. Machine N is the namespace "$MX_NAME-mN", cabled
# to a bridge in a namespace of its own (the switch): the host's interfaces
# and routes are never touched. The host's /dev/fuse is bound in.
#
# Source it, then: machines_prepare; machine_boot N ADDR; on_machine N CMD...
# machines_down (also run at exit by tests/integration/lib.sh's cleanup when
# the caller adds it to CLEANUP_HOOKS) powers everything off and removes it,
# whatever state the machines are in. Needs root, debootstrap, systemd-nspawn
# (package systemd-container) and overlayfs.
#
# Variables: MX_DIR (required: the folder for this set of machines),
# MX_NAME (a unique name; default omx<pid>), OMNIFS_SRC (the source tree),
# MX_OMNIFS (1, the default: the omnifs layer; 0: an empty one, for a test
# that installs omnifs itself, as test_deb.sh its package).

MX_SUITE=bookworm
MX_MIRROR="${OMNIFS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# What a machine needs beyond minbase: systemd as PID 1, FUSE, omnifs's
# run-time libraries, and the tools the tests and the README's commands use.
MX_PACKAGES=systemd,systemd-sysv,dbus,fuse3,libfuse3-3,librocksdb7.8,libzmq5,libinih1,libssl3,libjansson4
MX_PACKAGES+=,libmicrohttpd12,libsystemd0,iproute2,procps,psmisc,less
MX_BOOT_TIMEOUT=90 # seconds for a machine to reach running (or degraded)

: "${OMNIFS_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$OMNIFS_SRC/tests/lib/netns.sh"
: "${MX_NAME:=omx$$}"
declare -a MX_MACHINES=() # the machine numbers booted (or being booted)

mx_log() { printf '[%s] machines: %s\n' "$(date +%T.%3N)" "$*"; }
mx_fail() {
	mx_log "FAIL: $*"
	exit 1
}

# mx_cache: where roots are kept, made once (build/ is the build dirs' place).
mx_cache() {
	local c="${OMNIFS_NSPAWN_CACHE:-$OMNIFS_SRC/build/nspawn}"
	mkdir -p "$c"
	[ -f "$c/.gitignore" ] || echo '*' >"$c/.gitignore"
	echo "$c"
}

# mx_umount_under DIR: unmounts whatever is mounted at or below DIR, deepest
# first. A debootstrap killed midway leaves its /proc and /sys mounted in the
# half-made root, and rm -rf of it then fails on every file there.
mx_umount_under() {
	local m
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
		sort -r | while read -r m; do umount -l "$m"; done
}

# mx_root: the cached Debian root's path, made first if missing. The key
# covers everything that shapes the root, so a changed package list makes a
# new one; a root only counts once its debootstrap finished (.complete).
mx_root() {
	local cache key root
	cache=$(mx_cache)
	key=$(printf '%s\n' "$MX_SUITE" "$MX_MIRROR" "$MX_PACKAGES" | sha256sum | cut -c1-16)
	root="$cache/root-$key"
	if [ ! -f "$root/.complete" ]; then
		(
			flock 9 # one debootstrap at a time per cache
			if [ ! -f "$root/.complete" ]; then
				mx_umount_under "$root.tmp"
				rm -rf "$root.tmp"
				mx_log "making a Debian $MX_SUITE root (once; kept in $root)" >&2
				if ! debootstrap --variant=minbase --include="$MX_PACKAGES" "$MX_SUITE" \
					"$root.tmp" "$MX_MIRROR" >"$cache/debootstrap.log" 2>&1; then
					tail -20 "$cache/debootstrap.log" >&2
					mx_fail "debootstrap failed (log: $cache/debootstrap.log)"
				fi
				# No getty on the console: nobody logs in, and it would hold it.
				ln -sf /dev/null "$root.tmp/etc/systemd/system/console-getty.service"
				touch "$root.tmp/.complete"
				mv "$root.tmp" "$root"
			fi
		) 9>"$cache/.lock" || exit 1
	fi
	echo "$root"
}

# mx_install_omnifs LAYER: omnifs as `meson install` puts it with --prefix=/usr
# (README, "Install"), built in build/nspawn/build and installed into LAYER.
mx_install_omnifs() {
	local layer=$1 build
	build="$(mx_cache)/build"
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$OMNIFS_SRC" --prefix=/usr -Dbuildtype=release \
			-Db_ndebug=false >"$build.setup.log" 2>&1 ||
			{ cat "$build.setup.log"; mx_fail "meson setup failed"; }
	fi
	ninja -C "$build" >"$build.log" 2>&1 || { tail -30 "$build.log"; mx_fail "build failed"; }
	rm -rf "$layer"
	meson install -C "$build" --no-rebuild --quiet --destdir "$layer" >/dev/null ||
		mx_fail "meson install into $layer failed"
}

# machines_prepare: the root and the omnifs layer, and the switch.
machines_prepare() {
	: "${MX_DIR:?MX_DIR must name a folder for the machines}"
	mkdir -p "$MX_DIR"
	for tool in debootstrap systemd-nspawn nsenter ip; do
		command -v "$tool" >/dev/null || mx_fail "$tool is missing (tools/install-deps.sh)"
	done
	MX_ROOT=$(mx_root) || exit 1
	if [ "${MX_OMNIFS:-1}" = 1 ]; then
		mx_install_omnifs "$MX_DIR/omnifs"
	else
		mkdir -p "$MX_DIR/omnifs"
	fi
	echo "$MX_NAME" >"$MX_DIR/name"
	netns_switch "$MX_NAME-sw"
}

mx_ns() { echo "$MX_NAME-m$1"; }
mx_dir() { echo "$MX_DIR/m$1"; }
# machine_root N: machine N's / as the host sees it.
machine_root() { echo "$MX_DIR/m$1/root"; }
# mx_leader N: the pid (host's view) of machine N's PID 1, or nothing.
mx_leader() {
	local nspawn
	nspawn=$(cat "$(mx_dir "$1")/nspawn.pid" 2>/dev/null) || return 0
	pgrep -P "$nspawn" 2>/dev/null | head -1
}

# machine_boot N ADDR: machine N, hostname mN, with ADDR/24 on its eth0,
# booted to multi-user (systemctl is-system-running: running or degraded).
machine_boot() {
	local n=$1 addr=$2 d ns
	d=$(mx_dir "$n")
	ns=$(mx_ns "$n")
	MX_MACHINES+=("$n")
	mkdir -p "$d/upper" "$d/work" "$d/root"
	mount -t overlay overlay \
		-o "lowerdir=$MX_DIR/omnifs:$MX_ROOT,upperdir=$d/upper,workdir=$d/work" "$d/root"
	echo "m$n" >"$d/root/etc/hostname"
	netns_machine "$MX_NAME-sw" "$ns" "m$n" "$addr"
	setsid systemd-nspawn --quiet -D "$d/root" --machine="$MX_NAME-m$n" --register=no \
		--keep-unit --bind=/dev/fuse --network-namespace-path="/run/netns/$ns" \
		--console=read-only -b </dev/null >"$d/console.log" 2>&1 &
	echo $! >"$d/nspawn.pid"
	local deadline=$((SECONDS + MX_BOOT_TIMEOUT)) state=""
	while [ $SECONDS -lt $deadline ]; do
		if [ -n "$(mx_leader "$n")" ]; then
			state=$(on_machine "$n" systemctl is-system-running 2>/dev/null) || true
			case "$state" in running | degraded) break ;; esac
		fi
		kill -0 "$(cat "$d/nspawn.pid")" 2>/dev/null || break
		sleep 0.2
	done
	case "$state" in
	running) ;;
	degraded)
		mx_log "machine $n is up but degraded:"
		on_machine "$n" systemctl --failed --no-pager || true
		;;
	*)
		tail -20 "$d/console.log"
		mx_fail "machine $n did not boot within ${MX_BOOT_TIMEOUT}s (state: ${state:-none})"
		;;
	esac
}

# on_machine N CMD...: CMD run on machine N as root, in /root, in all of its
# namespaces (so systemctl, journalctl and its mounts are the machine's),
# with a login-like environment rather than the caller's.
on_machine() {
	local n=$1 leader
	shift
	leader=$(mx_leader "$n")
	[ -n "$leader" ] || { echo "machine $n is not running" >&2; return 1; }
	nsenter -t "$leader" -m -u -i -n -p -C -r -w -- env -i HOME=/root LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
		sh -c 'cd /root && exec "$@"' sh "$@"
}

# machine_sh N SCRIPT: a shell script (sh -e) on machine N.
machine_sh() { on_machine "$1" sh -ec "$2"; }

# mx_abort_fuse N: aborts the FUSE connections of machine N's mounts, so a
# daemon stuck in the kernel cannot keep the machine from going away.
mx_abort_fuse() {
	local leader dev
	leader=$(mx_leader "$1")
	[ -n "$leader" ] || return 0
	awk '$9 ~ /^fuse/ { print $3 }' "/proc/$leader/mountinfo" 2>/dev/null | while read -r dev; do
		[ -w "/sys/fs/fuse/connections/${dev#*:}/abort" ] &&
			echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort"
	done
	return 0
}

# machine_down N: powers machine N off (systemctl poweroff, 30 s), else
# aborts its FUSE connections and kills it; removes its overlay and namespace.
machine_down() {
	local n=$1 d nspawn
	d=$(mx_dir "$n")
	nspawn=$(cat "$d/nspawn.pid" 2>/dev/null) || nspawn=""
	if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
		timeout 10 nsenter -t "$(mx_leader "$n")" -m -p -- systemctl poweroff \
			>/dev/null 2>&1 || true
		local deadline=$((SECONDS + 30))
		while kill -0 "$nspawn" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
		if kill -0 "$nspawn" 2>/dev/null; then
			mx_log "machine $n did not power off in 30 s: killing it"
			mx_abort_fuse "$n"
			kill -9 "$(mx_leader "$n")" "$nspawn" 2>/dev/null
			deadline=$((SECONDS + 10))
			while kill -0 "$nspawn" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
				sleep 0.2
			done
		fi
	fi
	rm -f "$d/nspawn.pid"
	if grep -q " $d/root " /proc/mounts; then umount "$d/root" 2>/dev/null || umount -l "$d/root"; fi
	ip netns del "$(mx_ns "$n")" 2>/dev/null
	return 0
}

# machines_down: every machine down, the switch gone, the folder removed.
machines_down() {
	local n
	for n in "${MX_MACHINES[@]}"; do machine_down "$n"; done
	MX_MACHINES=()
	ip netns del "$MX_NAME-sw" 2>/dev/null
	[ -n "${MX_DIR:-}" ] && rm -rf "$MX_DIR"
	return 0
}

# machine_copy N SRC M DST: copies SRC (a path on machine N) to DST on machine
# M, as `scp -r` between the machines would.
machine_copy() {
	cp -a "$(machine_root "$1")$2" "$(machine_root "$3")$4"
}
