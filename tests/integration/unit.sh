# Running omnifsd the way its systemd unit does, on a machine without systemd
# as PID 1. Source after lib.sh. The unit is the one configured for install
# (build dir); its /etc/omnifs/ is mapped to a folder of the test, its
# omnifsd to the built one; everything else runs as written.
#
#   unit_cmd KEY INSTANCE ETC    the unit's KEY= line (ExecStart, ExecStopPost)
#                                for INSTANCE, one argument a line
#   notify_listen SLOT SOCK LOG MNT
#                                a NOTIFY_SOCKET at SOCK logging each datagram
#                                to LOG: "<unix time> <line>", and for READY=1
#                                whether MNT was mounted at that moment
#   start_unit SLOT SOCK ARGV... ARGV as the service's main process, with
#                                NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID
#                                as systemd sets them; its pid in PIDS[SLOT]
#
# SLOT is an index into lib.sh's PIDS: cleanup kills what is there.

UNIT="$OMNIFS_BUILD/systemd/omnifsd@.service"
WATCHDOG_USEC=${WATCHDOG_USEC:-2000000}
[ -f "$UNIT" ] || fail "no configured unit at $UNIT"

# systemd would also expand ${VAR}, a lone $VAR word, $$, backslash escapes
# and %-specifiers other than %i; a line holding any is refused, so what runs
# here is what systemd runs.
unit_cmd() {
	python3 - "$UNIT" "$1" "$2" "$3/" "$OMNIFSD" <<'PY'
import re, shlex, sys
unit, key, inst, etc, daemon = sys.argv[1:]
lines = [l[len(key) + 1:] for l in open(unit).read().splitlines() if l.startswith(key + "=")]
if len(lines) != 1:
    sys.exit("%s: expected one %s= line, found %d" % (unit, key, len(lines)))
line = lines[0]
if re.search(r"\$\$|\$\{|\\|%[^i]", line):
    sys.exit("%s=: holds what systemd would expand differently from sh: %s" % (key, line))
argv = shlex.split(line.lstrip("-@:+!"))
if any(re.fullmatch(r"\$\w+", a) for a in argv):
    sys.exit("%s=: a lone $VAR word would be expanded by systemd" % key)
argv = [a.replace("%i", inst).replace("/etc/omnifs/", etc) for a in argv]
if argv[0].endswith("/omnifsd"):
    argv[0] = daemon
print("\n".join(argv))
PY
}

notify_listen() {
	local slot=$1 sock=$2
	python3 - "$sock" "$3" "$4" <<'PY' &
import socket, sys, time
path, out, mnt = sys.argv[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        t = time.time()
        for part in msg.split("\n"):
            extra = ""
            if part == "READY=1":
                with open("/proc/mounts") as m:
                    extra = " mounted=%s" % any(l.split()[1] == mnt for l in m)
            f.write("%.3f %s%s\n" % (t, part, extra))
PY
	PIDS[$slot]=$!
	wait_until 10 test -S "$sock"
}

start_unit() {
	local slot=$1 sock=$2
	shift 2
	(
		export NOTIFY_SOCKET="$sock" WATCHDOG_USEC WATCHDOG_PID=$BASHPID
		exec "$@"
	) &
	PIDS[$slot]=$!
}
