#!/usr/bin/env bash
# The README's three-machine walkthrough, with three folders standing in for
# the three machines' roots: omnifs-bootstrap on "machine 1", its folders
# copied out, the install lines it prints run on each machine, the mountpoint
# made, the unit started (ExecStart as written, under a notify socket). Every
# node says READY=1 mounted, `omnifsctl status` shows a leader and a quorum,
# and a file written on one machine is read on the others. Then the README's
# addition of a fourth machine: `omnifs-bootstrap --add` on machine 1 writes
# a config omnifsd accepts (join = true, the members' addresses and keys, the
# new node's), a key file 0600 and the commands; run as printed, the new node
# joins, says READY=1 mounted and reads and writes the tree. A second --add
# lists node 4 (taken from the running node); a member's id, a bad spec and
# an existing folder are refused; with the node stopped, --add falls back on
# its config's [peers]. Before all that, a new cluster with a bad name, one
# address or one id given twice, or a config omnifsd refuses (port 99999) is
# refused with a clear message, no OUTDIR and no key file left anywhere; the
# walkthrough's run warns that the node folders hold secret keys to move and
# delete. Last, the public-keys mode: each of three more machines makes its
# own keypair with omnifs-keygen, bootstrap gets only the public keys (-k),
# writes no secret key anywhere (checked by grepping for each one) and
# configs omnifsd accepts; the three nodes started from them form a cluster
# and replicate a file. Bad public keys (not Z85, too short, a group beyond
# 32 bits, one key for two nodes, a node without a key) are refused with a
# clear message and nothing left behind; --add -k writes a config only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/unit.sh"

BOOTSTRAP="$(cd "$(dirname "$0")/../.." && pwd)/tools/omnifs-bootstrap.sh"
export PATH="$OMNIFS_BUILD/tools:$PATH" # omnifs-keygen, as when installed

# machine N's root: where its /etc/omnifs, /var/lib/omnifs and /srv/omnifs are.
root() { echo "$T/m$1"; }
# on_machine N: stdin with machine N's absolute paths moved under its root.
on_machine() {
	sed -e "s|/etc/omnifs/|$(root "$1")/etc/omnifs/|g" -e "s|/var/lib/omnifs|$(root "$1")/var/lib/omnifs|g" \
		-e "s|/srv/omnifs|$(root "$1")/srv/omnifs|g"
}

# refused_new EXPECT ARGS...: omnifs-bootstrap ARGS (OUTDIR $T/new/out) fails
# saying EXPECT and leaves nothing in $T/new and no new key file anywhere.
mkdir -p "$T/new"
refused_new() {
	local expect=$1 rc=0 keys
	shift
	keys=$(find "$T" -name '*.key')
	(cd "$T/new" && PATH="$OMNIFS_BUILD/fs:$PATH" "$BOOTSTRAP" "$@") >"$T/new.out" 2>&1 || rc=$?
	[ "$rc" != 0 ] || { cat "$T/new.out"; fail "bootstrap $* succeeded"; }
	grep -qF -- "$expect" "$T/new.out" || { cat "$T/new.out"; fail "bootstrap $*: no '$expect'"; }
	[ -z "$(ls -A "$T/new")" ] || { ls -laR "$T/new"; fail "bootstrap $* left files behind"; }
	[ "$(find "$T" -name '*.key')" = "$keys" ] || fail "bootstrap $* left a key: $(find "$T" -name '*.key')"
}
refused_new "'bad name': a cluster name is 1 to 63" -c 'bad name' -o out 1=127.0.0.1:7100 2=127.0.0.1:7101
refused_new "127.0.0.1:7101 is given twice" -c ok -o out 1=127.0.0.1:7100 2=127.0.0.1:7101 3=127.0.0.1:7101
refused_new "id 2 is given twice" -c ok -o out 1=127.0.0.1:7100 2=127.0.0.1:7101 2=127.0.0.1:7102
refused_new "expected host:port" -c ok -o out 1=127.0.0.1:7100 2=127.0.0.1:99999
refused_new ". exists: choose a new folder" -c ok -o . 1=127.0.0.1:7100 2=127.0.0.1:7101
log "bootstrap refused a bad cluster name, a duplicate address and id, a bad port: no folder, no key left"

