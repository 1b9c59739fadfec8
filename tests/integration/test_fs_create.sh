#!/usr/bin/env bash
# What a create promises when it commits with its file's data (one round for
# create + write + close; fs/vfs/ofs_pending.c), on real mounts of a 3-node
# cluster:
#  - concurrent open(O_CREAT|O_EXCL) of one name on two nodes: exactly one
#    EEXIST, every time;
#  - a new lock file created and flock'ed on two nodes at once: never both
#    get the lock;
#  - a file created and not yet closed is there at once on its own node for
#    other processes (stat, readdir, read), and nowhere else yet;
#  - once close returns, the file with its data reaches every node;
#  - kill -9 of the writing node right after its closes returned loses none
#    of those files;
#  - `echo x > f` costs one committed entry, for a new f and for an
#    existing one (the shell closes the descriptor it dup'ed first);
#  - tar x and cp -a of a file cost two (its O_EXCL create, then data,
#    times, owner and mode together at its close: fs/vfs/ofs_fold.c), and a
#    tree unpacked or copied on one node has every file's content, mode,
#    owner and times on the others.
. "$(dirname "$0")/lib.sh"

fs_cluster 3

# --- O_EXCL on two nodes at once: one winner per name.
cat >"$T/excl.py" <<'PY'
import os, sys, time
mnt, tag, go, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
out = []
for i in range(n):
    while not os.path.exists("%s.%d" % (go, i)):
        time.sleep(0.001)
    try:
        fd = os.open(os.path.join(mnt, "excl.%d" % i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.write(fd, tag.encode())
        os.close(fd)
        out.append("won")
    except FileExistsError:
        out.append("EEXIST")
print(" ".join(out))
PY
ROUNDS=20
python3 "$T/excl.py" "$M1" node1 "$T/go" $ROUNDS >"$T/excl.1" &
p1=$!
python3 "$T/excl.py" "$M2" node2 "$T/go" $ROUNDS >"$T/excl.2" &
p2=$!
for i in $(seq 0 $((ROUNDS - 1))); do
	touch "$T/go.$i"
	wait_until 20 test -e "$M1/excl.$i" -a -e "$M2/excl.$i"
done
wait $p1 || fail "the O_EXCL creator on node 1 failed"
wait $p2 || fail "the O_EXCL creator on node 2 failed"
read -ra r1 <"$T/excl.1"
read -ra r2 <"$T/excl.2"
[ ${#r1[@]} = $ROUNDS ] && [ ${#r2[@]} = $ROUNDS ] || fail "creators answered ${#r1[@]} and ${#r2[@]} times"
for i in $(seq 0 $((ROUNDS - 1))); do
	case "${r1[i]} ${r2[i]}" in
	"won EEXIST") want=node1 ;;
	"EEXIST won") want=node2 ;;
	*) fail "excl.$i: node 1 ${r1[i]}, node 2 ${r2[i]} (want one EEXIST)" ;;
	esac
	for m in "$M1" "$M2" "$M3"; do
		wait_until 10 grep -qx "$want" "$m/excl.$i"
	done
done
log "concurrent O_EXCL creates: one EEXIST in each of $ROUNDS rounds"

# --- A new lock file made on two nodes at once (`exec 9>lock; flock -n 9`):
# never both get the lock (each would lock a file of its own otherwise).
cat >"$T/lockrace.py" <<'PY'
import fcntl, os, sys, time
mnt, go, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
res = []
for i in range(n):
    while not os.path.exists("%s.%d" % (go, i)):
        time.sleep(0.001)
    fd = os.open(os.path.join(mnt, "lock.%d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        res.append("got")
    except OSError as e:
        res.append(str(e.errno))
    with open("%s.%d" % (out, i), "w"):
        pass
    while not os.path.exists("%s.%d.done" % (go, i)):  # hold it until both tried
        time.sleep(0.001)
    try:
        os.close(fd)
    except OSError:
        pass
print(" ".join(res))
PY
python3 "$T/lockrace.py" "$M1" "$T/lgo" $ROUNDS "$T/ltried1" >"$T/lock.1" &
p1=$!
python3 "$T/lockrace.py" "$M2" "$T/lgo" $ROUNDS "$T/ltried2" >"$T/lock.2" &
p2=$!
for i in $(seq 0 $((ROUNDS - 1))); do
	touch "$T/lgo.$i"
	wait_until 20 test -e "$T/ltried1.$i" -a -e "$T/ltried2.$i"
	touch "$T/lgo.$i.done"
done
wait $p1 || fail "the locker on node 1 failed"
wait $p2 || fail "the locker on node 2 failed"
read -ra l1 <"$T/lock.1"
read -ra l2 <"$T/lock.2"
both=0
for i in $(seq 0 $((ROUNDS - 1))); do
	[ "${l1[i]} ${l2[i]}" = "got got" ] && fail "lock.$i: both nodes got the lock"
	[ "${l1[i]}" = got ] || [ "${l2[i]}" = got ] || both=$((both + 1))
done
[ $both -lt $ROUNDS ] || fail "no node ever got a lock: ${l1[*]} / ${l2[*]}"
log "a new lock file on two nodes at once: never both hold it ($both of $ROUNDS rounds neither)"

# --- Created, not closed: there at once on its node, elsewhere after close.
cat >"$T/hold.py" <<'PY'
import os, sys, time
path, ready, done = sys.argv[1:]
fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o640)
os.write(fd, b"buffered\n")
open(ready, "w").close()
while not os.path.exists(done):
    time.sleep(0.01)
os.close(fd)
open(ready + ".closed", "w").close()
PY
python3 "$T/hold.py" "$M1/open.txt" "$T/ready" "$T/done" &
hp=$!
wait_until 20 test -e "$T/ready"
[ "$(stat -c '%s %a' "$M1/open.txt")" = "9 640" ] || fail "stat on node 1: $(stat -c '%s %a' "$M1/open.txt")"
ls "$M1" | grep -qx open.txt || fail "node 1's listing lacks the open file"
[ "$(cat "$M1/open.txt")" = buffered ] || fail "another process on node 1 reads '$(cat "$M1/open.txt")'"
# Nowhere else before its close (the name and data commit together); a
# barrier first, so node 2 has applied everything decided so far.
ctl 2 barrier >/dev/null
[ ! -e "$M2/open.txt" ] || fail "node 2 sees the file before its close"
touch "$T/done"
wait $hp || fail "the writer's close failed"
for m in "$M2" "$M3"; do
	wait_until 10 test -e "$m/open.txt"
	[ "$(cat "$m/open.txt")" = buffered ] || fail "$m/open.txt reads '$(cat "$m/open.txt")'"
done
log "a file created and not closed: visible on its node at once, everywhere after close"

# --- kill -9 of the writing node right after its closes returned.
victim=$(leader_id 1) # the leader: the entries it proposed must outlive it
vm="$T/mnt/node$victim"
python3 - "$vm" 50 >"$T/acked" <<'PY'
import os, sys
mnt, n = sys.argv[1], int(sys.argv[2])
os.mkdir(os.path.join(mnt, "crash"))
for i in range(n):
    with open(os.path.join(mnt, "crash", "f%d" % i), "w") as f:
        f.write("content %d\n" % i)
    print("f%d" % i, flush=True)
PY
kill_node "$victim"
[ "$(wc -l <"$T/acked")" = 50 ] || fail "the writer acknowledged $(wc -l <"$T/acked") files"
alive=()
for i in 1 2 3; do [ "$i" = "$victim" ] || alive+=("$i"); done
for i in "${alive[@]}"; do
	wait_until 30 has_leader "$i"
	wait_until 30 ctl_quiet "$i" barrier
	while read -r name; do
		got=$(cat "$T/mnt/node$i/crash/$name" 2>/dev/null) ||
			fail "node $i lost $name, created and closed before node $victim was killed"
		[ "$got" = "content ${name#f}" ] || fail "node $i: $name reads '$got'"
	done <"$T/acked"
done
start_node "$victim"
wait_until 30 mountpoint -q "$vm"
wait_until 30 has_leader "$victim"
wait_until 30 same_trees "$M1" "$M2" "$M3"
log "kill -9 of node $victim after 50 closes: nothing lost"

# --- `echo x > f`: one entry, new or existing. Other entries (the reaper,
# lock leases) may land in a measurement, so the least of three counts.
applied() { status_field 1 applied_idx; }
entries_of() {
	local best=99 k before after
	for k in 1 2 3; do
		wait_until 30 ctl_quiet 1 barrier
		before=$(applied)
		sh -c "$1" "$k"
		after=$(applied)
		[ $((after - before)) -lt $best ] && best=$((after - before))
	done
	echo $best
}
echo old >"$M1/existing"
n_new=$(entries_of 'echo "x$0" > '"$M1"'/new.$0')
n_old=$(entries_of 'echo "x$0" > '"$M1"'/existing')
[ "$n_new" = 1 ] || fail "echo x > new commits $n_new entries, not 1"
[ "$n_old" = 1 ] || fail "echo x > existing commits $n_old entries, not 1"
for m in "$M2" "$M3"; do
	wait_until 10 grep -qx x3 "$m/existing"
	wait_until 10 grep -qx x2 "$m/new.2"
done
log "echo x > f: one entry for a new file and for an existing one"

# --- tar x and cp -a: the setattrs they make through the descriptor after
# writing (utimensat, fchown, fchmod) commit with the data at close.
printf 'port = 8080\n' >"$T/one.conf"
chmod 0640 "$T/one.conf"
chown 1234:4321 "$T/one.conf"
touch -d "2021-02-03 04:05:06" "$T/one.conf"
tar -C "$T" -cf "$T/one.tar" one.conf
mkdir "$M1/tx.1" "$M1/tx.2" "$M1/tx.3" "$M1/cp.1" "$M1/cp.2" "$M1/cp.3"
n_tar=$(entries_of 'tar -C '"$M1"'/tx.$0 -xf '"$T/one.tar")
n_cp=$(entries_of 'cp -a '"$T/one.conf $M1"'/cp.$0/')
[ "$n_tar" = 2 ] || fail "tar x of one file commits $n_tar entries, not 2"
[ "$n_cp" = 2 ] || fail "cp -a of one file commits $n_cp entries, not 2"
# An empty file: nothing written, its setattrs still wait for the close.
: >"$T/empty.conf"
chown 1234:4321 "$T/empty.conf"
touch -d "2021-02-03 04:05:06" "$T/empty.conf"
tar -C "$T" -cf "$T/empty.tar" empty.conf
mkdir "$M1/te.1" "$M1/te.2" "$M1/te.3"
n_empty=$(entries_of 'tar -C '"$M1"'/te.$0 -xf '"$T/empty.tar")
[ "$n_empty" = 2 ] || fail "tar x of an empty file commits $n_empty entries, not 2"
ctl 2 barrier >/dev/null
[ "$(stat -c %s:%u:%g:%Y "$M2/te.1/empty.conf")" = "0:1234:4321:$(stat -c %Y "$T/empty.conf")" ] ||
	fail "tar x of an empty file on node 2: $(stat -c %s:%u:%g:%Y "$M2/te.1/empty.conf")"
log "tar x and cp -a of a file: two entries each; an empty file too"

# A tree of config-like files: modes, owners, times and sizes of all kinds,
# empty files, symlinks, nested directories.
SRC="$T/src"
python3 - "$SRC" <<'PY'
import os, sys
root = sys.argv[1]
owners = [(0, 0), (1000, 1000), (1234, 4321)]
modes = [0o644, 0o640, 0o600, 0o755, 0o4755, 0o2750]
for d in range(6):
    sub = os.path.join(root, "etc", "d%d" % d, "conf.d")
    os.makedirs(sub)
    for i in range(25):
        p = os.path.join(sub if i % 2 else os.path.dirname(sub), "f%02d.conf" % i)
        with open(p, "w") as f:
            f.write(("key%d = %d\n" % (i, d)) * (i % 7))  # some empty
        uid, gid = owners[(d + i) % 3]
        os.chown(p, uid, gid)
        os.chmod(p, modes[(d * 25 + i) % len(modes)])
        os.utime(p, ns=(1500000000 * 10**9 + i, 1600000000 * 10**9 + d * 1000 + i * 7))
    os.symlink("conf.d/f01.conf", os.path.join(root, "etc", "d%d" % d, "link"))
    os.chown(os.path.join(root, "etc", "d%d" % d), 1000, 1000)
PY
tar -C "$SRC" -cf "$T/tree.tar" .
mkdir "$M1/tarx"
tar -C "$M1/tarx" -xf "$T/tree.tar" || fail "tar x into node 1 failed"
cp -a "$SRC" "$M1/cpa" || fail "cp -a into node 1 failed"
# What each name is: type, mode, owner, size (not a directory's: each
# filesystem has its own), mtime (to the second: tar keeps no more), and a
# symlink's target.
listing() {
	(cd "$1" && find . -printf '%p %y %m %U %G %s %TY-%Tm-%Td_%TH:%TM:%.2TS %l\n' |
		awk '$2 == "d" { $6 = "-" } { print }' | sort)
}
same_as_source() { # DIR: same content and attributes as the source tree
	diff -r --no-dereference "$SRC" "$1" >/dev/null 2>&1 &&
		[ "$(listing "$SRC" | grep -v '^\. ')" = "$(listing "$1" | grep -v '^\. ')" ]
}
for i in 2 3; do
	wait_until 30 ctl_quiet "$i" barrier
	m="$T/mnt/node$i"
	wait_until 30 same_as_source "$m/cpa" ||
		{ diff <(listing "$SRC") <(listing "$m/cpa") | head; fail "cp -a: node $i differs from the source"; }
	(cd "$m/tarx" && tar -df "$T/tree.tar") >"$T/tar-d.$i" 2>&1 ||
		{ head "$T/tar-d.$i"; fail "tar x: node $i differs from the archive"; }
	wait_until 30 same_as_source "$m/tarx" ||
		{ diff <(listing "$SRC") <(listing "$m/tarx") | head; fail "tar x: node $i differs from the source"; }
done
log "tar x and cp -a of a tree on node 1: contents, modes, owners and times on nodes 2 and 3"
