#!/usr/bin/env bash
# Snapshots and restore: a snapshot saved on a follower while a client keeps
# writing verifies offline (header index and digest = what the daemon
# said; progress only on a terminal); a new 3-node cluster seeded from it
# (omnifsd --restore-snapshot on the same machines' keys and ids, a new
# cluster name) starts at the snapshot's index with the snapshot's digest,
# holds the files, takes writes; a node of the old cluster pointed at the new one is refused
# (another cluster's frames) and never joins it. A damaged file is refused
# by verify and by restore.
. "$(dirname "$0")/lib.sh"

fs_cluster 3
mkdir -p "$M1/etc/app"
for i in $(seq 1 30); do echo "setting $i" >"$M1/etc/app/conf$i"; done
ln -s conf1 "$M1/etc/app/current"
ctl 2 barrier >/dev/null

# A write load on node 1 while node 2 saves.
"$OMNIFS_BUILD/tools/omnifs-kvload" -s "$T/node1/ctl.sock" -c 4 -d 8 -b 200 -p load/ \
	>"$T/load.out" 2>&1 &
LOAD=$!
loaded() { [ "$(ctl 1 kv list load/ | wc -l)" -gt 50 ]; }
wait_until 20 loaded
ctl 2 snapshot save "$T/snap" >"$T/save.out"
cat "$T/save.out"
wait "$LOAD" || fail "the write load failed: $(cat "$T/load.out")"
field() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
idx=$(field index "$T/save.out")
digest=$(field digest "$T/save.out")
[ -n "$idx" ] && [ -n "$digest" ] || fail "no index or digest in the save's answer"
[ ! -e "$T/snap.part" ] || fail "the temporary file is left"

"$OMNIFSCTL" snapshot verify "$T/snap" >"$T/verify.out" 2>"$T/verify.err" ||
	fail "verify refused the snapshot"
cat "$T/verify.out"
# Progress goes to a terminal only: none into a file, "N of M MiB" on a pty.
[ ! -s "$T/verify.err" ] || fail "verify wrote progress into a file: $(head -c 200 "$T/verify.err")"
script -qec "'$OMNIFSCTL' snapshot verify '$T/snap' >/dev/null" /dev/null >"$T/verify.tty"
grep -q "snapshot: [0-9.]* of [0-9.]* MiB checked (100%)" "$T/verify.tty" ||
	fail "verify on a terminal showed no progress: $(head -c 200 "$T/verify.tty")"
[ "$(field index "$T/verify.out")" = "$idx" ] || fail "verify: another index"
[ "$(field digest "$T/verify.out")" = "$digest" ] || fail "verify: another digest"
[ "$(field cluster "$T/verify.out")" = "it-$$" ] || fail "verify: another cluster"

# A damaged copy is refused, by verify and by restore, each saying why.
cp "$T/snap" "$T/bad"
printf 'X' | dd of="$T/bad" bs=1 seek=$(($(stat -c %s "$T/snap") / 2)) conv=notrunc 2>/dev/null
if "$OMNIFSCTL" snapshot verify "$T/bad" 2>"$T/bad.err"; then fail "verify took a damaged file"; fi
grep -q "damaged\|malformed" "$T/bad.err" || fail "verify: $(cat "$T/bad.err")"
head -c 1000 "$T/snap" >"$T/short"
if "$OMNIFSCTL" snapshot verify "$T/short" 2>"$T/short.err"; then fail "verify took a cut file"; fi
grep -q truncated "$T/short.err" || fail "verify: $(cat "$T/short.err")"

# What the hourly timer runs: save, check, keep the newest two.
for n in 1 2 3; do
	OMNIFSCTL="$OMNIFSCTL" "$(dirname "$0")/../../tools/omnifs-snapshot.sh" \
		-c "$T/node3/omnifs.conf" -d "$T/snaps" -k 2 >"$T/timer$n.out" ||
		fail "omnifs-snapshot failed"
	grep -q '^ok$' "$T/timer$n.out" || fail "omnifs-snapshot did not check the file"
done
[ "$(ls "$T/snaps" | wc -l)" = 2 ] || fail "omnifs-snapshot kept $(ls "$T/snaps")"

# The new cluster: nodes 4, 5, 6 of this harness are the machines of nodes
# 1, 2, 3 again (their ids and keys), on new ports and data dirs, under a
# new cluster name.
read -r -a NEWPORTS <<<"$(free_ports 3)"
new_config() { # new_config I (node id I of the new cluster, harness dir I+3)
	local i=$1 d=$(($1 + 3)) j
	mkdir -p "$T/node$d" "$T/mnt/node$d"
	cp "$T/node$i/node$i.key" "$T/node$i/node$i.pub" "$T/node$d/"
	{
		echo "[node]"
		echo "id = $i"
		echo "cluster = restored-$$"
		echo "data_dir = $T/node$d/data"
		echo "mountpoint = $T/mnt/node$d"
		echo "control_socket = $T/node$d/ctl.sock"
		echo "[peers]"
		for j in 1 2 3; do echo "$j = 127.0.0.1:${NEWPORTS[$((j - 1))]}"; done
		echo "[timing]"
		echo "tick_ms = 10"
		echo "election_timeout_ms = 100"
		echo "resend_timeout_ms = 200"
		echo "commit_timeout_ms = 5000"
		echo "[security]"
		echo "secret_key_file = $T/node$d/node$i.key"
		echo "[peer_keys]"
		for j in 1 2 3; do
			[ "$j" = "$i" ] || echo "$j = $(node_pub "$j")"
		done
	} >"$T/node$d/omnifs.conf"
}
for i in 1 2 3; do new_config "$i"; done

