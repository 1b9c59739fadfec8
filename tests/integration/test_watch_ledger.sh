#!/usr/bin/env bash
# omnifsctl watch never misses nor repeats a change. Writers on all three
# mounts create, write, rename and delete files in one directory while two
# watchers follow it: a reference one on node 2, left alone, and the ledger
# one on node 1, whose daemon is killed (-9) and later stopped (SIGTERM) and
# started again mid-run, and which is itself stopped and started again with
# --since (the last index it printed, plus one). At the end:
#  - the ledger equals the reference line for line (every node serves the
#    same feed: same indexes, paths, nodes, uids, times);
#  - its indexes only grow (nothing repeated), and each change names the
#    node and uid that made it;
#  - every change a writer was told it made is in it (nothing missed:
#    the create of each file written (with its content: one change), the
#    modify of each append, each rename with its new path,
#    each delete), and it names nothing no writer tried.
# A third watcher, on node 3 without -r, sees the same, and then nothing
# below an entry of the directory. Then: a node whose feed was trimmed
# (feed_entries = 5) answers --since of an older index with exit status 5;
# `kv watch PREFIX` sees KV writes made on another node; and --exec with
# --debounce runs its command once per burst of changes.
. "$(dirname "$0")/lib.sh"

ROUNDS=${OMNIFS_WATCH_ROUNDS:-40} # files per writer

fs_cluster 3
mkdir "$M1/d" "$M1/e"
for i in 2 3; do wait_until 20 test -d "$T/mnt/node$i/e"; done
ctl 1 barrier >/dev/null
START=$(status_field 1 applied_idx)
log "watching from index $START"

watch_json() { # watch_json NODE OUT [ARGS...]: a -r --json watcher of NODE's d
	local i=$1 out=$2
	shift 2
	"$OMNIFSCTL" -c "$T/node$i/omnifs.conf" watch -r --json "$@" "$T/mnt/node$i/d" \
		>>"$out" 2>>"$T/watch$i.err" &
	WPID[$i]=$!
	CLEANUP_HOOKS+=("kill ${WPID[$i]} 2>/dev/null")
}
declare -a WPID=()
watch_json 2 "$T/reference" --since "$START"
watch_json 1 "$T/ledger" --since "$START"
# Node 3: d itself and its entries only (no -r).
"$OMNIFSCTL" -c "$T/node3/omnifs.conf" watch --json --since "$START" "$T/mnt/node3/d" \
	>"$T/flat" 2>"$T/watch3.err" &
FLAT=$!
CLEANUP_HOOKS+=("kill $FLAT 2>/dev/null")

# writer I: ROUNDS files on node I's mount; logs "try|done KIND PATH [NEW]"
# (paths in the tree) to $T/ops$I. A failed step (its daemon down) is only
# tried: the next file starts afresh.
writer() {
	local i=$1 m="$T/mnt/node$1" k f
	for k in $(seq 1 "$ROUNDS"); do
		f="d/n$i-$k"
		echo "try create /$f" >>"$T/ops$i"
		# dd checks its fsync (the commit), where a shell's echo would not
		# notice a close that failed.
		if ! echo "content $k of node $i" | dd of="$m/$f" conv=fsync status=none 2>/dev/null; then
			sleep 0.2
			continue
		fi
		# created with its content: one change (a create)
		echo "done create /$f" >>"$T/ops$i"
		if [ $((k % 2)) = 0 ]; then
			echo "try modify /$f" >>"$T/ops$i"
			echo "more" | dd of="$m/$f" oflag=append conv=notrunc,fsync status=none \
				2>/dev/null || continue
			echo "done modify /$f" >>"$T/ops$i"
		fi
		if [ $((k % 3)) = 0 ]; then
			echo "try rename /$f /$f.r" >>"$T/ops$i"
			mv "$m/$f" "$m/$f.r" 2>/dev/null || continue
			echo "done rename /$f /$f.r" >>"$T/ops$i"
			f="$f.r"
		fi
		if [ $((k % 4)) = 0 ]; then
			echo "try delete /$f" >>"$T/ops$i"
			rm "$m/$f" 2>/dev/null || continue
			echo "done delete /$f" >>"$T/ops$i"
		fi
	done
}
declare -a WR=()
for i in 1 2 3; do
	writer "$i" </dev/null &
	WR[$i]=$!
