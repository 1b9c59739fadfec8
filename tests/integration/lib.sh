# Shared harness of the integration tests: real omnifsd processes on
# loopback, each with its own data dir, control socket and (optionally) mount.
# Source it from a test script; everything it starts is killed, and every
# mount lazily unmounted, when the script exits, however it exits.
#
# Needs: OMNIFS_BUILD (the build dir, set by meson).

set -euo pipefail

: "${OMNIFS_BUILD:?OMNIFS_BUILD must point at the build dir}"
OMNIFSD="$OMNIFS_BUILD/fs/omnifsd"
OMNIFSCTL="$OMNIFS_BUILD/tools/omnifsctl"
KEYGEN="$OMNIFS_BUILD/tools/omnifs-keygen"
T="$(mktemp -d "${TMPDIR:-/tmp}/omnifs-it.XXXXXX")"
N=0
declare -a PIDS=()
declare -a PORTS=()
declare -a CLEANUP_HOOKS=() # commands cleanup runs first (e.g. unmount a test's tmpfs)
# Sanitizers: a report fails the test (daemon logs are scanned at the end).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# ThreadSanitizer (build/tsan): every report is logged, the daemon goes on;
# the suppressions name third-party frames only (see the file).
export TSAN_OPTIONS="${TSAN_OPTIONS:-suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tsan.supp}"
SANITIZER_REPORT='ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|runtime error:'

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }
fail() {
	log "FAIL: $*"
	exit 1
}

