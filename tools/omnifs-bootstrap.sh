#!/usr/bin/env bash
# omnifs-bootstrap: everything a new cluster needs, for every node at once.
#
#   omnifs-bootstrap -c CLUSTER -o OUTDIR [-m MOUNTPOINT] [-D DATA_DIR] ID=HOST:PORT...
#
# For each node it writes OUTDIR/node<ID>/omnifs.conf and its CURVE keypair
# OUTDIR/node<ID>/node<ID>.key (mode 0600): copy the folder of node N to
# machine N as /etc/omnifs/omnifs.conf and /etc/omnifs/keys/node<N>.key, create
# the mountpoint, then `systemctl enable --now omnifsd@omnifs`. Every config
# lists every member and the public keys of the others. Nothing is
# overwritten: OUTDIR must not exist.
set -euo pipefail

usage() {
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

cluster="" out="" mountpoint="/srv/omnifs" data_dir="/var/lib/omnifs"
while getopts "c:o:m:D:h" opt; do
	case "$opt" in
	c) cluster=$OPTARG ;;
	o) out=$OPTARG ;;
	m) mountpoint=$OPTARG ;;
	D) data_dir=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ -n "$cluster" ] && [ -n "$out" ] && [ $# -ge 2 ] || usage
[ -e "$out" ] && { echo "omnifs-bootstrap: $out exists: choose a new folder" >&2; exit 1; }

keygen=""
for k in "$(dirname "$0")/omnifs-keygen" "$(command -v omnifs-keygen || true)"; do
	[ -n "$k" ] && [ -x "$k" ] && keygen=$k && break
done
[ -n "$keygen" ] || { echo "omnifs-bootstrap: omnifs-keygen not found" >&2; exit 1; }

ids=() addrs=()
for spec in "$@"; do
	if ! [[ "$spec" =~ ^([0-9]+)=([^=]+:[0-9]+)$ ]]; then
		echo "omnifs-bootstrap: '$spec': expected ID=HOST:PORT, e.g. 1=10.0.0.1:7100" >&2
		exit 2
	fi
	ids+=("${BASH_REMATCH[1]}")
	addrs+=("${BASH_REMATCH[2]}")
done

mkdir -p "$out"
for id in "${ids[@]}"; do
	mkdir -m 0700 "$out/node$id"
	# keygen's hints name its own paths, not the installed ones: shown on failure only
	if ! msg=$("$keygen" -d "$out/node$id" "node$id" 2>&1 >/dev/null); then
		echo "$msg" >&2
		exit 1
	fi
done
for n in "${!ids[@]}"; do
	id=${ids[$n]}
	{
		echo "# omnifs node $id of cluster $cluster (written by omnifs-bootstrap)"
		echo "[node]"
		echo "id = $id"
		echo "cluster = $cluster"
		echo "data_dir = $data_dir"
		echo "mountpoint = $mountpoint"
		echo
		echo "[peers]"
		for m in "${!ids[@]}"; do echo "${ids[$m]} = ${addrs[$m]}"; done
		echo
		echo "[peer_keys]"
		for m in "${!ids[@]}"; do
			[ "${ids[$m]}" = "$id" ] && continue
			echo "${ids[$m]} = $(cat "$out/node${ids[$m]}/node${ids[$m]}.pub")"
		done
		echo
		echo "[security]"
		echo "secret_key_file = /etc/omnifs/keys/node$id.key"
	} >"$out/node$id/omnifs.conf"
done
echo "omnifs-bootstrap: wrote ${#ids[@]} node configs and keypairs under $out"
for n in "${!ids[@]}"; do
	id=${ids[$n]}
	echo "  node $id (${addrs[$n]}): install -D -m 0644 node$id/omnifs.conf /etc/omnifs/omnifs.conf"
	echo "          install -D -m 0600 node$id/node$id.key /etc/omnifs/keys/node$id.key"
done
echo "then on each: mkdir -p $mountpoint && systemctl enable --now omnifsd@omnifs"
