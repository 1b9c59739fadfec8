#!/bin/sh
# omnifs-snapshot: saves a snapshot of this node's replicated state into a
# directory, checks it, and keeps the newest KEEP snapshots there (the
# systemd timer omnifs-snapshot@.timer runs it every hour).
#
#   omnifs-snapshot [-c CONFIG] [-d DIR] [-k KEEP]
#
#   -c CONFIG  the node's config (default /etc/omnifs/omnifs.conf)
#   -d DIR     where snapshots go (default /var/lib/omnifs/snapshots); the
#              daemon writes the file, so DIR is on its machine
#   -k KEEP    how many to keep, newest first (default 24)
#
# Files are named omnifs-YYYYmmddTHHMMSS.mmmZ.snap (UTC), so name order is
# age order; only files of that shape are ever removed. $OMNIFSCTL, if set,
# is the omnifsctl to run. Prints the saved file's
# header. Exit status: 0 saved and checked, 1 the save or the check failed
# (nothing removed then), 2 bad usage.
set -eu
config=/etc/omnifs/omnifs.conf
dir=/var/lib/omnifs/snapshots
keep=24
usage() { echo "usage: omnifs-snapshot [-c CONFIG] [-d DIR] [-k KEEP]" >&2; exit 2; }
while getopts c:d:k:h opt; do
	case $opt in
	c) config=$OPTARG ;;
	d) dir=$OPTARG ;;
	k) keep=$OPTARG ;;
	*) usage ;;
	esac
done
[ $OPTIND -gt $# ] || usage
case $keep in '' | *[!0-9]* | 0) echo "omnifs-snapshot: -k takes a number >= 1" >&2; exit 2 ;; esac
ctl=${OMNIFSCTL:-omnifsctl}
command -v "$ctl" >/dev/null 2>&1 || ctl="$(dirname "$0")/omnifsctl"

mkdir -p -m 0700 "$dir"
file="$dir/omnifs-$(date -u +%Y%m%dT%H%M%S.%3NZ).snap"
"$ctl" -c "$config" snapshot save "$file" >/dev/null || exit 1
"$ctl" snapshot verify "$file" || { rm -f "$file"; exit 1; }
# The newest $keep stay; older ones of our naming go.
ls -1 "$dir" | grep -E '^omnifs-[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.snap$' | sort -r | tail -n +"$((keep + 1))" |
	while read -r old; do rm -f "$dir/$old"; done