cleanup() {
	local rc=$?
	set +e
	for h in "${CLEANUP_HOOKS[@]}"; do eval "$h"; done
	for i in "${!PIDS[@]}"; do
		[ -n "${PIDS[$i]:-}" ] && kill -9 "${PIDS[$i]}" 2>/dev/null
	done
	# The script's own background jobs (a failed test's writers loop until
	# told to stop): their children, then them, so that wait returns.
	for j in $(jobs -p); do
		pkill -9 -P "$j" 2>/dev/null
		kill -9 "$j" 2>/dev/null
	done
	wait 2>/dev/null
	# From /proc/mounts: a dead daemon's mount fails stat(2), so test -d would miss it.
	awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/mounts | while read -r m; do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"
	done
	if grep -l -E "$SANITIZER_REPORT" "$T"/node*/log 2>/dev/null; then
		log "sanitizer reports in daemon logs:"
		grep -h -A40 -E "$SANITIZER_REPORT" "$T"/node*/log | head -200
		rc=1
	fi
	if [ $rc -ne 0 ]; then
		for f in "$T"/node*/log; do
			[ -f "$f" ] && { echo "--- last lines of $f"; tail -25 "$f"; }
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

# free_ports N: N distinct free TCP ports on 127.0.0.1.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# node_dirs I MODE: node I's folder, mountpoint and (curve) keypair.
node_dirs() {
	mkdir -p "$T/node$1" "$T/mnt/node$1"
	if [ "$2" = curve ]; then
		"$KEYGEN" -d "$T/node$1" "node$1" >/dev/null
	fi
}

# cluster_init N [plaintext]: configs and keys for nodes 1..N.
cluster_init() {
	N=$1
	local mode="${2:-curve}"
	read -r -a PORTS <<<"$(free_ports "$N")"
	for i in $(seq 1 "$N"); do
		node_dirs "$i" "$mode"
	done
	for i in $(seq 1 "$N"); do
		write_config "$i" "$mode"
	done
}

# cluster_up N [plaintext]: cluster_init, then every node started and
# following a leader with a quorum.
cluster_up() {
	cluster_init "$@"
	local i
	for i in $(seq 1 "$N"); do start_node "$i"; done
	for i in $(seq 1 "$N"); do wait_until 20 has_leader "$i"; done
}

# write_config I MODE: node I's config, listing nodes 1..N (or $MEMBERS, ids
# separated by spaces); join = true if JOIN=1.
write_config() {
	local i=$1 mode=$2 j
	local members=${MEMBERS:-$(seq 1 "$N")}
	{
		echo "[node]"
		echo "id = $i"
		echo "cluster = it-$$"
		echo "data_dir = $T/node$i/data"
		[ "${MOUNT:-0}" = 1 ] && echo "mountpoint = $T/mnt/node$i"
		echo "control_socket = $T/node$i/ctl.sock"
		echo "log_level = ${LOG_LEVEL:-info}"
		[ "${JOIN:-0}" = 1 ] && echo "join = true"
		echo "[peers]"
		for j in $members; do echo "$j = $(node_addr "$j")"; done
		echo "[timing]"
		echo "tick_ms = ${TICK_MS:-10}"
		echo "election_timeout_ms = ${ELECTION_MS:-100}"
		echo "resend_timeout_ms = ${RESEND_MS:-200}"
		echo "commit_timeout_ms = ${COMMIT_MS:-5000}"
		[ -n "${EXTRA_CONFIG:-}" ] && printf '%b\n' "$EXTRA_CONFIG"
		echo "[security]"
		if [ "$mode" = curve ]; then
			echo "secret_key_file = $T/node$i/node$i.key"
			echo "[peer_keys]"
			for j in $members; do
				[ "$j" = "$i" ] && continue
				echo "$j = $(node_pub "$j")"
			done
		else
			echo "plaintext = true"
		fi
	} >"$T/node$i/omnifs.conf"
}

# node_addr I, node_pub I: node I's address and CURVE public key.
node_addr() { echo "127.0.0.1:${PORTS[$(($1 - 1))]}"; }
node_pub() { cat "$T/node$1/node$1.pub"; }

# join_init I MODE MEMBER...: a port, keys and a config with join = true for
# a node I that is to be added to the running cluster of MEMBER... (what
# omnifs-bootstrap --add writes: the members and itself in [peers], the
# members' keys).
join_init() {
	local i=$1 mode=$2
	shift 2
	PORTS[i - 1]=$(free_ports 1)
	node_dirs "$i" "$mode"
	MEMBERS="$* $i" JOIN=1 write_config "$i" "$mode"
}

start_node() {
	local i=$1
	shift
	"$OMNIFSD" -c "$T/node$i/omnifs.conf" "$@" >>"$T/node$i/log" 2>&1 &
	PIDS[$i]=$!
	wait_until 20 ctl_quiet "$i" status
}

stop_node() {
	local i=$1
	kill -TERM "${PIDS[$i]}"
	wait "${PIDS[$i]}" || fail "node $i exited with $? on SIGTERM"
	PIDS[$i]=""
}

# kill_node I: kill -9, then what the systemd unit's ExecStopPost does: lazily
# unmount the dead daemon's mount, so the node can be started again.
kill_node() {
	local i=$1
	kill -9 "${PIDS[$i]}"
	wait "${PIDS[$i]}" 2>/dev/null || true
	PIDS[$i]=""
	if grep -q " $T/mnt/node$i " /proc/mounts; then
		fusermount3 -u -z "$T/mnt/node$i"
	fi
}

ctl() {
	local i=$1
	shift
	"$OMNIFSCTL" -s "$T/node$i/ctl.sock" "$@"
}

ctl_quiet() { ctl "$@" >/dev/null 2>&1; }

# status_field I FIELD: one field of node I's JSON status.
status_field() {
	ctl "$1" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# wait_until SECONDS CMD...: polls CMD every 50 ms until it succeeds. With
# WAIT_WHY set to a command, a timeout's message ends with what it prints
# (what was seen instead).
wait_until() {
	local limit=$1
	shift
	local deadline=$((SECONDS + limit))
	until "$@"; do
		[ $SECONDS -lt $deadline ] ||
			fail "timed out after ${limit}s waiting for: $*${WAIT_WHY:+: $($WAIT_WHY)}"
		sleep 0.05
	done
}

# digests_agree I...: nodes I... report the same applied index and state digest.
digests_agree() {
	local first i
	first=$(ctl "$1" digest)
	shift
	for i in "$@"; do
		[ "$(ctl "$i" digest)" = "$first" ] || return 1
	done
}

has_leader() { [ "$(status_field "$1" leader)" != 0 ] && [ "$(status_field "$1" quorum)" = True ]; }

# leader_id I: the leader node I follows.
leader_id() { status_field "$1" leader; }

# fs_cluster N [plaintext]: N daemons with mounts, M1..MN set to the mounts.
fs_cluster() {
	MOUNT=1
	cluster_init "$@"
	local i
	for i in $(seq 1 "$N"); do start_node "$i"; done
	for i in $(seq 1 "$N"); do
		wait_until 30 mountpoint -q "$T/mnt/node$i"
		wait_until 20 has_leader "$i"
		eval "M$i=\$T/mnt/node$i"
	done
}

# add_learner I: `member add --learner I` through node 1's leader (node I
# was made with join_init and started: the voters check that its key tried
# to connect lately). Meant for wait_until: a change still in progress, or
# a leader being elected, fails and is tried again.
add_learner() {
	local l
	l=$(leader_id 1)
	[ "$l" != 0 ] || return 1
	ctl "$l" member add --learner "$1" "$(node_addr "$1")" "$(node_pub "$1")" >"$T/add.out" 2>&1 && return 0
	log "member add --learner $1 on n$l: $(cat "$T/add.out")"
	grep -q "n$1 is already a member" "$T/add.out" # an earlier try made it
}
is_learner() { [ "$(status_field "$1" role)" = learner ]; }
is_caught_up() { [ "$(status_field "$1" caught_up)" = True ]; }

# fs_learner_up I VOTER...: node I joins the running cluster of VOTER... as a
# learner with a mount (CURVE), and is caught up and mounted; M<I> is set.
fs_learner_up() {
	local i=$1
	shift
	MOUNT=1 join_init "$i" curve "$@"
	start_node "$i"
	wait_until 60 add_learner "$i"
	wait_until 60 is_learner "$i"
	wait_until 60 mountpoint -q "$T/mnt/node$i"
	wait_until 60 is_caught_up "$i"
	eval "M$i=\$T/mnt/node$i"
}

# tree_listing DIR: every entry with type, mode, owner, mtime, link count,
# symlink target and content hash: what must be equal on every node. (One
# python process: a stat and a hash per file from the shell would dominate.)
tree_listing() {
	python3 - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
out = []
for d, dirs, files in os.walk(root):
    if d == root and ".omnifs" in dirs:
        dirs.remove(".omnifs")
    for name in dirs + files:
        p = os.path.join(d, name)
        st = os.lstat(p)
        line = "%s %o %o %d:%d %d %d" % (os.path.relpath(p, root), stat.S_IFMT(st.st_mode),
                                        stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                        st.st_mtime_ns // 10**9, st.st_nlink)
        if stat.S_ISLNK(st.st_mode):
            line += " -> " + os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                line += " " + hashlib.md5(f.read()).hexdigest()
        out.append(line)
print("\n".join(sorted(out)))
PY
}

# same_trees DIR...: true if every DIR lists the same as the first.
same_trees() {
	local first
	first=$(tree_listing "$1")
	shift
	for d in "$@"; do
		[ "$(tree_listing "$d")" = "$first" ] || return 1
	done
}
