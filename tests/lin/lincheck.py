#!/usr/bin/env python3
"""Jepsen-style linearizability test of omnifs on a real cluster.

Runs the omnifsd daemons of a cluster whose configs are already written
(tests/integration/lib.sh's cluster_init with MOUNT=1: <dir>/nodeI/omnifs.conf,
its control socket, <dir>/mnt/nodeI), then for --seconds:

- clients on every node: KV clients, each on one persistent control-socket
  connection (fs/base/ctl.h), do reads, writes and compare-and-sets
  (kv-put/kv-del --if-version) on a few keys; file clients read files and
  replace them (write a temp file, close, rename it over the file) through the
  node's mount;
- a nemesis kills a node with -9 and restarts it (the leader half the time),
  isolates a node, or cuts one link (the fault switch, `debug-fault`); with
  --netns each node runs in a network namespace of its own and the nemesis
  also partitions with iptables (a node cut off, or one link cut one way)
  and unplugs a node's cable;
- every operation is recorded as invoked, then ok, failed (definitely not
  applied: EROFS, a compare-and-set's "version mismatch") or unknown
  (a timeout, the connection or mount lost: it may or may not be applied).

Then it heals everything, reads every key and file on every node, and checks
that the history of each key and of each file is linearizable as a register
with compare-and-set (linearize.py: unknown writes may take effect at any
point after their invocation, or never; a "version mismatch" is checked as
an observation that the key was not at that version).

Reads: omnifs serves reads locally, and they may trail the cluster (the
README's promise is read-your-writes and monotonic reads per node), so a
plain local read is NOT linearizable by itself. Every read checked here is a
fresh read: a `barrier` on the node's control socket, then the read (kv-get
on the same connection, or open/read through the node's mount); it is
recorded as one operation from before the barrier to after the read. Plain
local reads are only used to pick the version a compare-and-set expects.
--unsafe-local-reads checks plain local reads instead: with a node isolated,
its stale reads are violations, which shows the whole chain can fail.

Local reads are checked against what the README promises for them: on one
node, monotonic reads and read-your-writes (the versions a node shows for a
key never go back while its daemon runs).

Keys and files are used for --generation-seconds each, then the clients move
to new ones: each history stays small enough for the search (as Jepsen's
independent keys do), and there are more of them.

Prints the operations, the histories checked and the violations; on a
violation, the shortest window of operations that no state explains. Exit
status 0 if there is none, 1 otherwise (or if the cluster fails to run), 2
on bad usage. The seed fixes the choices of clients and nemesis; thread and
network timing is not reproducible.
"""

import argparse
import errno
import faulthandler
import json
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linearize as L  # noqa: E402
from cluster import (CTL_TIMEOUT_S, Ctl, Lost, Net, Node, ctl_once, digests_agree,  # noqa: E402
                     now_us, say, wait_quorum)

# --- the history ---------------------------------------------------------------


