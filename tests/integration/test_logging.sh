#!/usr/bin/env bash
# omnifsd's logging on real daemons: plain lines (no "<N>" prefix) when
# stderr is a file, also with a JOURNAL_STREAM inherited from elsewhere; when
# JOURNAL_STREAM names stderr itself, journald's native protocol with fields
# (OMNIFS_NODE...) if its socket is there, else "<N>" prefixed lines (the
# native path under a real journald is in test_systemd_walkthrough.sh);
# `omnifsctl log-level` shows and sets the level at runtime (64 for a bad
# one); SIGHUP reloads the config's log_level and says so, and a config that
# no longer loads changes nothing and names the line at fault.
. "$(dirname "$0")/lib.sh"

# log_has I TEXT: node I's log holds TEXT.
log_has() { grep -qF -- "$2" "$T/node$1/log"; }

cluster_init 2
log "stderr a file, JOURNAL_STREAM of another stream: plain lines"
JOURNAL_STREAM=1:1 start_node 1
touch "$T/node2/log"
log "stderr the stream JOURNAL_STREAM names: priority prefixes"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/node2/log") start_node 2
wait_until 20 has_leader 1
wait_until 20 log_has 1 "omnifsd: ready"
wait_until 20 log_has 2 "omnifsd: ready"
! grep -q '^<[0-7]>' "$T/node1/log" || fail "node 1 logs <N> prefixes into a file: $(head -3 "$T/node1/log")"
grep -q '^n1 notice: omnifsd: ready' "$T/node1/log" || fail "node 1's lines: $(head -3 "$T/node1/log")"
if [ -S /run/systemd/journal/socket ]; then
	# A journald runs here: node 2's messages went to it, with their fields.
	journal_has() { journalctl -q _PID="${PIDS[2]}" OMNIFS_NODE=2 -o cat | grep -q "omnifsd: ready"; }
	wait_until 20 journal_has
	! grep -q 'omnifsd: ready' "$T/node2/log" || fail "node 2 wrote to stderr beside the journal"
else
	grep -q '^<5>n2 omnifsd: ready' "$T/node2/log" || fail "node 2's lines: $(head -3 "$T/node2/log")"
fi

log "log-level at runtime"
[ "$(ctl 1 log-level)" = info ] || fail "log-level: $(ctl 1 log-level)"
[ "$(ctl 1 log-level debug)" = "debug (was info)" ] || fail "log-level debug"
[ "$(ctl 1 log-level)" = debug ] || fail "log-level after setting debug: $(ctl 1 log-level)"
log_has 1 "omnifsd: log level debug (was info), set by omnifsctl log-level" ||
	fail "the change is not logged"
rc=0
ctl 1 log-level loud >/dev/null 2>&1 || rc=$?
[ "$rc" = 64 ] || fail "log-level loud exited $rc, not 64"
[ "$(ctl 1 log-level)" = debug ] || fail "a refused level changed the level"

log "SIGHUP reloads the config's log_level"
sed -i 's/^log_level = .*/log_level = warning/' "$T/node1/omnifs.conf"
kill -HUP "${PIDS[1]}"
wait_until 20 log_has 1 \
	"omnifsd: SIGHUP: reloaded $T/node1/omnifs.conf: log level warning (was debug); no other setting changed"
[ "$(ctl 1 log-level)" = warning ] || fail "log level after SIGHUP: $(ctl 1 log-level)"

log "SIGHUP with other changes and with a broken config"
sed -i 's/^log_level = .*/log_level = info/; s/^commit_timeout_ms = .*/commit_timeout_ms = 6000/' \
	"$T/node1/omnifs.conf"
kill -HUP "${PIDS[1]}"
wait_until 20 log_has 1 "log level info (was warning); other settings changed in the file take effect at the next start"
echo "bogus_key = 1" >>"$T/node1/omnifs.conf"
kill -HUP "${PIDS[1]}"
wait_until 20 log_has 1 "omnifsd: SIGHUP: $T/node1/omnifs.conf"
grep -F "omnifsd: SIGHUP: $T/node1/omnifs.conf" "$T/node1/log" | grep -q "bogus_key.*nothing changed" ||
	fail "the refused reload: $(grep -F SIGHUP "$T/node1/log" | tail -1)"
[ "$(ctl 1 log-level)" = info ] || fail "a refused reload changed the level"
ctl_quiet 1 status || fail "node 1 stopped answering after SIGHUPs"
log "ok"
