#!/usr/bin/env bash
# Builds a Debian package of omnifs with dpkg-deb alone (no debhelper):
#   tools/build-deb.sh [OUTDIR]      (default build/deb; prints the .deb's path)
# It builds a release in build/deb/build (--prefix=/usr, asserts kept, as
# build/release; OMNIFS_DEB_BUILD names another build dir configured so, as
# the test machines' build that test_deb.sh reuses), installs it with `meson install --destdir` into a staging
# root (programs, systemd units, man pages, bash completion, the example
# configs in /etc/omnifs), and packs that with DEBIAN/control, conffiles,
# md5sums and maintainer scripts that reload systemd. Depends lists the
# packages of the shared libraries the programs really link: dpkg-shlibdeps
# when it is installed (dpkg-dev), else `dpkg -S` on what ldd shows, with the
# installed version as the minimum; plus fuse3 (fusermount3, /etc/fuse.conf).
# Install the result with `apt-get install ./omnifs_VERSION_ARCH.deb`.
#
# What it deliberately does not do: restart running nodes on an upgrade (a
# restart unmounts the tree under its users: `systemctl restart
# omnifsd@NAME` when convenient), or write a config (omnifs-bootstrap does).
# DEB_MAINTAINER sets the Maintainer field.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=${1:-build/deb}
mkdir -p "$out" build/deb
# build/ holds build dirs, which git leaves alone; this one too.
[ -f build/deb/.gitignore ] || echo '*' >build/deb/.gitignore
out=$(cd "$out" && pwd)
build="${OMNIFS_DEB_BUILD:-$src/build/deb/build}"

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" --prefix=/usr -Dbuildtype=release -Db_ndebug=false \
		-Dsystemd=enabled >"$build.setup.log" 2>&1 ||
		{ cat "$build.setup.log" >&2; exit 1; }
fi
ninja -C "$build" >"$build.log" 2>&1 || { tail -30 "$build.log" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
meson install -C "$build" --no-rebuild --quiet --destdir "$root" >/dev/null
# Man pages are gzipped in a Debian package (man reads them so).
find "$root/usr/share/man" -type f ! -name '*.gz' -exec gzip -9n {} +
version=$(meson introspect --projectinfo "$build" | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
arch=$(dpkg --print-architecture)

# The ELF programs the package ships.
mapfile -t elves < <(find "$root" -type f -perm -u+x -exec sh -c \
	'head -c 4 "$1" | grep -q "ELF" && echo "$1"' _ {} \; | sort)
[ "${#elves[@]}" -gt 0 ] || { echo "build-deb: no programs were installed" >&2; exit 1; }

# deps_shlibdeps: "pkg (>= v), ..." from dpkg-shlibdeps (it reads
# debian/control, so it runs in a stand-in source dir).
deps_shlibdeps() {
	mkdir -p "$stage/src/debian"
	printf 'Source: omnifs\n\nPackage: omnifs\nArchitecture: any\n' >"$stage/src/debian/control"
	(cd "$stage/src" && dpkg-shlibdeps -O "${elves[@]/#/-e}" 2>/dev/null) |
		sed -n 's/^shlibs:Depends=//p'
}
# deps_dpkg_s: the same from ldd and dpkg -S: the package of each library
# a program needs, at least the version installed here.
deps_dpkg_s() {
	local lib pkg
	for e in "${elves[@]}"; do ldd "$e"; done | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' |
		sort -u | while read -r lib; do
		pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1) ||
			pkg=""
		[ -n "$pkg" ] || { echo "build-deb: no package holds $lib" >&2; exit 1; }
		echo "$pkg (>= $(dpkg-query -W -f='${Version}' "$pkg"))"
	done | sort -u | paste -sd, | sed 's/,/, /g'
}
# ldd lists every library loaded, the libraries' own needs too: dpkg -S
# then names more packages than dpkg-shlibdeps (which reads only what the
# programs link directly); both install the same set.
if command -v dpkg-shlibdeps >/dev/null; then
	depends=$(deps_shlibdeps)
else
	depends=$(deps_dpkg_s)
fi
[ -n "$depends" ] || { echo "build-deb: could not work out Depends" >&2; exit 1; }

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<EOF
Package: omnifs
Version: $version
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-omnifs maintainers <omnifs@localhost>}
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends, fuse3
Suggests: bash-completion
Section: admin
Priority: optional
Description: POSIX filesystem replicated by an OmniPaxos log
 omnifs keeps one directory tree identical on every node of a cluster: each
 change is decided by an OmniPaxos log over ZeroMQ (CURVE) and applied to a
 RocksDB state on every node, served through FUSE. A node rides out the loss
 of a minority, catches up after an absence, and stays in step when cut from
 the leader alone.
 .
 This package holds omnifsd, omnifsctl, omnifs-keygen, omnifs-bootstrap and
 omnifs-snapshot, the systemd units omnifsd@.service, omnifs-watch@.service
 and omnifs-snapshot@.timer, man pages, bash completion and example configs.
EOF
(cd "$root" && find etc -type f 2>/dev/null | sed 's|^|/|' | sort) >"$root/DEBIAN/conffiles"
[ -s "$root/DEBIAN/conffiles" ] || rm "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
	xargs -0 md5sum) >"$root/DEBIAN/md5sums"

# Maintainer scripts: systemd learns of the units (and forgets them), and a
# removal stops what runs from the files going away.
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# omnifs: systemd reads the installed or changed unit files.
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
EOF
cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
# omnifs: before a removal, stop the nodes, watchers and snapshot timers
# (omnifsd unmounts its tree on SIGTERM). An upgrade leaves them running.
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop 'omnifs-snapshot@*.timer' 'omnifs-watch@*.service' \
		'omnifsd@*.service' >/dev/null 2>&1 || true
fi
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# omnifs: systemd forgets the removed unit files. Configs and data dirs
# stay (purge removes the example configs only).
set -e
if { [ "$1" = remove ] || [ "$1" = purge ]; } && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

deb="$out/omnifs_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