class History:
    """Every operation, appended at invocation and completed in place."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []

    def invoke(self, proc, key, kind, value=None, expect=None):
        op = {"proc": proc, "key": key, "kind": kind, "value": value, "expect": expect,
              "invoke": now_us(), "ret": None, "status": "pending", "err": ""}
        with self.lock:
            self.ops.append(op)
        return op

    @staticmethod
    def complete(op, status, value=None, err=""):
        """status: ok, fail (not applied), mismatch, unknown."""
        op["ret"] = now_us()
        op["status"] = status
        op["err"] = err
        if op["kind"] == "read" and status == "ok":
            op["value"] = value


FAIL_STATUSES = {errno.EROFS}  # answered at once: not applied
# A mount whose daemon died answers these: reopen it once it is back.
LOST_ERRNOS = {errno.ENOTCONN, errno.ECONNABORTED}


def value_kv(body):
    return body.decode(errors="replace")


class Clients:
    def __init__(self, args, nodes, hist, stop):
        self.args, self.nodes, self.hist, self.stop = args, nodes, hist, stop
        self.seq_lock = threading.Lock()
        self.seq = 0
        self.errors = []
        self.local = threading.local()  # .node: the node this thread's client is on
        self.obs_lock = threading.Lock()
        self.obs = []  # (node, incarnation, key, t_inv, t_ret, version): see check_monotonic

    def observe(self, key, t_inv, inc, version):
        """A version this node showed (a local read) or answered (a write
        applied here) between t_inv and now, if the daemon did not change."""
        node = self.local.node
        if version and node.incarnation == inc:
            with self.obs_lock:
                self.obs.append((node.i, inc, key, t_inv, now_us(), version))

    def local_get(self, conn, key):
        """kv-get --version: (status, version, value); version 0 if absent."""
        t, inc = now_us(), self.local.node.incarnation
        st, body = conn.call("kv-get", "--version", key)
        if st == 0:
            ver, _, val = body.partition(b"\n")
            self.observe(key, t, inc, int(ver))
            return st, int(ver), value_kv(val)
        return st, 0, None

    def guarded(self, fn, *a):
        """Runs a client; an unexpected error stops the run and is reported."""
        try:
            fn(*a)
        except Exception as e:  # noqa: BLE001
            self.errors.append("%s%r: %r" % (fn.__name__, tuple(getattr(x, "i", x) for x in a), e))
            self.stop.set()

    def done(self, op, status, value=None, err=""):
        """Completes op; after a failure (EROFS: this node has no quorum),
        waits a little rather than spin on the refusals."""
        self.hist.complete(op, status, value, err)
        if status == "fail":
            self.stop.wait(0.02)

    def unique(self, tag):
        with self.seq_lock:
            self.seq += 1
            return "%s.%d" % (tag, self.seq)

    def generation(self):
        return int(now_us() / 1e6 / self.args.generation_seconds)

    def kv_key(self, rng):
        return "lin/g%d/k%d" % (self.generation(), rng.randrange(self.args.keys))

    def file_name(self, rng):
        return "lin-g%d-f%d" % (self.generation(), rng.randrange(self.args.files))

    # --- KV clients on the control socket

    def kv_client(self, node, cid):
        rng = random.Random("%d/kv/%d/%d" % (self.args.seed, node.i, cid))
        proc = "n%d-kv%d" % (node.i, cid)
        self.local.node = node
        known = {}  # key -> (version, value) last seen by this client
        conn = None
        while not self.stop.is_set():
            if conn is None:
                try:
                    conn = Ctl(node.sock)
                except OSError:
                    self.stop.wait(0.1)
                    continue
            key = self.kv_key(rng)
            try:
                r = rng.random()
                if r < self.args.read_ratio:
                    self.kv_read(conn, proc, key, known)
                elif r < self.args.read_ratio + (1 - self.args.read_ratio) / 3:
                    self.kv_write(conn, proc, key, known)
                else:
                    self.kv_cas(conn, proc, key, known, rng)
            except Lost:
                conn.close()
                conn = None

    def barrier(self, conn):
        """(status, body) of a barrier; skipped (0) with --unsafe-local-reads."""
        if self.args.unsafe_local_reads:
            return 0, b""
        return conn.call("barrier")

    def kv_read(self, conn, proc, key, known):
        op = self.hist.invoke(proc, key, "read")
        try:
            st, body = self.barrier(conn)
            if st != 0:
                self.done(op, "fail", err=os.strerror(st))
                return
            st, ver, val = self.local_get(conn, key)
        except Lost:
            self.done(op, "unknown", err="connection lost")
            raise
        if st == errno.ENOENT or st == 0:
            self.done(op, "ok", val)
            known[key] = (ver, val)
        else:
            self.done(op, "fail", err=os.strerror(st))

    def kv_write(self, conn, proc, key, known):
        val = self.unique(proc)
        op = self.hist.invoke(proc, key, "write", value=val)
        inc = self.local.node.incarnation
        try:
            st, body = conn.call("kv-put", key, val)
        except Lost:
            self.done(op, "unknown", err="connection lost")
            raise
        if st == 0:
            self.done(op, "ok")
            known[key] = (int(body), val)
            self.observe(key, op["invoke"], inc, int(body))
        else:
            self.done(op, "fail" if st in FAIL_STATUSES else "unknown",
                      err=os.strerror(st))

    def kv_cas(self, conn, proc, key, known, rng):
        if rng.random() < 0.5 or key not in known:
            # A local read (not checked for linearizability) for a version
            # that may still be current.
            st, ver, val = self.local_get(conn, key)
            if st == 0 or st == errno.ENOENT:
                known[key] = (ver, val)
        ver, expect = known.get(key, (0, None))
        delete = ver > 0 and rng.random() < 0.15
        new = None if delete else self.unique(proc)
        op = self.hist.invoke(proc, key, "cas", value=new, expect=expect)
        op["if_version"] = ver
        inc = self.local.node.incarnation
        try:
            if delete:
                st, body = conn.call("kv-del", "--if-version", str(ver), key)
            else:
                st, body = conn.call("kv-put", "--if-version", str(ver), key, new)
        except Lost:
            self.done(op, "unknown", err="connection lost")
            raise
        if st == 0:
            self.done(op, "ok")
            known[key] = (0, None) if delete else (int(body), new)
            if not delete:
                self.observe(key, op["invoke"], inc, int(body))
        elif st == errno.ECANCELED:
            self.done(op, "mismatch", err=body.decode(errors="replace").strip())
            known.pop(key, None)
        else:
            self.done(op, "fail" if st in FAIL_STATUSES else "unknown",
                      err=os.strerror(st))

    # --- file clients on the mount

    def open_root(self, node):
        """A descriptor of the mount's root, or None if it is not mounted. Every
        file operation goes through it: once the daemon dies, it fails with
        ENOTCONN instead of reaching the empty directory under the mount."""
        if not node.mounted():
            return None
        try:
            fd = os.open(node.mnt, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None
        if os.fstat(fd).st_dev == os.stat(os.path.dirname(node.mnt)).st_dev:
            os.close(fd)
            return None
        return fd

    def fs_client(self, node, cid):
        rng = random.Random("%d/fs/%d/%d" % (self.args.seed, node.i, cid))
        proc = "n%d-fs%d" % (node.i, cid)
        root = conn = None
        while not self.stop.is_set():
            if root is None or conn is None:
                if root is not None:
                    os.close(root)
                if conn is not None:
                    conn.close()
                root = conn = None
                try:
                    conn = Ctl(node.sock)
                    root = self.open_root(node)
                except OSError:
                    pass
                if root is None:
                    self.stop.wait(0.1)
                    continue
            name = self.file_name(rng)
            try:
                if rng.random() < self.args.read_ratio:
                    self.fs_read(conn, root, proc, name)
                else:
                    self.fs_replace(root, proc, name)
            except Lost:
                conn.close()
                conn = None
            except OSError as e:
                if e.errno not in LOST_ERRNOS:
                    raise
                os.close(root)
                root = None
        if root is not None:
            os.close(root)
        if conn is not None:
            conn.close()

    def fs_read(self, conn, root, proc, name):
        op = self.hist.invoke(proc, name, "read")
        try:
            st, _ = self.barrier(conn)
        except Lost:
            self.done(op, "unknown", err="connection lost")
            raise
        if st != 0:
            self.done(op, "fail", err=os.strerror(st))
            return
        try:
            fd = os.open(name, os.O_RDONLY, dir_fd=root)
        except FileNotFoundError:
            self.done(op, "ok", None)
            return
        except OSError as e:
            self.done(op, "unknown", err=os.strerror(e.errno))
            if e.errno in LOST_ERRNOS:
                raise
            return
        try:
            data = b""
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            self.done(op, "unknown", err=os.strerror(e.errno))
            if e.errno in LOST_ERRNOS:
                raise
            return
        finally:
            os.close(fd)
        self.done(op, "ok", data.decode(errors="replace"))

    def fs_replace(self, root, proc, name):
        val = self.unique(proc)
        tmp = ".tmp-" + val
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=root)
            try:
                os.write(fd, val.encode())
            finally:
                os.close(fd)  # commits the content
        except OSError as e:
            if e.errno in LOST_ERRNOS:
                raise
            return  # the file was not touched: nothing to record
        op = self.hist.invoke(proc, name, "write", value=val)
        try:
            os.rename(tmp, name, src_dir_fd=root, dst_dir_fd=root)
        except OSError as e:
            definite = e.errno in (errno.EROFS, errno.EAGAIN, errno.ENOENT)
            self.done(op, "fail" if definite else "unknown",
                               err=os.strerror(e.errno))
            if e.errno in LOST_ERRNOS:
                raise
            return
        self.done(op, "ok")


# --- the nemesis ----------------------------------------------------------------


NEMESES = ("kill", "isolate", "cut", "partition", "unplug")


class Nemesis:
    def __init__(self, args, nodes, stop, net):
        self.args, self.nodes, self.stop, self.net = args, nodes, stop, net
        self.rng = random.Random("%d/nemesis" % args.seed)
        self.counts = dict.fromkeys(NEMESES, 0)
        self.error = None

    def leader(self):
        for n in self.nodes:
            if not n.up():
                continue
            try:
                st, body = ctl_once(n.sock, "status", "--json")
                if st == 0:
                    return json.loads(body).get("leader", 0)
            except (OSError, Lost, ValueError):
                pass
        return 0

    def fault(self, node, peer, mode):
        try:
            ctl_once(node.sock, "debug-fault", str(peer), mode)
        except (OSError, Lost):
            pass  # a node that is down has no faults to set or clear

    def heal(self):
        for n in self.nodes:
            if n.up():
                self.fault(n, 0, "none")
        if self.net:
            self.net.heal()

    def partition(self):
        """iptables: a node cut from both others, or one link cut one way."""
        if self.rng.random() < 0.5:
            n = self.rng.choice(self.nodes)
            say("nemesis: iptables cuts n%d off" % n.i)
            for o in self.nodes:
                if o is not n:
                    self.net.drop(n, o, "both")
                    self.net.drop(o, n, "both")
        else:
            a, b = self.rng.sample(self.nodes, 2)
            mode = self.rng.choice(["in", "out", "both"])
            say("nemesis: iptables drops %s traffic at n%d from/to n%d" % (mode, a.i, b.i))
            self.net.drop(a, b, mode)
        time.sleep(self.rng.uniform(0.5, 4.0))
        self.heal()
        say("nemesis: healed")

    def unplug(self):
        n = self.rng.choice(self.nodes)
        say("nemesis: unplug n%d's cable" % n.i)
        self.net.plug(n, False)
        time.sleep(self.rng.uniform(0.5, 4.0))
        self.heal()
        say("nemesis: healed")

    def run(self):
        try:
            while not self.stop.wait(self.rng.uniform(0.5, 2.5)):
                what = self.rng.choice(self.args.nemesis)
                self.counts[what] += 1
                getattr(self, what)()
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            self.error = e
            self.stop.set()

    def kill(self):
        lid = self.leader()
        if lid and self.rng.random() < 0.5:
            n = self.nodes[lid - 1]
        else:
            n = self.rng.choice(self.nodes)
        say("nemesis: kill -9 n%d%s" % (n.i, " (the leader)" if n.i == lid else ""))
        n.kill()
        time.sleep(self.rng.uniform(0.3, 3.0))
        n.start()
        say("nemesis: n%d restarted" % n.i)

    def isolate(self):
        n = self.rng.choice(self.nodes)
        say("nemesis: isolate n%d" % n.i)
        self.fault(n, 0, "both")
        for o in self.nodes:
            if o is not n:
                self.fault(o, n.i, "both")
        time.sleep(self.rng.uniform(0.5, 4.0))
        self.heal()
        say("nemesis: healed")

    def cut(self):
        a, b = self.rng.sample(self.nodes, 2)
        mode = self.rng.choice(["both", "in", "out"])
        say("nemesis: cut n%d-n%d (%s at n%d)" % (a.i, b.i, mode, a.i))
        self.fault(a, b.i, mode)
        if mode == "both":
            self.fault(b, a.i, "both")
        time.sleep(self.rng.uniform(0.5, 4.0))
        self.heal()
        say("nemesis: healed")


# --- checking ---------------------------------------------------------------------


def to_ops(records):
    """The checker's ops for one key or file (the records of one history)."""
    ops = []
    for r in records:
        st, kind = r["status"], r["kind"]
        if st == "fail" or st == "pending":
            continue
        info = {"err": r["err"]} if r["err"] else {}
        if "if_version" in r:
            info["if_version"] = r["if_version"]
        ret = r["ret"] if st != "unknown" else None
        if kind == "read":
            if st != "ok":
                continue
            op = L.Op(L.READ, value=r["value"])
        elif kind == "write":
            op = L.Op(L.WRITE, value=r["value"])
        elif st == "mismatch":
            op = L.Op(L.CASFAIL, expect=r["expect"])
        else:
            op = L.Op(L.CAS, value=r["value"], expect=r["expect"])
        op.invoke, op.ret, op.proc, op.info = r["invoke"], ret, r["proc"], info
        ops.append(op)
    return ops


