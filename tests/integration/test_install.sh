#!/usr/bin/env bash
# `meson install --destdir` puts every file where the README says (the
# checks are in install_checks.sh, which test_deb.sh runs on the package
# too: programs,
# the systemd units pointing at the installed omnifsd and omnifsctl, the
# hourly snapshot timer and its service running the installed
# omnifs-snapshot, the example config and watch environment file, a man page
# for every program and the config that render without warnings, bash
# completion for omnifsctl and omnifsd that completes commands and options);
# every installed program answers --help on stdout with 0, --version, and
# refuses bad usage with 64; the installed programs work together
# (omnifs-bootstrap finds omnifs-keygen beside it, omnifsd accepts the configs
# it writes and the example); `ninja uninstall` removes exactly what was
# installed, never a config or a data dir.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/install_checks.sh"

D="$T/root"
# meson install and uninstall record in the build dir's install log: keep the
# one of a real install from this build dir, if any.
LOGF="$OMNIFS_BUILD/meson-logs/install-log.txt"
[ -f "$LOGF" ] && cp "$LOGF" "$T/install-log.saved"
restore_log() { [ -f "$T/install-log.saved" ] && cp "$T/install-log.saved" "$LOGF"; return 0; }
trap 'rc=$?; restore_log; (exit $rc); cleanup' EXIT

meson install -C "$OMNIFS_BUILD" --destdir "$D" --no-rebuild --quiet >"$T/install.out" 2>&1 ||
	{ cat "$T/install.out"; fail "meson install failed"; }
read -r prefix sbindir bindir sysconfdir mandir datadir < <(meson introspect --buildoptions "$OMNIFS_BUILD" |
	python3 -c 'import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(*(o[k] for k in ("prefix", "sbindir", "bindir", "sysconfdir", "mandir", "datadir")))')
abs() { case "$1" in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
sbin=$(abs "$sbindir") bin=$(abs "$bindir") etc=$(abs "$sysconfdir") man=$(abs "$mandir")
# bash-completion's own completionsdir under this prefix, if it is installed.
if pkg-config --exists bash-completion; then
	completions=$(pkg-config --define-variable=prefix="$prefix" --variable=completionsdir bash-completion)
else
	completions=$(abs "$datadir")/bash-completion/completions
fi
log "prefix $prefix: sbin $sbin, bin $bin, config $etc/omnifs, man $man"
install_checks

# Uninstall: what was installed goes, the admin's config and data stay.
echo "# the real config" >"$D$etc/omnifs/omnifs.conf"
mkdir -p "$D/var/lib/omnifs/log"
echo data >"$D/var/lib/omnifs/log/000001.log"
ninja -C "$OMNIFS_BUILD" uninstall >"$T/uninstall.out" 2>&1 ||
	{ cat "$T/uninstall.out"; fail "ninja uninstall failed"; }
left=$(cd "$D" && find . ! -type d | sort | sed 's|^\.||')
expected=$(printf '%s\n' "$etc/omnifs/omnifs.conf" /var/lib/omnifs/log/000001.log | sort)
[ "$left" = "$expected" ] || { echo "$left"; fail "uninstall left or took the wrong files"; }
log "uninstall removed the installed files and kept the config and the data dir"
log "PASS"
