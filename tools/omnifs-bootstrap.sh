#!/usr/bin/env bash
# omnifs-bootstrap: the configs and keys of a new cluster, or of one node to
# add to a running cluster.
#
#   omnifs-bootstrap -c CLUSTER -o OUTDIR [-m MOUNTPOINT] [-D DATA_DIR]
#                    [-k ID=PUBKEY]... ID=HOST:PORT...
#   omnifs-bootstrap --add ID=HOST:PORT [--learner] -o OUTDIR [-m MOUNTPOINT]
#                    [-D DATA_DIR] [-k ID=PUBKEY] [CONFIG]
#   omnifs-bootstrap --help | --version
#
# Long options: --cluster, --out, --mountpoint, --data-dir, --public-key for
# -c, -o, -m, -D, -k.
#
# New cluster: for each node it writes OUTDIR/node<ID>/omnifs.conf and its
# CURVE keypair OUTDIR/node<ID>/node<ID>.key (mode 0600): copy the folder of
# node N to machine N as /etc/omnifs/omnifs.conf and
# /etc/omnifs/keys/node<N>.key, create the mountpoint, then `systemctl enable
# --now omnifsd@omnifs`. Every config lists every member and the public keys
# of the others. The secret keys are all made here: move each to its machine
# and delete them from OUTDIR.
#
# Public keys only (-k for every node): each machine made its own keypair
# first (`omnifs-keygen -d /etc/omnifs/keys node<N>`, which prints the public
# key) and -k N=PUBKEY gives node N's public key. Then no secret key is made
# or written: each config names /etc/omnifs/keys/node<N>.key, the file
# already on machine N, and OUTDIR holds configs only.
#
# --add, run on a member (CONFIG: its config, default /etc/omnifs/omnifs.conf):
# writes the same two files for the one new node (only its config with -k,
# its public key made on the new machine), with join = true, the
# cluster's name, [timing], [compaction], [fs] and batch_size from CONFIG, the
# members and their keys plus the new node, and prints the commands for the
# new machine and the `omnifsctl member add` to run on a member. The members
# are the running node's (`omnifsctl member list`), or CONFIG's [peers] and
# [peer_keys] if it does not answer. Nothing is overwritten: OUTDIR must not
# exist. With --learner the command printed adds the node as a learner (a
# member that mounts and writes but does not vote: for fleets of machines
# around 3 or 5 voters); the files are the same.
#
# Every config is checked by `omnifsd --check-config` (omnifsd on PATH or
# beside this script) and the ids and addresses by this script; the files are
# written in a temporary folder beside OUTDIR, renamed to OUTDIR only once all
# of them check, so a refused run leaves no file and no key behind.
#
# Exit status: 0 written, 1 refused or failed (nothing written), 64 bad usage.
set -euo pipefail

# The installed copy has the version filled in (tools/meson.build).
version='@VERSION@'
case "$version" in @*) version="(not installed)" ;; esac

# help: this header, from its second line to the exit status.
help() { sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; }
usage() {
	help >&2
	exit 64
}
die() {
	echo "omnifs-bootstrap: $*" >&2
	exit 1
}

# getopts knows no long options: --add SPEC becomes -a SPEC.
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--add) [ $# -ge 2 ] || usage; args+=(-a "$2"); shift 2 ;;
	--add=*) args+=(-a "${1#--add=}"); shift ;;
	--learner) args+=(-L); shift ;;
	--cluster | --out | --mountpoint | --data-dir | --public-key)
		[ $# -ge 2 ] || usage
		case "$1" in
		--cluster) args+=(-c) ;;
		--out) args+=(-o) ;;
		--mountpoint) args+=(-m) ;;
		--public-key) args+=(-k) ;;
		*) args+=(-D) ;;
		esac
		args+=("$2")
		shift 2
		;;
	--public-key=*) args+=(-k "${1#--public-key=}"); shift ;;
	--help | -h)
		help
		exit 0
		;;
	--version)
		echo "omnifs-bootstrap $version"
		exit 0
		;;
	--) args+=("$@"); break ;;
	--*) echo "omnifs-bootstrap: unknown option $1" >&2; usage ;;
	*) args+=("$1"); shift ;;
	esac
done
set -- "${args[@]}"

add="" learner="" cluster="" out="" mountpoint="/srv/omnifs" data_dir="/var/lib/omnifs"
key_args=()
while getopts "a:Lc:o:m:D:k:" opt; do
	case "$opt" in
	a) add=$OPTARG ;;
	L) learner="--learner " ;;
	k) key_args+=("$OPTARG") ;;
	c) cluster=$OPTARG ;;
	o) out=$OPTARG ;;
	m) mountpoint=$OPTARG ;;
	D) data_dir=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