def check_monotonic(obs):
    """The README's per-node promise for local reads: on one node (one daemon
    process), a read never shows an older version of a key than a read that
    returned before it began, or than a write that was applied there before
    (read-your-writes). Versions only grow with the log, except through a
    delete: absent answers are left out. Returns the violations found, as
    (earlier, later) observation pairs."""
    groups = {}
    for o in obs:
        groups.setdefault(o[:3], []).append(o)
    bad = []
    for group in groups.values():
        group.sort(key=lambda o: o[3])
        done = sorted(group, key=lambda o: o[4])
        best, j = None, 0
        for o in group:
            while j < len(done) and done[j][4] < o[3]:
                if best is None or done[j][5] > best[5]:
                    best = done[j]
                j += 1
            if best is not None and o[5] < best[5]:
                bad.append((best, o))
    return bad


def check_all(hist, max_steps):
    by_key = {}
    for r in hist.ops:
        by_key.setdefault(r["key"], []).append(r)
    results = {"histories": 0, "kv": 0, "files": 0, "violations": [], "inconclusive": [],
               "max_ops": 0}
    for key in sorted(by_key):
        ops = to_ops(by_key[key])
        results["histories"] += 1
        results["kv" if key.startswith("lin/") else "files"] += 1
        results["max_ops"] = max(results["max_ops"], len(ops))
        try:
            ok = L.check(ops, None, max_steps)
        except L.Budget:
            results["inconclusive"].append(key)
            continue
        if not ok:
            results["violations"].append((key, L.minimal_window(ops, None)))
    return results


