#!/usr/bin/env bash
# Shell workflows on a config tree, spread over the three mounts, then the
# trees on all three compare equal (content, modes, owners, times, links):
# cp -a of a tree with modes and symlinks, mkdir -p, mv, sed -i, echo >>,
# tar x and c, rm -rf, ln -s, chmod/chown, touch -d, a 2,000-file directory,
# names with spaces and UTF-8.
. "$(dirname "$0")/lib.sh"

fs_cluster 3
# Each step on another node first waits for that node to have applied what
# the leader decided (a read trails the leader by the replication lag).
synced() { for i in 1 2 3; do ctl "$i" barrier; done; }
src="$T/src"
mkdir -p "$src/etc/app/conf.d" "$src/etc/other"
for i in 1 2 3 4 5; do printf 'key%d = value %d\n' "$i" "$i" >"$src/etc/app/conf.d/$i.conf"; done
printf '#!/bin/sh\necho run\n' >"$src/etc/app/run.sh"
chmod 0755 "$src/etc/app/run.sh"
chmod 0600 "$src/etc/app/conf.d/1.conf"
chown 1000:1000 "$src/etc/app/conf.d/2.conf"
ln -s conf.d/3.conf "$src/etc/app/current"
echo "spaces" >"$src/etc/other/name with spaces.txt"
echo "utf8" >"$src/etc/other/größe-日本.conf"

cp -a "$src/etc" "$M1/"
log "cp -a on A"
synced
mkdir -p "$M2/etc/new/deep/er"
mv "$M2/etc/other" "$M2/etc/new/other"
synced
mv "$M3/etc/app/conf.d/5.conf" "$M3/etc/app/conf.d/five.conf"
sed -i 's/value 4/changed 4/' "$M1/etc/app/conf.d/4.conf"
echo "appended = 1" >>"$M2/etc/app/conf.d/3.conf"
ln -s ../app/run.sh "$M3/etc/new/run-link"
chmod 0700 "$M1/etc/new"
chown 4242:4343 "$M2/etc/app/conf.d/4.conf"
touch -d "2021-06-07 08:09:10" "$M3/etc/app/run.sh"
log "mkdir -p, mv, sed -i, echo >>, ln -s, chmod, chown, touch -d"
tar -C "$src" -cf "$T/tree.tar" etc
mkdir "$M3/restored"
tar -C "$M3/restored" -xpf "$T/tree.tar"
# The extracted tree equals the source (tar -p keeps owners, modes, times).
diff <(tree_listing "$src") <(tree_listing "$M3/restored") >&2 ||
	fail "tar x -p did not reproduce the source tree"
synced
tar -C "$M2" -cf "$T/from-mount.tar" etc
# Listed to a file: `tar -t | grep -q` fails under pipefail when grep exits at
# the first match and tar, still writing, dies of SIGPIPE.
tar -tf "$T/from-mount.tar" >"$T/from-mount.list"
grep -qx "etc/app/conf.d/five.conf" "$T/from-mount.list" || fail "tar c from the mount"
log "tar x and c"
mkdir "$M1/many"
for i in $(seq 1 2000); do echo "$i" >"$M1/many/f$i"; done
log "2,000 files written on A"
rm -rf "$M2/restored/etc/other"
log "rm -rf on B"

converged() { same_trees "$M1" "$M2" "$M3"; }
wait_until 30 converged || true
converged || {
	diff <(tree_listing "$M1") <(tree_listing "$M2") | head -20
	fail "the trees differ"
}
[ "$(ls "$M3/many" | wc -l)" = 2000 ] || fail "C does not list 2,000 files"
[ "$(cat "$M3/etc/new/other/größe-日本.conf")" = utf8 ] || fail "UTF-8 name on C"
[ "$(cat "$M3/etc/new/other/name with spaces.txt")" = spaces ] || fail "spaces on C"
grep -q "changed 4" "$M2/etc/app/conf.d/4.conf" || fail "sed -i on B"
[ "$(stat -c %a "$M3/etc/app/run.sh")" = 755 ] || fail "mode on C"
log "all three trees equal ($(tree_listing "$M1" | wc -l) lines of listing)"
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