# Public keys made on three more machines (5 to 7: 4 is the --add below).
declare -A PUB=() SECRET=()
for n in 1 2 3; do
	r=$(root $((n + 4)))
	mkdir -p "$r/etc/omnifs/keys"
	PUB[$n]=$(omnifs-keygen -d "$r/etc/omnifs/keys" "node$n" 2>/dev/null)
	SECRET[$n]=$(sed -n 's/^secret-key = //p' "$r/etc/omnifs/keys/node$n.key")
	[ ${#SECRET[$n]} = 40 ] || fail "omnifs-keygen wrote no secret key for node $n"
done
specs=("1=127.0.0.1:7100" "2=127.0.0.1:7101" "3=127.0.0.1:7102")
refused_new "node 2's public key 'abc' is not a CURVE public key" -c ok -o out \
	-k 1="${PUB[1]}" -k 2=abc -k 3="${PUB[3]}" "${specs[@]}"
refused_new "node 2's public key '${PUB[2]:1}' is not a CURVE public key" -c ok -o out \
	-k 1="${PUB[1]}" -k 2="${PUB[2]:1}" -k 3="${PUB[3]}" "${specs[@]}"
refused_new "node 3's public key '${PUB[3]:0:39}_' is not a CURVE public key" -c ok -o out \
	-k 1="${PUB[1]}" -k 2="${PUB[2]}" -k 3="${PUB[3]:0:39}_" "${specs[@]}"
# "%nSc1" is 2^32: 40 characters of the alphabet that are no key
refused_new "node 1's public key '%nSc1${PUB[1]:5}' is not a CURVE public key" -c ok -o out \
	-k 1="%nSc1${PUB[1]:5}" -k 2="${PUB[2]}" -k 3="${PUB[3]}" "${specs[@]}"
refused_new "nodes 1 and 3 are given the same public key" -c ok -o out \
	-k 1="${PUB[1]}" -k 2="${PUB[2]}" -k 3="${PUB[1]}" "${specs[@]}"
refused_new "no public key for node 3: give -k ID=PUBKEY for every node" -c ok -o out \
	-k 1="${PUB[1]}" --public-key 2="${PUB[2]}" "${specs[@]}"
refused_new "-k gives a public key for node 4, which is not one of the nodes" -c ok -o out \
	-k 1="${PUB[1]}" -k 2="${PUB[2]}" -k 3="${PUB[3]}" -k 4="%nSc0${PUB[1]:5}" "${specs[@]}"
log "bootstrap refused bad public keys: no folder, no key left"

read -r -a PORTS <<<"$(free_ports 3)"
# On machine 1.
(cd "$T" && "$BOOTSTRAP" -c walk -o walk 1=127.0.0.1:"${PORTS[0]}" 2=127.0.0.1:"${PORTS[1]}" \
	3=127.0.0.1:"${PORTS[2]}") >"$T/bootstrap.out" 2>&1 || { cat "$T/bootstrap.out"; fail "bootstrap failed"; }
cat "$T/bootstrap.out"
grep -q "^SECRET KEYS: every node's secret key was made on this machine" "$T/bootstrap.out" ||
	fail "bootstrap did not warn that it wrote secret keys"
grep -qF "delete the secret keys from walk" "$T/bootstrap.out" || fail "bootstrap did not say to delete the secret keys"
[ "$(stat -c %a "$T/walk")" = 700 ] || fail "the folder holding the secret keys is not 0700"
[ -z "$(find "$T" -maxdepth 1 -name '.walk.*')" ] || fail "bootstrap left its temporary folder"

for n in 1 2 3; do
	r=$(root "$n")
	# "copy walk/nodeN/ to machine N" (scp -r walk/node2 10.0.0.2:)
	mkdir -p "$r/root"
	cp -a "$T/walk/node$n" "$r/root/"
	# the two install lines printed for node N, run in the copied folder's parent
	grep -o "install -D -m [0-7]* node$n/.*" "$T/bootstrap.out" >"$T/install$n.sh"
	[ "$(wc -l <"$T/install$n.sh")" = 2 ] || fail "bootstrap printed no install lines for node $n"
	(cd "$r/root" && on_machine "$n" <"$T/install$n.sh" | sh -e) || fail "install lines for node $n"
	# What the printed "mkdir -p MOUNTPOINT" and the unit's StateDirectory= (mode 0700) do.
	grep -o "mkdir -p [^ ]*" "$T/bootstrap.out" | on_machine "$n" | sh -e
	mkdir -m 0700 -p "$r/var/lib/omnifs"
	# The config names machine paths: here they are under the machine's root.
	on_machine "$n" <"$r/etc/omnifs/omnifs.conf" >"$T/conf" && mv "$T/conf" "$r/etc/omnifs/omnifs.conf"
	[ "$(stat -c %a "$r/etc/omnifs/keys/node$n.key")" = 600 ] || fail "node $n's key is not 0600"
done

# systemctl enable --now omnifsd@omnifs, on each machine.
for n in 1 2 3; do
	r=$(root "$n")
	mapfile -t start < <(unit_cmd ExecStart omnifs "$r/etc/omnifs")
	[ "${start[0]:-}" = "$OMNIFSD" ] || fail "no ExecStart for machine $n"
	notify_listen $((10 + n)) "$T/notify$n.sock" "$T/notify$n.log" "$r/srv/omnifs"
	mkdir -p "$T/node$n" # lib.sh shows $T/node*/log on failure
	start_unit "$n" "$T/notify$n.sock" "${start[@]}" >>"$T/node$n/log" 2>&1
done
for n in 1 2 3; do
	wait_until 60 grep -q ' READY=1 mounted=True' "$T/notify$n.log"
done
log "READY=1 and mounted on the three machines"

# systemctl status shows the STATUS= line; omnifsctl status the details.
for n in 1 2 3; do
	grep -o 'STATUS=.*' "$T/notify$n.log" | tail -1
	st() { "$OMNIFSCTL" -c "$(root "$n")/etc/omnifs/omnifs.conf" status --json; }
	quorum() { st | python3 -c 'import json, sys; s = json.load(sys.stdin); sys.exit(not (s["quorum"] and s["leader"]))'; }
	wait_until 20 quorum
done
"$OMNIFSCTL" -c "$(root 2)/etc/omnifs/omnifs.conf" status

echo "shared" >"$(root 1)/srv/omnifs/hello"
for n in 2 3; do
	wait_until 10 grep -qx shared "$(root "$n")/srv/omnifs/hello"
done
log "a file written on machine 1 is read on machines 2 and 3"

# Adding machine 4, as the README says: omnifs-bootstrap --add on machine 1
# (omnifsd and omnifsctl on PATH, as /usr/sbin is for root: it checks the
# configs and asks the running node for the members), node4/ copied to
# machine 4, its printed install and start lines run there, the printed
# `omnifsctl member add` run on machine 1.
export PATH="$OMNIFS_BUILD/fs:$PATH"
read -r P4 P5 <<<"$(free_ports 2)"
conf1="$(root 1)/etc/omnifs/omnifs.conf"
bootstrap_m1() { (cd "$(root 1)/root" && "$BOOTSTRAP" "$@" "$conf1"); }
bootstrap_m1 --add 4=127.0.0.1:"$P4" -o add4 >"$T/add.out" 2>&1 || { cat "$T/add.out"; fail "bootstrap --add failed"; }
cat "$T/add.out"
grep -q "members 1,2,3, from node 1's member list, configuration" "$T/add.out" ||
	fail "bootstrap --add did not take the members from the running node 1"
a="$(root 1)/root/add4/node4"
"$OMNIFSD" -c "$a/omnifs.conf" --check-config | grep -F "node 4 of cluster walk, 4 members" ||
	fail "omnifsd does not accept node 4's config as a 4-member config of cluster walk"
grep -qx "join = true" "$a/omnifs.conf" || fail "node 4's config does not set join = true"
[ "$(stat -c %a "$a/node4.key")" = 600 ] || fail "node 4's key is not 0600"
for n in 1 2 3; do
	grep -qxF "$n = 127.0.0.1:${PORTS[$((n - 1))]}" "$a/omnifs.conf" || fail "node 4's [peers] lacks node $n"
	grep -qxF "$n = $(cat "$T/walk/node$n/node$n.pub")" "$a/omnifs.conf" || fail "node 4's [peer_keys] lacks node $n's key"
done
grep -qxF "4 = 127.0.0.1:$P4" "$a/omnifs.conf" || fail "node 4's [peers] lacks itself"
[ "$(grep -c '^4 = ' "$a/omnifs.conf")" = 1 ] || fail "node 4's config lists its own public key"
grep -qxF "secret_key_file = /etc/omnifs/keys/node4.key" "$a/omnifs.conf" || fail "node 4's key path"
grep -qxF "  omnifsctl member add 4 127.0.0.1:$P4 '$(cat "$a/node4.pub")'" "$T/add.out" ||
	fail "bootstrap --add printed no member add line with node 4's public key"
grep -q "mkdir -p /srv/omnifs && systemctl enable --now --no-block omnifsd@omnifs" "$T/add.out" ||
	fail "bootstrap --add printed no start line"

r=$(root 4)
mkdir -p "$r/root"
cp -a "$a" "$r/root/"
grep -o "install -D -m [0-7]* node4/.*" "$T/add.out" >"$T/install4.sh"
[ "$(wc -l <"$T/install4.sh")" = 2 ] || fail "bootstrap --add printed no install lines"
(cd "$r/root" && on_machine 4 <"$T/install4.sh" | sh -e) || fail "install lines for node 4"
grep -o "mkdir -p [^ ]*" "$T/add.out" | on_machine 4 | sh -e
mkdir -m 0700 -p "$r/var/lib/omnifs"
on_machine 4 <"$r/etc/omnifs/omnifs.conf" >"$T/conf" && mv "$T/conf" "$r/etc/omnifs/omnifs.conf"
[ "$(stat -c %a "$r/etc/omnifs/keys/node4.key")" = 600 ] || fail "node 4's installed key is not 0600"
mapfile -t start < <(unit_cmd ExecStart omnifs "$r/etc/omnifs")
notify_listen 14 "$T/notify4.sock" "$T/notify4.log" "$r/srv/omnifs"
mkdir -p "$T/node4"
start_unit 4 "$T/notify4.sock" "${start[@]}" >>"$T/node4/log" 2>&1
grep -o "omnifsctl member add .*" "$T/add.out" | sed "s|^omnifsctl |$OMNIFSCTL -c $conf1 |" |
	sh -e || fail "the printed member add failed on machine 1"
wait_until 60 grep -q ' READY=1 mounted=True' "$T/notify4.log"
grep -qx shared "$r/srv/omnifs/hello" || fail "machine 4 does not read the file written before it joined"
echo "from 4" >"$r/srv/omnifs/hello4"
wait_until 10 grep -qx "from 4" "$(root 2)/srv/omnifs/hello4"
"$OMNIFSCTL" -c "$r/etc/omnifs/omnifs.conf" member list | tee "$T/members4"
grep -q "^n4 127.0.0.1:$P4 .* (this node)$" "$T/members4" || fail "node 4's member list"
log "machine 4 joined: READY=1 mounted, reads the tree, its writes reach machine 2"

# A second --add names node 4 too: the members come from the running node,
# not from machine 1's [peers], which still lists 1 to 3.
bootstrap_m1 --add 5=127.0.0.1:"$P5" -o add5 >"$T/add5.out" 2>&1 || { cat "$T/add5.out"; fail "bootstrap --add 5 failed"; }
grep -q "members 1,2,3,4, from node 1's member list" "$T/add5.out" || { cat "$T/add5.out"; fail "bootstrap --add 5 missed node 4"; }
grep -qxF "4 = $(cat "$a/node4.pub")" "$(root 1)/root/add5/node5/omnifs.conf" || fail "node 5's [peer_keys] lacks node 4's key"
"$OMNIFSD" -c "$(root 1)/root/add5/node5/omnifs.conf" --check-config | grep -F "5 members" ||
	fail "node 5's config is not a 5-member config"

# --add with the public key made on the new machine: a config only.
bootstrap_m1 --add 5=127.0.0.1:"$P5" -k 5="${PUB[1]}" -o add5k >"$T/add5k.out" 2>&1 ||
	{ cat "$T/add5k.out"; fail "bootstrap --add 5 -k failed"; }
[ "$(find "$(root 1)/root/add5k" -type f)" = "$(root 1)/root/add5k/node5/omnifs.conf" ] ||
	fail "bootstrap --add -k wrote more than the config"
grep -qxF "  omnifsctl member add 5 127.0.0.1:$P5 '${PUB[1]}'" "$T/add5k.out" ||
	{ cat "$T/add5k.out"; fail "bootstrap --add -k printed no member add line with the given key"; }
! grep -q "SECRET" "$T/add5k.out" || fail "bootstrap --add -k warns of a secret key it did not make"

# refused: an id already a member, a bad spec, an existing folder
refused() {
	local expect=$1
	shift
	if bootstrap_m1 "$@" >"$T/refused.out" 2>&1; then fail "bootstrap $* succeeded"; fi
	grep -qF "$expect" "$T/refused.out" || { cat "$T/refused.out"; fail "bootstrap $*: no '$expect'"; }
}
refused "node 4 is already a member" --add 4=127.0.0.1:1 -o add4b
refused "expected ID=HOST:PORT" --add 6 -o add6
refused "add5 exists" --add 6=127.0.0.1:1 -o add5
for d in add4b add6; do [ ! -e "$(root 1)/root/$d" ] || fail "a refused bootstrap --add wrote $d"; done
log "bootstrap --add refused a member's id, a bad spec and an existing folder"

for n in 1 2 3 4; do
	kill -TERM "${PIDS[$n]}"
	wait "${PIDS[$n]}" || fail "machine $n's omnifsd exited $? on SIGTERM"
	PIDS[$n]=""
done
# With node 1 stopped, the members come from its config's [peers].
bootstrap_m1 --add 6=127.0.0.1:1 -o add6 >"$T/add6.out" 2>&1 || { cat "$T/add6.out"; fail "bootstrap --add 6 failed"; }
grep -q "members 1,2,3, from .*'s \[peers\] (node 1 did not answer omnifsctl)" "$T/add6.out" ||
	{ cat "$T/add6.out"; fail "bootstrap --add with node 1 stopped did not use [peers]"; }

# Public keys only: machines 5 to 7 made their keypairs above; on machine 5,
# bootstrap with their public keys. No secret key in its output or its
# folder, configs only, and each names the key file already on its machine.
read -r -a PORTS <<<"$(free_ports 3)"
(cd "$(root 5)" && "$BOOTSTRAP" -c pubonly -o pk -k 1="${PUB[1]}" --public-key 2="${PUB[2]}" \
	--public-key="3=${PUB[3]}" 1=127.0.0.1:"${PORTS[0]}" 2=127.0.0.1:"${PORTS[1]}" 3=127.0.0.1:"${PORTS[2]}") \
	>"$T/pk.out" 2>&1 || { cat "$T/pk.out"; fail "bootstrap with public keys failed"; }
cat "$T/pk.out"
pk="$(root 5)/pk"
for n in 1 2 3; do
	! grep -rqF "${SECRET[$n]}" "$pk" "$T/pk.out" || fail "node $n's secret key is in bootstrap's output"
	"$OMNIFSD" -c "$pk/node$n/omnifs.conf" --check-config | grep -F "node $n of cluster pubonly, 3 members" ||
		fail "omnifsd does not accept node $n's config"
	grep -qxF "secret_key_file = /etc/omnifs/keys/node$n.key" "$pk/node$n/omnifs.conf" || fail "node $n's key path"
	for m in 1 2 3; do
		[ "$m" = "$n" ] && continue
		grep -qxF "$m = ${PUB[$m]}" "$pk/node$n/omnifs.conf" || fail "node $n's [peer_keys] lacks node $m's key"
	done
done
[ "$(find "$pk" -type f | sort)" = "$(printf '%s\n' "$pk"/node{1,2,3}/omnifs.conf)" ] ||
	fail "bootstrap with public keys wrote more than the configs: $(find "$pk" -type f)"
! grep -q "SECRET" "$T/pk.out" || fail "bootstrap with public keys warns of secret keys it did not make"
log "public keys only: configs omnifsd accepts, no secret key written"

for n in 1 2 3; do
	m=$((n + 4)) r=$(root $((n + 4)))
	mkdir -p "$r/root"
	cp -a "$pk/node$n" "$r/root/"
	grep -oE "(install -D -m [0-7]* node$n/|grep -qxF .*/node$n.key).*" "$T/pk.out" >"$T/install$m.sh"
	[ "$(wc -l <"$T/install$m.sh")" = 2 ] || fail "bootstrap printed no install and check lines for node $n"
	(cd "$r/root" && on_machine "$m" <"$T/install$m.sh" | sh -e) || fail "install and check lines for node $n"
	grep -o "mkdir -p [^ ]*" "$T/pk.out" | on_machine "$m" | sh -e
	mkdir -m 0700 -p "$r/var/lib/omnifs"
	on_machine "$m" <"$r/etc/omnifs/omnifs.conf" >"$T/conf" && mv "$T/conf" "$r/etc/omnifs/omnifs.conf"
	mapfile -t start < <(unit_cmd ExecStart omnifs "$r/etc/omnifs")
	notify_listen $((10 + m)) "$T/notify$m.sock" "$T/notify$m.log" "$r/srv/omnifs"
	mkdir -p "$T/node$m"
	start_unit "$m" "$T/notify$m.sock" "${start[@]}" >>"$T/node$m/log" 2>&1
done
for m in 5 6 7; do
	wait_until 60 grep -q ' READY=1 mounted=True' "$T/notify$m.log"
done
echo "keys made per machine" >"$(root 5)/srv/omnifs/pk"
for m in 6 7; do
	wait_until 20 grep -qx "keys made per machine" "$(root "$m")/srv/omnifs/pk"
done
log "public keys only: the three nodes formed a cluster and replicate a file"
log "PASS"