# --- the run ------------------------------------------------------------------------


def final_reads(clients, nodes, hist, keys, files):
    """Reads every key and file on every node (fresh reads, recorded)."""
    for n in nodes:
        conn = Ctl(n.sock)
        proc = "final-n%d" % n.i
        clients.local.node = n
        for k in sorted(keys):
            clients.kv_read(conn, proc, k, {})
        root = clients.open_root(n)
        if root is None:
            raise RuntimeError("n%d has no mount at the end" % n.i)
        for f in sorted(files):
            clients.fs_read(conn, root, proc, f)
        os.close(root)
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="the build dir (fs/omnifsd)")
    ap.add_argument("--dir", required=True, help="the cluster dir (nodeI/omnifs.conf, mnt/nodeI)")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kv-clients", type=int, default=2, help="per node")
    ap.add_argument("--fs-clients", type=int, default=1, help="per node")
    ap.add_argument("--keys", type=int, default=2, help="KV keys per generation")
    ap.add_argument("--files", type=int, default=2, help="files per generation")
    ap.add_argument("--generation-seconds", type=float, default=5)
    ap.add_argument("--read-ratio", type=float, default=0.4)
    ap.add_argument("--nemesis", default=None,
                    help="comma-separated: kill, isolate, cut (the fault switch), partition, "
                    "unplug (need --netns); 'none' for none. Default: all that apply")
    ap.add_argument("--netns", action="store_true",
                    help="run each node in a network namespace of its own (root)")
    ap.add_argument("--max-steps", type=int, default=2_000_000, help="search budget per history")
    ap.add_argument("--history", help="write every operation here (JSON lines)")
    ap.add_argument("--unsafe-local-reads", action="store_true",
                    help="check plain local reads (no barrier) as if linearizable: they are "
                    "not, so with isolations this finds violations (a check of the check)")
    args = ap.parse_args()
    if args.nemesis is None:
        args.nemesis = "kill,isolate,cut" + (",partition,unplug" if args.netns else "")
    args.nemesis = [] if args.nemesis == "none" else args.nemesis.split(",")
    for w in args.nemesis:
        if w not in NEMESES:
            ap.error("unknown nemesis %r" % w)
        if w in ("partition", "unplug") and not args.netns:
            ap.error("nemesis %s needs --netns" % w)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    faulthandler.register(signal.SIGUSR1)  # kill -USR1: every thread's stack
    nodes = [Node(args, i) for i in range(1, args.nodes + 1)]
    hist = History()
    stop = threading.Event()
    clients = Clients(args, nodes, hist, stop)
    net = Net(args, nodes) if args.netns else None
    nemesis = Nemesis(args, nodes, stop, net)
    threads = []
    rc = 1
    try:
        if net:
            net.setup()
        for n in nodes:
            n.launch()
        for n in nodes:
            n.wait_ready()
        say("lincheck: seed %d, %g s, %d nodes%s, %d KV and %d file clients per node, "
            "nemesis %s" % (args.seed, args.seconds, args.nodes,
                            " in network namespaces" if net else "", args.kv_clients,
                            args.fs_clients, ",".join(args.nemesis) or "none"))
        for n in nodes:
            for c in range(args.kv_clients):
                threads.append(threading.Thread(target=clients.guarded,
                                                args=(clients.kv_client, n, c)))
            for c in range(args.fs_clients):
                threads.append(threading.Thread(target=clients.guarded,
                                                args=(clients.fs_client, n, c)))
        if args.nemesis:
            threads.append(threading.Thread(target=nemesis.run))
        for t in threads:
            t.daemon = True
            t.start()
        early = stop.wait(args.seconds)
        stop.set()
        for t in threads:
            t.join(CTL_TIMEOUT_S + 45)
            if t.is_alive():
                raise RuntimeError("a client or the nemesis is stuck")
        if nemesis.error:
            raise RuntimeError("nemesis: %s" % nemesis.error)
        if clients.errors:
            raise RuntimeError("clients: %s" % "; ".join(clients.errors))
        if early:
            raise RuntimeError("the run stopped early")
        nemesis.heal()
        for n in nodes:
            if not n.up():
                n.start()
        for n in nodes:
            wait_quorum(n)
        keys = {r["key"] for r in hist.ops if r["key"].startswith("lin/")}
        files = {r["key"] for r in hist.ops if not r["key"].startswith("lin/")}
        final_reads(clients, nodes, hist, keys, files)
        if not digests_agree(nodes):
            say("FAIL: the nodes' state digests differ after the run")
            return 1
        say("the nodes' state digests agree")
        for n in nodes:
            st = n.stop()
            if st != 0:
                say("FAIL: n%d exited with %s on SIGTERM" % (n.i, st))
                return 1
        rc = report(args, hist, nemesis, nodes, clients)
        return rc
    finally:
        stop.set()
        for n in nodes:
            if n.up():
                n.kill()
        if net:
            net.teardown()