done

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
# Each disruption waits for the ledger to have grown first, so it lands
# mid-run.
grown() { [ "$(lines "$T/ledger")" -ge "$1" ]; }
ref_has() { [ "$(lines "$T/reference")" -ge "$1" ]; }
ref_ahead() { [ "$(lines "$T/reference")" -ge $(($(lines "$T/ledger") + $1)) ]; }

wait_until 60 grown 10
log "kill -9 node 1 under its watcher"
kill_node 1
wait_until 60 ref_has 20
start_node 1
wait_until 30 mountpoint -q "$M1"

wait_until 60 grown 30
log "stop (SIGTERM) node 1 under its watcher"
stop_node 1
start_node 1
wait_until 30 mountpoint -q "$M1"

wait_until 60 grown 50
log "stop the ledger watcher, go on with --since"
kill -TERM "${WPID[1]}"
wait "${WPID[1]}" || fail "the watcher exited with $? on SIGTERM"
last=$(tail -n 1 "$T/ledger" | python3 -c 'import json,sys; print(json.load(sys.stdin)["index"])')
wait_until 60 ref_ahead 10
watch_json 1 "$T/ledger" --since $((last + 1))

for i in 1 2 3; do wait "${WR[$i]}"; done
mkdir "$M1/d/END"
end_seen() { grep -q '"path":"[^"]*/d/END"' "$1"; }
wait_until 60 end_seen "$T/reference"
wait_until 60 end_seen "$T/ledger"
for i in 1 2; do
	kill -TERM "${WPID[$i]}"
	wait "${WPID[$i]}" || fail "watcher on node $i exited with $?"
done
# Below an entry of d: not for the watcher without -r; an entry again: yes.
mkdir "$M1/d/END/inner"
touch "$M1/d/after"
wait_until 60 grep -q '"path":"[^"]*/d/after"' "$T/flat"
kill -TERM $FLAT
wait $FLAT || fail "the watcher on node 3 exited with $?"
! grep -q '/d/END/inner' "$T/flat" || fail "a watcher without -r showed a change below an entry"
cat "$T/watch1.err" >&2 || true

python3 - "$T" "$M1" "$M2" <<'PY' || fail "the ledger check failed"
import json, sys
t, m1, m2 = sys.argv[1:4]
ledger = open(f"{t}/ledger").read().splitlines()
ref = open(f"{t}/reference").read().splitlines()

def tree(rec, m):
    r = dict(rec)
    for k in ("path", "new_path"):
        if k in r:
            assert r[k].startswith(m + "/"), r[k]
            r[k] = r[k][len(m):]
    return r

L = [tree(json.loads(x), m1) for x in ledger]
m3 = m1.replace("node1", "node3")
F = [tree(json.loads(x), m3) for x in open(f"{t}/flat").read().splitlines()]
R = [tree(json.loads(x), m2) for x in ref]
ok = True
if L != R:
    ok = False
    print(f"ledger ({len(L)}) differs from the reference ({len(R)})")
    for a, b in zip(L, R):
        if a != b:
            print(" first difference:", a, "vs", b)
            break
if F[:len(R)] != R:
    ok = False
    print("the watcher without -r on node 3 differs from the reference (all of it is d's entries)")
idx = [r["index"] for r in L]
if any(b <= a for a, b in zip(idx, idx[1:])):
    ok = False
    print("indexes repeat or go back:", idx)
seen = {(r["kind"], r["path"], r.get("new_path")) for r in L}
tried = set()
done = []
for i in (1, 2, 3):
    for line in open(f"{t}/ops{i}"):
        w = line.split()
        op = (w[1], w[2], w[3] if len(w) > 3 else None)
        if w[0] == "done":
            done.append(op)
            continue
        tried.add(op)
        if w[1] == "create":
            tried.add(("modify", w[2], None))
            tried.add(("attrib", w[2], None))
missed = [op for op in done if op not in seen]
if missed:
    ok = False
    print("changes made but not seen:", missed[:10])
phantom = [r for r in L if (r["kind"], r["path"], r.get("new_path")) not in tried and r["path"] != "/d/END"]
if phantom:
    ok = False
    print("changes seen that no writer tried:", phantom[:10])
