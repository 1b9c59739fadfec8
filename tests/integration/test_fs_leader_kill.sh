#!/usr/bin/env bash
# The leader killed with -9 in the middle of copying a tree onto another
# node's mount: afterwards every file that the copy reported as written
# (closed without error) is present and intact on every node.
. "$(dirname "$0")/lib.sh"

ELECTION_MS=200
fs_cluster 3
leader=$(leader_id 1)
writer=$(((leader % 3) + 1))
W="$T/mnt/node$writer"
log "leader n$leader, copying through n$writer"

# The copy: one file at a time, each recorded in the ledger once close()
# returned 0. Errors while the leader is gone are expected and not recorded.
python3 - "$W/copy" "$T/ledger" 12 <<'PY' &
import hashlib, os, sys, time
dst, ledger, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
os.makedirs(dst, exist_ok=True)
end = time.time() + seconds
n = 0
with open(ledger, "w") as led:
    while time.time() < end:
        n += 1
        data = (("file %d " % n) * (1 + n % 300)).encode()
        path = os.path.join(dst, "f%05d" % n)
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError:
            continue
        led.write("%s %s\n" % (os.path.basename(path), hashlib.md5(data).hexdigest()))
        led.flush()
PY
copier=$!
sleep 3
log "killing leader n$leader"
kill_node "$leader"
wait "$copier"
written=$(wc -l <"$T/ledger")
[ "$written" -gt 20 ] || fail "only $written files written"
start_node "$leader"
wait_until 30 mountpoint -q "$T/mnt/node$leader"
for i in 1 2 3; do ctl "$i" barrier; done
for i in 1 2 3; do
	python3 - "$T/mnt/node$i/copy" "$T/ledger" <<'PY' || fail "node $i lost or damaged files"
import hashlib, os, sys
d, ledger = sys.argv[1], sys.argv[2]
bad = []
for line in open(ledger):
    name, digest = line.split()
    try:
        with open(os.path.join(d, name), "rb") as f:
            if hashlib.md5(f.read()).hexdigest() != digest:
                bad.append(name + " (content)")
    except OSError as e:
        bad.append("%s (%s)" % (name, e.strerror))
if bad:
    sys.exit("%d bad: %s" % (len(bad), bad[:5]))
PY
done
log "all $written files the copy reported written are intact on every node"
for i in 1 2 3; do stop_node "$i"; done
log "PASS"
