#!/usr/bin/env bash
# File history on a real 3-node cluster with mounts. Edits made on node 1
# are listed, compared and restored through node 2's mount and omnifsctl:
#  - /.omnifs/history/app.conf/ holds the previous versions, named by log
#    index, each with the content it had (cat, diff), on every node;
#  - `omnifsctl history` lists them (text and --json, with node and uid);
#  - `omnifsctl restore --at` writes an old version back as a new change,
#    seen on node 1, and the content it replaced is kept in turn;
#  - the per-file bound holds (versions = 3), a file deleted with its
#    directory is restored by path (and mode) on node 3, the total bound
#    (trim pass) drops the oldest versions, and a file over max_file_kb
#    keeps none;
#  - the view is as private as the tree: a user lists a directory of it, and
#    reads its .versions.json, only if they could list or read what is at
#    its path;
#  - with history off on all nodes nothing more is kept;
#  - at the end every node's state digest is the same.
. "$(dirname "$0")/lib.sh"

EXTRA_CONFIG="[history]\nversions = 3\nmax_total_mb = 1\nmax_file_kb = 700\ntrim_s = 1"
fs_cluster 3
conf() { echo "$T/node$1/omnifs.conf"; }
octl() { # octl NODE ARGS...: omnifsctl with node NODE's config (its mount)
	local i=$1
	shift
	"$OMNIFSCTL" -c "$(conf "$i")" "$@"
}
put() { printf '%s\n' "$2" | dd of="$1" conv=fsync status=none; }
# versions NODE PATH: the indexes kept for PATH (in the tree), oldest first.
versions() {
	octl "$1" history --json "$T/mnt/node$1$2" |
		python3 -c 'import json,sys; print(" ".join(str(v["index"]) for v in json.load(sys.stdin)))'
}
nversions() { local v; v=$(versions "$1" "$2"); set -- $v; echo $#; }
synced() { for i in 1 2 3; do ctl "$i" barrier >/dev/null; done; }

log "three edits on node 1"
put "$M1/app.conf" "port = 1"
put "$M1/app.conf" "port = 2"
put "$M1/app.conf" "port = 3"
synced
read -r V1 V2 < <(versions 2 /app.conf)
[ -n "$V1" ] && [ -n "$V2" ] || fail "node 2 lists $(versions 2 /app.conf), expected two versions"
[ "$(cat "$M2/.omnifs/history/app.conf/$V1")" = "port = 1" ] || fail "version $V1 is not the first"
[ "$(cat "$M2/.omnifs/history/app.conf/$V2")" = "port = 2" ] || fail "version $V2 is not the second"
[ "$(cat "$M3/.omnifs/history/app.conf/$V1")" = "port = 1" ] || fail "node 3 shows another version $V1"
ls "$M2/.omnifs/history/app.conf" | grep -qx "$V1" || fail "ls does not show $V1"
if diff "$M2/.omnifs/history/app.conf/$V1" "$M2/app.conf" >"$T/diff"; then
	fail "diff finds no change between $V1 and the file"
fi
grep -q '^> port = 3' "$T/diff" || fail "diff: $(cat "$T/diff")"
cp "$M2/.omnifs/history/app.conf/$V2" "$T/copy" && [ "$(cat "$T/copy")" = "port = 2" ] ||
	fail "cp of a version"
echo nope >"$M2/.omnifs/history/app.conf/$V1" 2>/dev/null && fail "a version was writable"
octl 2 history "$M2/app.conf" >"$T/hist.txt"
grep -qE "^$V1 +[0-9T:-]+Z +n1 +0 +9\$" "$T/hist.txt" || fail "history text: $(cat "$T/hist.txt")"
octl 2 history --json "$M2/app.conf" | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert len(v) == 2 and all(x["node"] == 1 and x["uid"] == 0 and not x["deleted"] for x in v), v'

log "restore --at $V1 through node 2"
octl 2 restore "$M2/app.conf" --at "$V1" >/dev/null
synced
[ "$(cat "$M1/app.conf")" = "port = 1" ] || fail "node 1 reads $(cat "$M1/app.conf") after the restore"
[ "$(nversions 1 /app.conf)" = 3 ] || fail "after the restore: $(versions 1 /app.conf)"
read -r _ _ V3 < <(versions 1 /app.conf)
[ "$(cat "$M1/.omnifs/history/app.conf/$V3")" = "port = 3" ] ||
	fail "the content the restore replaced is not kept"
octl 2 restore "$M2/app.conf" --at 1 2>/dev/null && fail "restore of an index never kept"

log "the per-file bound: versions = 3"
for k in 4 5 6 7 8; do put "$M3/app.conf" "port = $k"; done
synced
[ "$(nversions 2 /app.conf)" = 3 ] || fail "kept $(versions 2 /app.conf), bound 3"
read -r _ _ VL < <(versions 2 /app.conf)
[ "$(cat "$M2/.omnifs/history/app.conf/$VL")" = "port = 7" ] || fail "the newest kept is not 7"

log "a deleted file, with its directory, restored by path on node 3"
mkdir -p "$M1/etc/app"
put "$M1/etc/app/secret.conf" "key = 42"
chmod 600 "$M1/etc/app/secret.conf"
rm -r "$M1/etc/app"
synced
[ -e "$M3/etc/app" ] && fail "the directory is still there"
ls "$M3/.omnifs/history/etc" | grep -qx app || fail "history/etc does not list the deleted app/"
octl 3 history --json "$M3/etc/app/secret.conf" |
	python3 -c 'import json,sys; v=json.load(sys.stdin); assert len(v)==1 and v[0]["deleted"], v'
octl 3 restore "$M3/etc/app/secret.conf" >/dev/null
synced
[ "$(cat "$M1/etc/app/secret.conf")" = "key = 42" ] || fail "node 1 does not read the restored file"
[ "$(stat -c %a "$M1/etc/app/secret.conf")" = 600 ] || fail "the restored file is not private again"

log "vim's way: a new file renamed over the old one"
put "$M1/etc/app/secret.conf.tmp" "key = 43"
mv "$M1/etc/app/secret.conf.tmp" "$M1/etc/app/secret.conf"
synced
octl 2 history --json "$M2/etc/app/secret.conf" | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert v[-1]["deleted"] and v[-1]["size"] == 9, v'

log "the view is as private as the tree: a user lists only what they could read"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
chmod 711 "$T" "$T/mnt" # the way to the mounts (the key files stay 0600)
chmod 600 "$M1/etc/app/secret.conf" # the rename above brought a 0644 file
synced
as_nobody ls -a "$M2/.omnifs/history/app.conf" | grep -qx .versions.json ||
	fail "a public file's versions are not listed for everyone"
as_nobody ls "$M2/.omnifs/history/etc/app" | grep -qx secret.conf ||
	fail "the names in a public directory are not listed for everyone"
as_nobody cat "$M2/.omnifs/history/etc/app/secret.conf/.versions.json" >/dev/null 2>&1 &&
	fail "anyone reads the writers and sizes of a 0600 file's versions"
as_nobody ls "$M2/.omnifs/history/etc/app/secret.conf" >/dev/null 2>&1 &&
	fail "anyone lists the versions of a 0600 file"
ls -a "$M2/.omnifs/history/etc/app/secret.conf" | grep -qx .versions.json || fail "root cannot"
chmod 700 "$M1/etc/app"
synced
private_dir() { ! as_nobody ls "$M3/.omnifs/history/etc/app" >/dev/null 2>&1; }
wait_until 10 private_dir # the kernel may hold the directory's old mode for its cache time
ls "$M3/.omnifs/history/etc/app" | grep -qx secret.conf || fail "root cannot list it"
chmod 755 "$M1/etc/app"
synced

log "the total bound (1 MiB) and max_file_kb (700)"
head -c 400000 /dev/urandom >"$T/big"
for k in 1 2 3; do
	cp "$T/big" "$M1/big" && echo "$k" >>"$M1/big"
done
head -c 800000 /dev/urandom >"$M1/huge" && head -c 10 /dev/urandom >"$M1/huge"
synced
total_kept() { # bytes kept for big, app.conf and secret.conf
	local s=0 p
	for p in /big /app.conf /etc/app/secret.conf; do
		s=$((s + $(octl 1 history --json "$M1$p" |
			python3 -c 'import json,sys; print(sum(v["size"] for v in json.load(sys.stdin)))')))
	done
	echo $s
}
under_total() { [ "$(total_kept)" -le $((1 << 20)) ]; }
wait_until 30 under_total
[ "$(nversions 1 /big)" -ge 1 ] || fail "the trim pass dropped every version of big"
[ "$(nversions 1 /huge)" = 0 ] || fail "a file over max_file_kb kept $(versions 1 /huge)"

log "digests agree"
synced
wait_until 20 digests_agree 1 2 3

log "history off: nothing more is kept"
for i in 1 2 3; do stop_node "$i"; done
EXTRA_CONFIG="[history]\nenabled = false"
for i in 1 2 3; do write_config "$i" curve; done
for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do wait_until 30 mountpoint -q "$T/mnt/node$i"; wait_until 20 has_leader "$i"; done
before=$(versions 1 /app.conf)
put "$M1/app.conf" "port = 9"
synced
[ "$(versions 2 /app.conf)" = "$before" ] || fail "history off, yet kept: $(versions 2 /app.conf)"
[ "$(cat "$M2/app.conf")" = "port = 9" ] || fail "the edit did not reach node 2"
wait_until 20 digests_agree 1 2 3
log "PASS"