def report(args, hist, nemesis, nodes, clients):
    if args.history:
        with open(args.history, "w") as f:
            for r in hist.ops:
                f.write(json.dumps(r) + "\n")
    counts = {}
    for r in hist.ops:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    kinds = {}
    for r in hist.ops:
        k = ("kv " if r["key"].startswith("lin/") else "file ") + r["kind"]
        kinds[k] = kinds.get(k, 0) + 1
    t = time.monotonic()
    res = check_all(hist, args.max_steps)
    mono = check_monotonic(clients.obs)
    check_s = time.monotonic() - t
    print("operations:  %d (%s)" % (len(hist.ops), ", ".join(
        "%s %d" % kv for kv in sorted(kinds.items()))))
    print("outcomes:    ok %d, failed %d, cas mismatch %d, unknown %d" % (
        counts.get("ok", 0), counts.get("fail", 0), counts.get("mismatch", 0),
        counts.get("unknown", 0)))
    causes = {}
    for r in hist.ops:
        if r["status"] in ("fail", "unknown"):
            c = "%s: %s" % (r["status"], r["err"] or "?")
            causes[c] = causes.get(c, 0) + 1
    if causes:
        print("             %s" % ", ".join("%s %d" % kv for kv in sorted(causes.items())))
    c = nemesis.counts
    print("nemesis:     %d kills, %d isolations, %d link cuts (fault switch); %d iptables "
          "partitions, %d unplugged cables" % (c["kill"], c["isolate"], c["cut"],
                                                c["partition"], c["unplug"]))
    stuck = sum(n.stuck_kills for n in nodes)
    if stuck:
        # The guardian (fs/guard.c) aborts a dead daemon's connection: a
        # daemon still stuck 5 s after kill -9 is a bug, not weather.
        print("STUCK:       %d kill -9 left the daemon stuck in the kernel until the test "
              "aborted its FUSE connection" % stuck)
    print("histories:   %d checked (%d keys, %d files; up to %d ops each) in %.1f s" % (
        res["histories"], res["kv"], res["files"], res["max_ops"], check_s))
    print("violations:  %d" % len(res["violations"]))
    print("local reads: %d versions seen on the nodes, %d monotonic-read or "
          "read-your-writes violations" % (len(clients.obs), len(mono)))
    for a, b in mono[:10]:
        print("  n%d (process %d) %s: @%d seen in [%d, %d], then @%d in [%d, %d]" % (
            a[0], a[1], a[2], a[5], a[3], a[4], b[5], b[3], b[4]))
    if res["inconclusive"]:
        print("inconclusive (search budget): %d: %s" % (
            len(res["inconclusive"]), " ".join(res["inconclusive"])))
    for key, (start, end, window) in res["violations"]:
        print("\nNOT LINEARIZABLE: %s; the shortest window no state explains: [%d, %d] us "
              "since the start, %d ops:" % (key, start, end, len(window)))
        for op in window:
            print("  " + op.describe())
    if args.history:
        print("history:     %s" % args.history)
    return 1 if res["violations"] or res["inconclusive"] or mono or stuck else 0


if __name__ == "__main__":
    sys.exit(main())
