#!/usr/bin/env bash
# The Debian package: tools/build-deb.sh builds it (in the test machines'
# build dir, which the systemd tests build anyway); unpacked, it passes the
# install test's checks (install_checks.sh) at /usr and /etc; on fresh
# Debian 12 machines with systemd as PID 1 (tests/lib/machines.sh, without
# their omnifs layer) `apt-get install ./omnifs_*.deb` installs it, and a
# two-node omnifs (a config names two nodes or more) set up and started as
# the README says (omnifs-bootstrap, install, systemctl enable --now) is
# healthy and replicates a file and a kv put; `apt-get remove` stops the
# node, systemd forgets the unit, and the config and data dir stay.
#
# The machines have no network: apt installs the package only if the
# machine's packages meet its Depends (its root holds omnifs's run-time
# libraries, MX_PACKAGES), so a Depends naming a package Debian 12 lacks, or
# one the machines were not given, fails here.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/install_checks.sh"
. "$(dirname "$0")/../lib/machines.sh"

MX_DIR="$T/machines"
MX_OMNIFS=0
CLEANUP_HOOKS+=(machines_down)

# --- Build, then check the package's files as the install test does.
deb=$(OMNIFS_DEB_BUILD="$(mx_cache)/build" "$OMNIFS_SRC/tools/build-deb.sh" "$T/deb") ||
	fail "tools/build-deb.sh failed"
log "built $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$deb" Depends | grep -q 'librocksdb' || fail "Depends leaves out RocksDB"
[ "$(dpkg-deb -f "$deb" Package)" = omnifs ] || fail "the package is not named omnifs"
dpkg-deb -I "$deb" postinst | grep -q 'daemon-reload' || fail "postinst does not reload systemd"
D="$T/root"
dpkg-deb -x "$deb" "$D"
prefix=/usr sbin=/usr/sbin bin=/usr/bin etc=/etc man=/usr/share/man
completions=/usr/share/bash-completion/completions
install_checks
log "the package's files pass the install checks"

# --- Install it with apt on two fresh machines, start a two-node omnifs
# (the smallest cluster a config may describe).
machines_prepare
for n in 1 2; do
	machine_boot "$n" "10.0.0.$n"
	on_machine "$n" test ! -e /usr/sbin/omnifsd || fail "machine $n has omnifs before the package"
	cp "$deb" "$(machine_root "$n")/root/"
	on_machine "$n" apt-get install -y "/root/$(basename "$deb")" >"$T/apt.out" 2>&1 ||
		{ cat "$T/apt.out"; fail "machine $n: apt-get install of the package failed"; }
	on_machine "$n" dpkg-query -W -f='${Status}' omnifs | grep -qx 'install ok installed' ||
		fail "machine $n: dpkg does not list omnifs as installed"
	[ "$(on_machine "$n" systemctl show -P NeedDaemonReload omnifsd@omnifs)" = no ] ||
		fail "machine $n: systemd has not read the installed unit"
done
tail -3 "$T/apt.out"

on_machine 1 omnifs-bootstrap -c deb -o /root/omnifs-deb 1=10.0.0.1:7100 2=10.0.0.2:7100 \
	>"$T/boot.out" 2>&1 || { cat "$T/boot.out"; fail "omnifs-bootstrap failed"; }
machine_copy 1 /root/omnifs-deb/node2 2 /root/
for n in 1 2; do
	dir=/root
	[ "$n" = 1 ] && dir=/root/omnifs-deb
	on_machine "$n" sh -ec "cd $dir
		install -D -m 0644 node$n/omnifs.conf /etc/omnifs/omnifs.conf
		install -D -m 0600 node$n/node$n.key /etc/omnifs/keys/node$n.key
		mkdir -p /srv/omnifs
		systemctl enable --now --no-block omnifsd@omnifs" >"$T/start.out" 2>&1 ||
		{ cat "$T/start.out"; fail "machine $n: the node was not started"; }
done
healthy() { on_machine "$1" omnifsctl health >/dev/null 2>&1; }
for n in 1 2; do wait_until 90 healthy "$n"; done
on_machine 1 sh -ec 'echo hello >/srv/omnifs/hello; omnifsctl kv put deb yes' ||
	fail "no write on the installed node"
on_machine 2 omnifsctl barrier >/dev/null
[ "$(on_machine 2 cat /srv/omnifs/hello)" = hello ] || fail "machine 2 does not read the file"
[ "$(on_machine 2 omnifsctl kv get deb)" = yes ] || fail "machine 2 does not read the kv put"
log "machine 2: $(on_machine 2 systemctl show -P StatusText omnifsd@omnifs)"

# --- Removal: the node stops, the unit goes, config and data stay.
on_machine 1 apt-get remove -y omnifs >"$T/remove.out" 2>&1 ||
	{ cat "$T/remove.out"; fail "apt-get remove failed"; }
[ "$(on_machine 1 systemctl is-active omnifsd@omnifs)" != active ] ||
	fail "the node still runs after the package was removed"
! on_machine 1 findmnt -n /srv/omnifs >/dev/null || fail "the tree is still mounted"
on_machine 1 test ! -e /usr/lib/systemd/system/omnifsd@.service || fail "the unit file is left"
[ "$(on_machine 1 systemctl show -P LoadState omnifsd@omnifs)" = not-found ] ||
	fail "systemd still knows the removed unit"
on_machine 1 test -f /etc/omnifs/omnifs.conf -a -d /var/lib/omnifs ||
	fail "removing the package took the config or the data dir"
log "PASS"
