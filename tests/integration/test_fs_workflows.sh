#!/usr/bin/env bash
# Shell workflows on a config tree, spread over three mounts A, B and C,
# then the trees on every mount compare equal (content, modes, owners,
# times, links) and each mount shows what the others wrote:
# cp -a of a tree with modes and symlinks, mkdir -p, mv, sed -i, echo >>,
# an editor's save (write a temporary file, rename it over the old one),
# ln -s, chmod/chown, touch -d, tar x and c, rsync -a, rm -rf, a 2,000-file
# directory, names with spaces and UTF-8, flock held on one mount and
# refused on another.
#
# Two ways (meson tests fs_workflows and fs_workflows_learner):
#   default                      A, B, C are the mounts of voters n1, n2, n3;
#   OMNIFS_WORKFLOWS_LEARNER=1   3 voters and a learner n4 with a mount
#                                (member add --learner): A and C are the
#                                learner's mount, B a voter's, and the
#                                results are checked on all four mounts.
. "$(dirname "$0")/lib.sh"

fs_cluster 3
if [ "${OMNIFS_WORKFLOWS_LEARNER:-0}" = 1 ]; then
	t0=$SECONDS
	fs_learner_up 4 1 2 3
	log "learner n4 added, caught up and mounted in $((SECONDS - t0))s"
	A=4 B=1 C=4
	NODES="1 2 3 4"
else
	A=1 B=2 C=3
	NODES="1 2 3"
fi
MA=$T/mnt/node$A MB=$T/mnt/node$B MC=$T/mnt/node$C
MOUNTS=()
for i in $NODES; do MOUNTS+=("$T/mnt/node$i"); done
log "A is n$A, B n$B, C n$C"

# Each step on another node first waits for that node to have applied what
# the leader decided (a read trails the leader by the replication lag).
synced() { for i in $NODES; do ctl "$i" barrier; done; }
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

cp -a "$src/etc" "$MA/"
log "cp -a on A"
synced
mkdir -p "$MB/etc/new/deep/er"
mv "$MB/etc/other" "$MB/etc/new/other"
synced
mv "$MC/etc/app/conf.d/5.conf" "$MC/etc/app/conf.d/five.conf"
sed -i 's/value 4/changed 4/' "$MA/etc/app/conf.d/4.conf"
echo "appended = 1" >>"$MB/etc/app/conf.d/3.conf"
ln -s ../app/run.sh "$MC/etc/new/run-link"
chmod 0700 "$MA/etc/new"
chown 4242:4343 "$MB/etc/app/conf.d/4.conf"
touch -d "2021-06-07 08:09:10" "$MC/etc/app/run.sh"
log "mkdir -p, mv, sed -i, echo >>, ln -s, chmod, chown, touch -d"
# An editor's save: the new text in a temporary file beside the old one,
# then renamed over it (what vim's writebackup and most editors do).
printf 'key1 = saved by an editor\n' >"$MC/etc/app/conf.d/.1.conf.swp"
chmod 0600 "$MC/etc/app/conf.d/.1.conf.swp"
mv -f "$MC/etc/app/conf.d/.1.conf.swp" "$MC/etc/app/conf.d/1.conf"
log "editor's save (rename over) on C"
tar -C "$src" -cf "$T/tree.tar" etc
mkdir "$MC/restored"
tar -C "$MC/restored" -xpf "$T/tree.tar"
# The extracted tree equals the source (tar -p keeps owners, modes, times).
diff <(tree_listing "$src") <(tree_listing "$MC/restored") >&2 ||
	fail "tar x -p did not reproduce the source tree"
synced
tar -C "$MB" -cf "$T/from-mount.tar" etc
# Listed to a file: `tar -t | grep -q` fails under pipefail when grep exits at
# the first match and tar, still writing, dies of SIGPIPE.
tar -tf "$T/from-mount.tar" >"$T/from-mount.list"
grep -qx "etc/app/conf.d/five.conf" "$T/from-mount.list" || fail "tar c from the mount"
log "tar x and c"
# rsync -a into the mount, then again after a change: the second run sends
# the changed file only (its temporary file renamed over the old one).
mkdir "$MA/synced"
rsync -a "$src/etc/" "$MA/synced/"
echo "key2 = changed, then rsynced" >"$src/etc/app/conf.d/2.conf"
rsync -a --stats "$src/etc/" "$MA/synced/" >"$T/rsync.out"
grep -q '^Number of regular files transferred: 1$' "$T/rsync.out" ||
	fail "the second rsync did not send the one changed file: $(cat "$T/rsync.out")"
diff <(tree_listing "$src/etc") <(tree_listing "$MA/synced") >&2 ||
	fail "rsync -a did not reproduce the source tree"
log "rsync -a on A"
mkdir "$MA/many"
for i in $(seq 1 2000); do echo "$i" >"$MA/many/f$i"; done
log "2,000 files written on A"
rm -rf "$MB/restored/etc/other"
log "rm -rf on B"

# flock: held through A, refused through B, then B takes it once A let go.
echo lock >"$MA/app.lock"
flock "$MA/app.lock" -c "touch $T/held; while [ -d $T ] && [ ! -e $T/release ]; do sleep 0.05; done" &
holder=$!
wait_until 20 test -e "$T/held"
ctl "$B" barrier
if flock -n "$MB/app.lock" true; then fail "B took a flock held through A"; fi
touch "$T/release"
wait "$holder"
wait_until 20 flock -n "$MB/app.lock" true
log "flock held on A is refused on B, then taken on B once released"

converged() { same_trees "${MOUNTS[@]}"; }
wait_until 30 converged || true
converged || {
	diff <(tree_listing "${MOUNTS[0]}") <(tree_listing "${MOUNTS[-1]}") | head -20
	fail "the trees differ"
}
for m in "${MOUNTS[@]}"; do
	[ "$(ls "$m/many" | wc -l)" = 2000 ] || fail "$m does not list 2,000 files"
	[ "$(cat "$m/etc/new/other/größe-日本.conf")" = utf8 ] || fail "UTF-8 name on $m"
	[ "$(cat "$m/etc/new/other/name with spaces.txt")" = spaces ] || fail "spaces on $m"
	grep -q "changed 4" "$m/etc/app/conf.d/4.conf" || fail "sed -i on $m"
	grep -q "saved by an editor" "$m/etc/app/conf.d/1.conf" || fail "editor's save on $m"
	[ "$(stat -c %a "$m/etc/app/conf.d/1.conf")" = 600 ] || fail "saved file's mode on $m"
	[ "$(stat -c %a "$m/etc/app/run.sh")" = 755 ] || fail "mode on $m"
	grep -qx "key2 = changed, then rsynced" "$m/synced/app/conf.d/2.conf" || fail "rsync on $m"
done
log "all ${#MOUNTS[@]} trees equal ($(tree_listing "$MA" | wc -l) lines of listing)"
for i in $NODES; do stop_node "$i"; done
log "PASS"