# Each change names the node and the uid that made it.
import os, re
for r in L:
    m = re.match(r"/d/n(\d+)-", r["path"])
    if m and r["node"] != int(m.group(1)):
        ok = False
        print("a change credited to the wrong node:", r)
    if r["uid"] != os.getuid():
        ok = False
        print("a change credited to the wrong uid:", r)
print(f"ledger: {len(L)} changes, {len(done)} made and confirmed, indexes {idx[0]}..{idx[-1]}")
sys.exit(0 if ok else 1)
PY

# A trimmed feed: node 1 keeps only the last 5 indexes.
stop_node 1
EXTRA_CONFIG='[compaction]\nfeed_entries = 5' write_config 1 curve
start_node 1
wait_until 30 mountpoint -q "$M1"
for k in 1 2 3; do mkdir "$M1/e/trim$k"; done
ctl 1 barrier >/dev/null
rc=0
timeout 20 "$OMNIFSCTL" -c "$T/node1/omnifs.conf" watch --since "$START" "$M1/d" \
	>/dev/null 2>"$T/trim.err" || rc=$?
[ "$rc" = 5 ] || fail "watch --since a trimmed index exited $rc, not 5: $(cat "$T/trim.err")"
grep -q "no longer in the feed" "$T/trim.err" || fail "no word of the trimmed feed: $(cat "$T/trim.err")"
log "a trimmed index: exit status 5"

# kv watch: a KV write on node 1 is seen on node 3, under its prefix only.
"$OMNIFSCTL" -s "$T/node3/ctl.sock" kv watch --json app/ >"$T/kv.out" 2>"$T/kv.err" &
KVW=$!
CLEANUP_HOOKS+=("kill $KVW 2>/dev/null")
ctl 3 barrier >/dev/null
kv_watching() { ctl 3 kv put app/probe x >/dev/null && grep -q app/probe "$T/kv.out"; }
wait_until 30 kv_watching
ctl 1 kv put other/x 1 >/dev/null
ctl 1 kv put app/x 1 >/dev/null
ctl 1 kv del app/x >/dev/null
wait_until 30 grep -q '"kind":"kv-del","key":"app/x"' "$T/kv.out"
grep -q '"kind":"kv-put","key":"app/x"' "$T/kv.out" || fail "kv watch missed the put: $(cat "$T/kv.out")"
! grep -q other/x "$T/kv.out" || fail "kv watch showed a key outside its prefix"
kill -TERM $KVW
wait $KVW || fail "kv watch exited with $?"
log "kv watch: puts and deletes under the prefix"

# --exec with --debounce: one run per burst, after the burst. The command
# counts the files it finds (after a barrier, so the mount shows the state
# the feed reported); a run in the middle of a burst would log a smaller
# count first.
CLEANUP_HOOKS+=("echo '--- the --exec watcher said:' >&2; cat '$T/exec.out' '$T/exec.err' >&2")
# From the index before the first change (read here: a substitution in the
# background command's line would run concurrently with that change).
since=$(status_field 2 applied_idx)
"$OMNIFSCTL" -c "$T/node2/omnifs.conf" watch "$M2/e" --debounce 1500 --since "$since" \
	--exec "'$OMNIFSCTL' -s '$T/node2/ctl.sock' -t 10 barrier >/dev/null; ls '$M2/e' | grep -c '^f' >>'$T/exec.log'" \
	>"$T/exec.out" 2>"$T/exec.err" &
EXW=$!
CLEANUP_HOOKS+=("kill $EXW 2>/dev/null")
touch "$M1/e/f0"
wait_until 30 test -s "$T/exec.log"
[ "$(cat "$T/exec.log")" = 1 ] || fail "exec log after the first file: $(cat "$T/exec.log")"
for k in $(seq 1 10); do echo "$k" >"$M1/e/f$k"; done
last_count() { [ "$(tail -n 1 "$T/exec.log")" = "$1" ]; }
wait_until 30 last_count 11
[ "$(lines "$T/exec.log")" = 2 ] || fail "the command ran more than once for a burst: $(cat "$T/exec.log")"
for k in $(seq 11 15); do echo "$k" >"$M3/e/f$k"; done
wait_until 30 last_count 16
[ "$(lines "$T/exec.log")" = 3 ] || fail "the command ran more than once for a burst: $(cat "$T/exec.log")"
kill -TERM $EXW
wait $EXW || fail "the --exec watcher exited with $?"
log "--exec: once per burst"
log "PASS"
