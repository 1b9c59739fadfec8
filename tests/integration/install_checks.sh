# The checks of an installed omnifs, shared by test_install.sh (meson
# install --destdir) and test_deb.sh (the .deb unpacked): every file where
# the README says (programs, the systemd units pointing at the installed
# omnifsd and omnifsctl, the hourly snapshot timer and its service running
# the installed omnifs-snapshot, the example config and watch environment
# file, a man page for every program and the config that render without
# warnings, bash completion for omnifsctl and omnifsd that completes
# commands and options); every installed program answers --help on stdout
# with 0, --version, and refuses bad usage with 64; the installed programs
# work together (omnifs-bootstrap finds omnifs-keygen beside it, omnifsd
# accepts the configs it writes and the example).
#
# install_checks: on the tree under $D, with the install's paths in $prefix,
# $sbin, $bin, $etc, $man (man pages, gzipped or not) and $completions;
# fails the test (lib.sh's fail) at the first check that does not hold.

# man_page PATH: PATH or PATH.gz, whichever is installed under $D.
man_page() {
	if [ -f "$D$1.gz" ]; then echo "$1.gz"; else echo "$1"; fi
}

install_checks() {
	for f in "$sbin/omnifsd" "$sbin/omnifsctl" "$bin/omnifs-keygen" "$bin/omnifs-bootstrap"; do
		[ -x "$D$f" ] || fail "$f is not installed (or not executable)"
	done
	unit="$prefix/lib/systemd/system/omnifsd@.service"
	[ -f "$D$unit" ] || fail "$unit is not installed"
	grep -q "^ExecStart=$sbin/omnifsd -c " "$D$unit" || fail "the unit does not start $sbin/omnifsd"
	[ -f "$D$etc/omnifs/omnifs.conf.example" ] || fail "$etc/omnifs/omnifs.conf.example is not installed"
	wunit="$prefix/lib/systemd/system/omnifs-watch@.service"
	[ -f "$D$wunit" ] || fail "$wunit is not installed"
	grep -q "^ExecStart=$sbin/omnifsctl -c \${OMNIFS_CONFIG} watch " "$D$wunit" ||
		fail "the watch unit does not run $sbin/omnifsctl watch"
	grep -q "^EnvironmentFile=$etc/omnifs/watch/%i.env$" "$D$wunit" ||
		fail "the watch unit does not read $etc/omnifs/watch/%i.env"
	[ -f "$D$etc/omnifs/omnifs-watch.env.example" ] ||
		fail "$etc/omnifs/omnifs-watch.env.example is not installed"
	pages=()
	for p in man8/omnifsd.8 man8/omnifsctl.8 man8/omnifs-keygen.8 man8/omnifs-bootstrap.8 \
		man5/omnifs.conf.5; do
		pages+=("$(man_page "$man/$p")")
	done
	for p in "${pages[@]}"; do
		[ -f "$D$p" ] || fail "$p is not installed"
	done
	installed=$(cd "$D" && find . ! -type d | sort | sed 's|^\.||')
	log "installed: $(echo "$installed" | tr '\n' ' ')"

	# Every page renders, with groff's warnings on, without a word on stderr.
	for p in "${pages[@]}"; do
		MANWIDTH=80 man -l --warnings "$D$p" >"$T/page.txt" 2>"$T/page.err" || fail "man -l $p failed"
		[ ! -s "$T/page.err" ] || { cat "$T/page.err"; fail "man -l --warnings $p warns"; }
		grep -q '^NAME' "$T/page.txt" && grep -q '^SEE ALSO' "$T/page.txt" ||
			fail "$p renders without NAME or SEE ALSO"
	done
	# The installed unit, with its Documentation= pages found among the
	# installed ones. verify checks that ExecStart's binary exists, so a copy
	# points at the installed one under $D.
	sed "s|^ExecStart=$sbin/|ExecStart=$D$sbin/|" "$D$unit" >"$T/omnifsd@.service"
	MANPATH="$D$man" systemd-analyze verify "$T/omnifsd@.service" >"$T/verify.out" 2>&1 ||
		{ cat "$T/verify.out"; fail "systemd-analyze verify rejects the installed unit"; }
	[ ! -s "$T/verify.out" ] || { cat "$T/verify.out"; fail "systemd-analyze verify warns"; }
	sed "s|^ExecStart=$sbin/|ExecStart=$D$sbin/|" "$D$wunit" >"$T/omnifs-watch@.service"
	MANPATH="$D$man" systemd-analyze verify "$T/omnifs-watch@.service" >"$T/verify.out" 2>&1 ||
		{ cat "$T/verify.out"; fail "systemd-analyze verify rejects the installed watch unit"; }
	[ ! -s "$T/verify.out" ] || { cat "$T/verify.out"; fail "systemd-analyze verify warns (watch unit)"; }
	# The hourly snapshot: timer and service, the service running the installed
	# omnifs-snapshot.
	sunit="$prefix/lib/systemd/system/omnifs-snapshot@.service"
	stimer="$prefix/lib/systemd/system/omnifs-snapshot@.timer"
	[ -x "$D$sbin/omnifs-snapshot" ] || fail "$sbin/omnifs-snapshot is not installed"
	grep -q "^ExecStart=$sbin/omnifs-snapshot -c $etc/omnifs/%i.conf " "$D$sunit" ||
		fail "the snapshot unit does not run $sbin/omnifs-snapshot"
	sed "s|^ExecStart=$sbin/|ExecStart=$D$sbin/|" "$D$sunit" >"$T/omnifs-snapshot@.service"
	cp "$D$stimer" "$T/omnifs-snapshot@.timer"
	MANPATH="$D$man" systemd-analyze verify "$T/omnifs-snapshot@.timer" \
		"$T/omnifs-snapshot@.service" >"$T/verify.out" 2>&1 ||
		{ cat "$T/verify.out"; fail "systemd-analyze verify rejects the snapshot units"; }
	[ ! -s "$T/verify.out" ] || { cat "$T/verify.out"; fail "systemd-analyze verify warns (snapshot)"; }

	# The installed programs work together.
	"$D$sbin/omnifsd" --check-config -c "$D$etc/omnifs/omnifs.conf.example" >/dev/null ||
		fail "omnifsd rejects the installed example config"
	"$D$bin/omnifs-bootstrap" -c it -o "$T/boot" 1=127.0.0.1:7101 2=127.0.0.1:7102 3=127.0.0.1:7103 \
		>"$T/boot.out" 2>&1 || { cat "$T/boot.out"; fail "the installed omnifs-bootstrap failed"; }
	for i in 1 2 3; do
		"$D$sbin/omnifsd" --check-config -c "$T/boot/node$i/omnifs.conf" >/dev/null ||
			fail "omnifsd rejects node $i's config from omnifs-bootstrap"
		[ "$(stat -c %a "$T/boot/node$i/node$i.key")" = 600 ] || fail "node $i's key is not mode 0600"
	done
	# (Help is read from a file: grep -q stops reading at its first match, and
	# a help longer than a pipe's buffer would then die of SIGPIPE, which
	# pipefail reports.)
	"$D$sbin/omnifsctl" -h >"$T/ctl-help.out" || fail "the installed omnifsctl does not run"
	grep -q 'barrier' "$T/ctl-help.out" || fail "the installed omnifsctl's help lists no barrier"

	# Every installed program: --help on stdout with status 0, --version, and
	# status 64 (EX_USAGE) for an unknown option.
	for prog in "$D$sbin/omnifsd" "$D$sbin/omnifsctl" "$D$bin/omnifs-keygen" "$D$bin/omnifs-bootstrap"; do
		name=$(basename "$prog")
		"$prog" --help >"$T/help.out" 2>"$T/help.err" || fail "$name --help exited $?"
		grep -q "$name" "$T/help.out" && [ ! -s "$T/help.err" ] ||
			fail "$name --help does not print its usage on stdout alone"
		"$prog" --version | grep -Eq "^$name [0-9]+\.[0-9]+" || fail "$name --version"
		rc=0
		"$prog" --no-such-option >/dev/null 2>&1 || rc=$?
		[ "$rc" = 64 ] || fail "$name --no-such-option exited $rc, not 64"
	done
	rc=0
	"$D$sbin/omnifsctl" -s "$T/none.sock" -t 5x status >/dev/null 2>&1 || rc=$?
	[ "$rc" = 64 ] || fail "omnifsctl -t 5x exited $rc, not 64"
	"$D$sbin/omnifsctl" --help >"$T/ctl-help.out" || fail "omnifsctl --help exited $?"
	for c in status health barrier digest kv member watch keygen history restore snapshot lock locks log-level; do
		grep -q "^  $c\b" "$T/ctl-help.out" || fail "omnifsctl --help leaves out $c"
	done

	# Bash completion: installed where bash-completion looks, and it completes
	# omnifsctl's commands (read from the installed omnifsctl's help) and
	# omnifsd's options.
	for c in omnifsctl omnifsd; do
		[ -f "$D$completions/$c" ] || fail "$completions/$c is not installed"
	done
	got=$(bash -c '
		. "$1/omnifsctl"; . "$1/omnifsd"
		comp() { local f=$1; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "$f"; echo "${COMPREPLY[*]}"; }
		comp _omnifsctl "$2" he
		comp _omnifsctl "$2" -t 5 member re
		comp _omnifsctl "$2" kv ""
		comp _omnifsd omnifsd --check
	' _ "$D$completions" "$D$sbin/omnifsctl")
	expected=$(printf '%s\n' "health" "remove replace rekey" "get put del list watch" "--check-config")
	[ "$got" = "$expected" ] || { echo "$got"; fail "bash completion completes wrongly"; }
}