# Restoring under the old cluster's name is refused.
sed 's/^cluster = .*/cluster = it-'$$'/' "$T/node4/omnifs.conf" >"$T/same-name.conf"
if "$OMNIFSD" -c "$T/same-name.conf" --restore-snapshot "$T/snap" 2>"$T/same.err"; then
	fail "a restore under the old cluster's name went through"
fi
grep -q "needs a new name" "$T/same.err" || fail "same name: $(cat "$T/same.err")"
if "$OMNIFSD" -c "$T/node4/omnifs.conf" --restore-snapshot "$T/bad" 2>"$T/bad-restore.err"; then
	fail "a damaged snapshot was restored"
fi
[ ! -e "$T/node4/data/membership" ] || fail "a refused restore left a membership file"

# Node 4 restores on a terminal (progress shown), 5 and 6 into files (none).
script -qec "'$OMNIFSD' -c '$T/node4/omnifs.conf' --restore-snapshot '$T/snap' >'$T/restore4.out'" \
	/dev/null >"$T/restore4.tty" || fail "restore on node 4 failed: $(cat "$T/restore4.tty")"
grep -q "restore: [0-9.]* of [0-9.]* MiB checked (100%)" "$T/restore4.tty" &&
	grep -q "restore: [0-9.]* of [0-9.]* MiB restored (100%)" "$T/restore4.tty" ||
	fail "restore on a terminal showed no progress: $(head -c 300 "$T/restore4.tty")"
for d in 5 6; do
	"$OMNIFSD" -c "$T/node$d/omnifs.conf" --restore-snapshot "$T/snap" >"$T/restore$d.out" \
		2>"$T/restore$d.err" || fail "restore on node $d failed: $(cat "$T/restore$d.err")"
	! grep -q "MiB" "$T/restore$d.err" || fail "restore wrote progress into a file"
done
for d in 4 5 6; do cat "$T/restore$d.out"; done
for d in 4 5 6; do start_node "$d"; done
for d in 4 5 6; do
	wait_until 30 mountpoint -q "$T/mnt/node$d"
	wait_until 30 has_leader "$d"
done
# Before any write, every node holds the snapshot's state at its index.
for d in 4 5 6; do
	got=$(ctl "$d" digest)
	[ "$got" = "$idx $digest" ] || fail "node $d: digest '$got', the snapshot's '$idx $digest'"
done
log "the new cluster starts at @$idx with the snapshot's digest"
M4=$T/mnt/node4 M6=$T/mnt/node6
[ "$(cat "$M4/etc/app/conf17")" = "setting 17" ] || fail "a file is missing"
[ "$(readlink "$M6/etc/app/current")" = conf1 ] || fail "the symlink is missing"
[ "$(ctl 5 kv list load/ | wc -l)" -gt 0 ] || fail "the KV namespace is missing"
# It takes writes, from every node (the ids' sequences go on above the state's).
for d in 4 5 6; do
	echo "new $d" >"$T/mnt/node$d/etc/app/new$d"
	ctl "$d" kv put "after/$d" "v$d" >/dev/null
done
for d in 4 5 6; do wait_until 20 test -f "$M4/etc/app/new$d"; done
ctl 4 barrier >/dev/null
wait_until 20 digests_agree 4 5 6
wait_until 20 same_trees "$M4" "$T/mnt/node5" "$M6"

# Node 3 of the old cluster, pointed at the new cluster's addresses with its
# old data and name: its keys are the new members' keys, but its frames
# carry the old cluster's id and are refused, and it never joins.
stop_node 3
# A new node cannot open an old node's data.
sed "s#^data_dir = .*#data_dir = $T/node3/data#" "$T/node6/omnifs.conf" >"$T/cross.conf"
if "$OMNIFSD" -c "$T/cross.conf" --no-mount 2>"$T/cross.err"; then
	fail "a new node opened the old cluster's data"
fi
grep -q "belongs to cluster" "$T/cross.err" || fail "cross: $(cat "$T/cross.err")"
sed -i -E "s/^1 = 127.0.0.1:.*/1 = 127.0.0.1:${NEWPORTS[0]}/; s/^2 = 127.0.0.1:.*/2 = 127.0.0.1:${NEWPORTS[1]}/" \
	"$T/node3/omnifs.conf"
start_node 3
old_refused() { grep -q "another cluster's frame" "$T/node4/log" "$T/node5/log"; }
wait_until 30 old_refused
[ "$(status_field 3 quorum)" = False ] || fail "the old node found a quorum"
[ "$(ctl 4 member list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))')" = 3 ]
log "the old cluster's node is refused by the new cluster"
log "ok"
