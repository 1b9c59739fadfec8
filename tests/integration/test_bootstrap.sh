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
# walkthrough's run warns that the node folders hold secret keys.
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
# saying EXPECT and leaves nothing in $T/new.
mkdir -p "$T/new"
refused_new() {
	local expect=$1 rc=0
	shift
	(cd "$T/new" && PATH="$OMNIFS_BUILD/fs:$PATH" "$BOOTSTRAP" "$@") >"$T/new.out" 2>&1 || rc=$?
	[ "$rc" != 0 ] || { cat "$T/new.out"; fail "bootstrap $* succeeded"; }
	grep -qF "$expect" "$T/new.out" || { cat "$T/new.out"; fail "bootstrap $*: no '$expect'"; }
	[ -z "$(ls -A "$T/new")" ] || { ls -laR "$T/new"; fail "bootstrap $* left files behind"; }
	[ -z "$(find "$T" -name '*.key')" ] || fail "bootstrap $* left a key: $(find "$T" -name '*.key')"
}
refused_new "'bad name': a cluster name is 1 to 63" -c 'bad name' -o out 1=127.0.0.1:7100 2=127.0.0.1:7101
refused_new "127.0.0.1:7101 is given twice" -c ok -o out 1=127.0.0.1:7100 2=127.0.0.1:7101 3=127.0.0.1:7101
refused_new "id 2 is given twice" -c ok -o out 1=127.0.0.1:7100 2=127.0.0.1:7101 2=127.0.0.1:7102
refused_new "expected host:port" -c ok -o out 1=127.0.0.1:7100 2=127.0.0.1:99999
refused_new ". exists: choose a new folder" -c ok -o . 1=127.0.0.1:7100 2=127.0.0.1:7101
log "bootstrap refused a bad cluster name, a duplicate address and id, a bad port: no folder, no key left"

read -r -a PORTS <<<"$(free_ports 3)"
# On machine 1.
(cd "$T" && "$BOOTSTRAP" -c walk -o walk 1=127.0.0.1:"${PORTS[0]}" 2=127.0.0.1:"${PORTS[1]}" \
	3=127.0.0.1:"${PORTS[2]}") >"$T/bootstrap.out" 2>&1 || { cat "$T/bootstrap.out"; fail "bootstrap failed"; }
cat "$T/bootstrap.out"
grep -q "^SECRET KEYS: .*secret key" "$T/bootstrap.out" || fail "bootstrap did not warn that it wrote secret keys"
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
log "PASS"