if [ -n "$add" ]; then
	[ -z "$cluster" ] || die "--add takes the cluster's name from the member's config: drop -c"
else
	[ -z "$learner" ] || die "--learner goes with --add: a new cluster's nodes all vote"
fi
if [ -n "$add" ]; then
	{ [ -n "$out" ] && [ $# -le 1 ]; } || usage
else
	{ [ -n "$cluster" ] && [ -n "$out" ] && [ $# -ge 2 ]; } || usage
fi

# parse_spec SPEC: sets spec_id and spec_addr, or exits.
parse_spec() {
	if ! [[ "$1" =~ ^([0-9]+)=([^=]+:[0-9]+)$ ]] || [ "${#BASH_REMATCH[1]}" -gt 5 ] ||
		[ "${BASH_REMATCH[1]}" -lt 1 ] || [ "${BASH_REMATCH[1]}" -gt 65535 ]; then
		echo "omnifs-bootstrap: '$1': expected ID=HOST:PORT with ID from 1 to 65535, e.g. 1=10.0.0.1:7100" >&2
		exit 64
	fi
	spec_id=$((10#${BASH_REMATCH[1]}))
	spec_addr=${BASH_REMATCH[2]}
}

# z85_key_ok KEY: KEY is 40 characters of Z85 that decode to 32 bytes: what
# omnifsd checks in [peer_keys], and that no group of five exceeds 32 bits
# (which only the transport would find, at start).
z85_key_ok() {
	local alphabet='0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#'
	local i c v=0 rest
	[ ${#1} = 40 ] || return 1
	for ((i = 0; i < 40; i++)); do
		c=${1:i:1}
		rest=${alphabet%%"$c"*}
		[ "$rest" != "$alphabet" ] || return 1
		v=$((v * 85 + ${#rest}))
		if ((i % 5 == 4)); then
			((v <= 0xffffffff)) || return 1
			v=0
		fi
	done
}

# given_key[ID]: the public keys given with -k, each for one node and each
# once. A Z85 key may hold '=', so the id ends at the first one.
declare -A given_key=() key_owner=()
for arg in "${key_args[@]}"; do
	kid=${arg%%=*} key=${arg#*=}
	if [ "$kid" = "$arg" ] || ! [[ "$kid" =~ ^[0-9]{1,5}$ ]] || [ "$((10#$kid))" -lt 1 ] ||
		[ "$((10#$kid))" -gt 65535 ]; then
		echo "omnifs-bootstrap: -k '$arg': expected ID=PUBKEY with ID from 1 to 65535" >&2
		exit 64
	fi
	kid=$((10#$kid))
	z85_key_ok "$key" ||
		die "node $kid's public key '$key' is not a CURVE public key: expected the 40 characters omnifs-keygen prints (node$kid.pub), nothing written"
	[ -z "${given_key[$kid]:-}" ] || die "node $kid's public key is given twice, nothing written"
	[ -z "${key_owner[$key]:-}" ] ||
		die "nodes ${key_owner[$key]} and $kid are given the same public key: each machine makes its own keypair, nothing written"
	given_key[$kid]=$key
	key_owner[$key]=$kid
done

# find_prog NAME DIR...: the first executable NAME beside this script, in a
# DIR relative to it, or on PATH; "" if none.
find_prog() {
	local name=$1 here d
	here=$(dirname "$0")
	shift
	for d in "$here" "$@"; do
		[ -x "$here/$d/$name" ] && { echo "$here/$d/$name"; return; }
	done
	command -v "$name" || true
}

keygen=$(find_prog omnifs-keygen .)
[ -n "$keygen" ] || die "omnifs-keygen not found"

# new_keypair DIR ID: DIR/node<ID>.key (0600) and DIR/node<ID>.pub.
new_keypair() {
	local msg
	mkdir -m 0700 "$1"
	# keygen's hints name its own paths, not the installed ones: shown on failure only
	if ! msg=$("$keygen" -d "$1" "node$2" 2>&1 >/dev/null); then
		echo "$msg" >&2
		exit 1
	fi
}

omnifsd=$(find_prog omnifsd ../sbin ../fs)

# check_config FILE WHAT: exits with omnifsd's message if it refuses FILE.
check_config() {
	local msg
	[ -n "$omnifsd" ] || return 0
	if ! msg=$("$omnifsd" -c "$1" --check-config 2>&1); then
		die "the config written for $2 does not check, nothing written: $msg"
	fi
}

# stage_begin: $stage, a new 0700 folder beside $out that is removed when the
# script exits unless stage_commit renamed it to $out.
stage=""
stage_begin() {
	local parent
	parent=$(dirname "$out")
	mkdir -p "$parent"
	stage=$(mktemp -d "$parent/.$(basename "$out").XXXXXX") || die "cannot create a folder in $parent"
	trap 'rm -rf "$stage"' EXIT
	trap 'exit 130' INT TERM HUP
}
stage_commit() {
	[ -e "$out" ] && die "$out exists: choose a new folder"
	mv -T "$stage" "$out" || die "cannot rename $stage to $out"
	trap - EXIT
}

# ini_values FILE: "section<TAB>key<TAB>value" for every key of an INI file,
# read the way omnifsd reads it (libinih: '=' or ':' separates, '#' and ';'
# start a comment line, ' ;' an inline comment).
ini_values() {
	awk '
	function trim(s) { sub(/^[ \t\r]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
	{
		line = trim($0)
		if (line == "" || line ~ /^[#;]/) next
		if (line ~ /^\[/) { sec = trim(substr(line, 2, index(line, "]") - 2)); next }
		eq = match(line, /[=:]/)
		if (!eq) next
		val = substr(line, eq + 1)
		sub(/[ \t]+;.*$/, "", val)
		printf "%s\t%s\t%s\n", sec, trim(substr(line, 1, eq - 1)), trim(val)
	}' "$1"
}

if [ -n "$add" ]; then
	parse_spec "$add"
	id=$spec_id addr=$spec_addr
	for kid in "${!given_key[@]}"; do
		[ "$kid" = "$id" ] || die "-k gives a public key for node $kid, but --add adds node $id, nothing written"
	done
	config=${1:-/etc/omnifs/omnifs.conf}
	[ -r "$config" ] || die "cannot read $config: give a member's config (default /etc/omnifs/omnifs.conf)"
	[ -e "$out" ] && die "$out exists: choose a new folder"
	if [ -n "$omnifsd" ] && ! msg=$("$omnifsd" -c "$config" --check-config 2>&1); then
		die "$config is not a valid config: $msg"
	fi

	declare -A peer_addr=() peer_key=()
	peer_ids=() copied=() own_id="" plaintext=false allow_network=false key_file="" quorums=false
	while IFS=$'\t' read -r sec key val; do
		case "$sec/$key" in
		node/id) own_id=$val ;;
		node/cluster) cluster=$val ;;
		peers/*) peer_ids+=("$key") && peer_addr[$key]=$val ;;
		peer_keys/*) peer_key[$key]=$val ;;
		security/plaintext) [[ "$val" =~ ^(true|yes)$ ]] && plaintext=true ;;
		security/plaintext_allow_network) [[ "$val" =~ ^(true|yes)$ ]] && allow_network=true ;;
		security/secret_key_file) key_file=$val ;;
		timing/* | compaction/* | fs/* | consensus/batch_size) copied+=("$sec	$key = $val") ;;
		consensus/read_quorum | consensus/write_quorum) quorums=true ;;
		esac
	done < <(ini_values "$config")
	{ [ -n "$cluster" ] && [ -n "$own_id" ] && [ ${#peer_ids[@]} -ge 2 ]; } ||
		die "$config: no [node] id and cluster or no [peers]: not a member's config"
	source="$config's [peers] (node $own_id did not answer omnifsctl)"
	# [peers] is what formed the cluster; membership changes since are in
	# the running node's member list ("n<ID> <address> <key or -> ...").
	omnifsctl=$(find_prog omnifsctl ../sbin ../tools)
	if [ -n "$omnifsctl" ] && live=$("$omnifsctl" -c "$config" -t 5 member list 2>/dev/null); then
		peer_ids=()
		peer_addr=()
		peer_key=()
		while read -r name a k _; do
			[[ "$name" =~ ^n([0-9]+)$ ]] || continue
			peer_ids+=("${BASH_REMATCH[1]}")
			peer_addr[${BASH_REMATCH[1]}]=$a
			[ "$k" = - ] || peer_key[${BASH_REMATCH[1]}]=$k
		done <<<"$live"
		[ ${#peer_ids[@]} -ge 1 ] || die "node $own_id's member list names no member: $live"
		source="node $own_id's member list, ${live%%$'\n'*}"
	fi
	for p in "${peer_ids[@]}"; do
		[ "$p" = "$id" ] && die "node $id is already a member (${peer_addr[$p]}, from $source): choose a new id"
		[ "${peer_addr[$p]}" = "$addr" ] && die "$addr is already node $p's address (from $source)"
	done
	if [ "$plaintext" = false ]; then
		if [ -z "${peer_key[$own_id]:-}" ]; then
			[ -r "$key_file" ] || die "cannot read $config's secret_key_file '$key_file' (run as root?)"
			peer_key[$own_id]=$(sed -n 's/^[ \t]*public-key[ \t]*=[ \t]*\([^ \t]*\)[ \t]*$/\1/p' "$key_file")
			[ ${#peer_key[$own_id]} = 40 ] || die "$key_file holds no public-key line"
		fi
		for p in "${peer_ids[@]}"; do
			[ -n "${peer_key[$p]:-}" ] || die "no public key for node $p (from $source)"
		done
	fi

	stage_begin
	dir="$stage/node$id"
	if [ "$plaintext" = false ] && [ -n "${given_key[$id]:-}" ]; then
		mkdir -m 0700 "$dir"
		pub=${given_key[$id]}
	elif [ "$plaintext" = false ]; then
		new_keypair "$dir" "$id"
		pub=$(cat "$dir/node$id.pub")
	else
		[ -z "${given_key[$id]:-}" ] || die "$config is a plaintext config: no public keys (-k), nothing written"
		mkdir -m 0700 "$dir"
		pub=""
	fi
	{
		echo "# omnifs node $id joining cluster $cluster (written by omnifs-bootstrap --add)"
		echo "[node]"
		echo "id = $id"
		echo "cluster = $cluster"
		echo "data_dir = $data_dir"
		echo "mountpoint = $mountpoint"
		echo "# Being added to a running cluster: takes the membership and the state"
		echo "# from the members below; ignored once $data_dir holds state."
		echo "join = true"
		echo
		echo "[peers]"
		for p in "${peer_ids[@]}"; do echo "$p = ${peer_addr[$p]}"; done
		echo "$id = $addr"
		if [ "$plaintext" = false ]; then
			echo
			echo "[peer_keys]"
			for p in "${peer_ids[@]}"; do echo "$p = ${peer_key[$p]}"; done
		fi
		# The members' shared settings, so every node times and limits alike.
		for sec in timing consensus compaction fs; do
			first=true
			for line in "${copied[@]}"; do
				[ "${line%%	*}" = "$sec" ] || continue
				$first && printf '\n[%s]\n' "$sec" && first=false
				echo "${line#*	}"
			done
		done
		echo
		echo "[security]"
		if [ "$plaintext" = false ]; then
			echo "secret_key_file = /etc/omnifs/keys/node$id.key"
		else
			echo "plaintext = true"
			if $allow_network; then echo "plaintext_allow_network = true"; fi
		fi
	} >"$dir/omnifs.conf"
	check_config "$dir/omnifs.conf" "node $id"
	stage_commit
	dir="$out/node$id"

	members=$(IFS=,; echo "${peer_ids[*]}")
	host=${addr%:*}
	own_key=false
	[ -n "$pub" ] && [ -z "${given_key[$id]:-}" ] && own_key=true
	what="config"
	$own_key && what="config and keypair"
	echo "omnifs-bootstrap: wrote node $id's $what under $out, to join cluster $cluster"
	echo "  members $members, from $source"
	$quorums && echo "  note: [consensus] read_quorum and write_quorum are not copied: they depend on the cluster's size"
	echo "on the new machine ($host), in the folder that holds node$id/ (scp -r $dir $host:):"
	echo "  install -D -m 0644 node$id/omnifs.conf /etc/omnifs/omnifs.conf"
	$own_key && echo "  install -D -m 0600 node$id/node$id.key /etc/omnifs/keys/node$id.key"
	if [ -n "${given_key[$id]:-}" ]; then
		echo "  # the secret key is the one made there: /etc/omnifs/keys/node$id.key must hold"
		echo "  grep -qxF 'public-key = $pub' /etc/omnifs/keys/node$id.key"
	fi
	echo "  mkdir -p $mountpoint && systemctl enable --now --no-block omnifsd@omnifs"
	on="any member"
	[ -n "$learner" ] && on="a voter"
	echo "then on $on (returns once node $id is a member):"
	# Z85 keys hold shell characters ($, #, &, <...) but never a single quote.
	add_cmd="omnifsctl member add $learner$id $addr"
	[ -n "$pub" ] && add_cmd+=" '$pub'"
	echo "  $add_cmd"
	echo "node $id serves the tree once it has caught up (on it: omnifsctl status; omnifsctl member list)"
	if $own_key; then
		echo "SECRET KEY: $out/node$id/node$id.key is node $id's secret key, made on this machine;"
		echo "  whoever holds it can pose as node $id. Move it to the new machine: copy node$id/ only"
		echo "  there, and once installed delete every copy: $out on this machine, node$id/ on the new one."
	fi
	exit 0
fi

[ -e "$out" ] && die "$out exists: choose a new folder"
# What omnifsd accepts as [node] cluster (checked here too when no omnifsd
# is at hand).
[[ "$cluster" =~ ^[A-Za-z0-9._-]{1,63}$ ]] ||
	die "'$cluster': a cluster name is 1 to 63 letters, digits, '.', '_' or '-'"
ids=() addrs=()
declare -A id_seen=() addr_seen=()
for spec in "$@"; do
	parse_spec "$spec"
	# omnifsd checks each config alone: these clashes are across the nodes.
	[ -z "${id_seen[$spec_id]:-}" ] || die "id $spec_id is given twice ($spec and ${id_seen[$spec_id]}): every node needs its own id"
	[ -z "${addr_seen[$spec_addr]:-}" ] ||
		die "$spec_addr is given twice ($spec and ${addr_seen[$spec_addr]}): every node needs its own address"
	id_seen[$spec_id]=$spec
	addr_seen[$spec_addr]=$spec
	ids+=("$spec_id")
	addrs+=("$spec_addr")
done
# Public keys only: one for every node, or none (then all are made here).
for kid in "${!given_key[@]}"; do
	[ -n "${id_seen[$kid]:-}" ] || die "-k gives a public key for node $kid, which is not one of the nodes, nothing written"
done
public_only=false
if [ ${#given_key[@]} -gt 0 ]; then
	public_only=true
	for id in "${ids[@]}"; do
		[ -n "${given_key[$id]:-}" ] ||
			die "no public key for node $id: give -k ID=PUBKEY for every node (each made on its machine by omnifs-keygen) or for none, nothing written"
	done
fi
[ -n "$omnifsd" ] || echo "omnifs-bootstrap: omnifsd not found: the configs are not checked by omnifsd --check-config" >&2

stage_begin
for id in "${ids[@]}"; do
	if $public_only; then
		mkdir -m 0700 "$stage/node$id"
	else
		new_keypair "$stage/node$id" "$id"
		given_key[$id]=$(cat "$stage/node$id/node$id.pub")
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
			echo "${ids[$m]} = ${given_key[${ids[$m]}]}"
		done
		echo
		echo "[security]"
		echo "secret_key_file = /etc/omnifs/keys/node$id.key"
	} >"$stage/node$id/omnifs.conf"
	check_config "$stage/node$id/omnifs.conf" "node $id"
done
stage_commit
if $public_only; then
	echo "omnifs-bootstrap: wrote ${#ids[@]} node configs under $out (public keys only: no secret key here)"
	for n in "${!ids[@]}"; do
		id=${ids[$n]}
		echo "  node $id (${addrs[$n]}): install -D -m 0644 node$id/omnifs.conf /etc/omnifs/omnifs.conf"
		echo "          grep -qxF 'public-key = ${given_key[$id]}' /etc/omnifs/keys/node$id.key"
	done
	echo "  (the grep checks that the keypair made on machine N is the one given here)"
	echo "then on each: mkdir -p $mountpoint && systemctl enable --now omnifsd@omnifs"
	exit 0
fi
echo "omnifs-bootstrap: wrote ${#ids[@]} node configs and keypairs under $out"
for n in "${!ids[@]}"; do
	id=${ids[$n]}
	echo "  node $id (${addrs[$n]}): install -D -m 0644 node$id/omnifs.conf /etc/omnifs/omnifs.conf"
	echo "          install -D -m 0600 node$id/node$id.key /etc/omnifs/keys/node$id.key"
done
echo "then on each: mkdir -p $mountpoint && systemctl enable --now omnifsd@omnifs"
echo "SECRET KEYS: every node's secret key was made on this machine, in node<ID>/node<ID>.key"
echo "  under $out; whoever holds one can pose as that node. Move each to its own machine:"
echo "  copy node<ID>/ only there, and once installed delete the secret keys from $out"
echo "  (rm -r $out) and node<ID>/ on the other machines. To make no secret key here,"
echo "  run omnifs-keygen on each machine and give its public key with -k ID=PUBKEY."
