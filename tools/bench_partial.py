#!/usr/bin/env python3
"""Partial connectivity, measured: for each scenario, the time from a cut
until every node that reaches a majority (directly or through others) can
write again, and its stale-read window (how long a write made on the other
side of the cut stays invisible to a plain local read there), for omnifs and,
side by side, etcd under the same cuts.

Each node runs in a network namespace of its own on a private switch (as in
tests/integration/test_partial_netns.sh); links are cut with iptables DROP
rules at both ends, both ways. Scenarios: with 3 and 5 nodes, the cut of the
leader's link to one follower (the paper's chained scenario) and of a link
between two followers; with 5 nodes, the paper's quorum-loss (only one
follower A keeps its links) and constrained (A cut from the leader C, then C
isolated and the others linked to A alone; measured from the second cut)
scenarios. Writes are sent to each node in turn, each through its own
client, retried every attempt timeout (1 s) until one succeeds or the cap
passes. omnifs: plaintext links (etcd's are too), release build, its default
timing but for election_timeout_ms (200, as the README's cluster). etcd:
3.4 defaults (heartbeat 100 ms, election 1000 ms, no pre-vote), through its
JSON gateway; local reads are serializable ranges.

    sudo tools/bench_partial.py [--build build/release] [--cap 15] [--no-etcd]

Needs root (namespaces, iptables); etcd is used if it is on the PATH.
Prints one table; nothing is asserted (the test suite holds the assertions).
"""

import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ATTEMPT_S = 1.0
PREFIX = "bp%d" % os.getpid()


def run(*cmd):
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))


def addr(i):
    return "10.78.0.%d" % i


def ns(i):
    return "%s-m%d" % (PREFIX, i)


def wrap(i):
    return ["nsenter", "--net=/run/netns/" + ns(i), "--"]


# --- clients, one per node, each inside its node's namespace -------------------
#
# The worker mode of this script: reads one JSON request a line, answers one
# JSON line. {"op": "put"|"get", "key", "val"} -> {"ok": bool, "val": ...}.


def omnifs_call(sock, *args, timeout=ATTEMPT_S):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        req = b"".join(a.encode() + b"\0" for a in args)
        s.sendall(struct.pack("<I", len(req)) + req)
        buf = b""
        while len(buf) < 8:
            chunk = s.recv(8 - len(buf))
            if not chunk:
                raise OSError("closed")
            buf += chunk
        status, n = struct.unpack("<II", buf)
        body = b""
        while len(body) < n:
            chunk = s.recv(n - len(body))
            if not chunk:
                raise OSError("closed")
            body += chunk
        return status, body
    finally:
        s.close()


def etcd_call(url, path, req, timeout=ATTEMPT_S):
    data = json.dumps(req).encode()
    r = urllib.request.urlopen(urllib.request.Request(url + path, data=data), timeout=timeout)
    return json.loads(r.read())


def b64(s):
    return base64.b64encode(s.encode()).decode()


def worker(system, target):
    for line in sys.stdin:
        q = json.loads(line)
        a = {"ok": False}
        try:
            if system == "omnifs" and q["op"] == "put":
                st, _ = omnifs_call(target, "kv-put", q["key"], q["val"])
                a["ok"] = st == 0
            elif system == "omnifs":
                st, body = omnifs_call(target, "kv-get", q["key"])
                a["ok"] = st == 0
                a["val"] = body.decode() if st == 0 else None
            elif q["op"] == "put":
                etcd_call(target, "/v3/kv/put", {"key": b64(q["key"]), "value": b64(q["val"])})
                a["ok"] = True
            else:
                r = etcd_call(target, "/v3/kv/range", {"key": b64(q["key"]),
                                                       "serializable": True})
                kvs = r.get("kvs") or []
                a["ok"] = True
                a["val"] = base64.b64decode(kvs[0]["value"]).decode() if kvs else None
        except Exception as e:  # a timeout, a refused connection: not written
            a["err"] = str(e)
        print(json.dumps(a), flush=True)


class Client:
    def __init__(self, system, i, target):
        self.p = subprocess.Popen(wrap(i) + [sys.executable, os.path.abspath(__file__),
                                             "--worker", system, target],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()

    def ask(self, **q):
        with self.lock:
            self.p.stdin.write(json.dumps(q) + "\n")
            self.p.stdin.flush()
            return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait()


# --- the two systems ---------------------------------------------------------


class System:
    """What both systems share: member i's process in procs[i], its client in
    clients[i]; stop ends the clients, then the processes."""

    def stop(self):
        for c in self.clients.values():
            c.close()
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            p.wait()


class Omnifs(System):
    name = "omnifs"

    def __init__(self, args, n, tmp):
        self.n, self.dir, self.build = n, os.path.join(tmp, "omnifs%d" % n), args.build
        self.procs, self.clients = {}, {}

    def sock(self, i):
        return os.path.join(self.dir, "node%d" % i, "ctl.sock")

    def start(self):
        for i in range(1, self.n + 1):
            d = os.path.join(self.dir, "node%d" % i)
            os.makedirs(d)
            with open(os.path.join(d, "omnifs.conf"), "w") as f:
                f.write("[node]\nid = %d\ncluster = bench-%s\ndata_dir = %s/data\n"
                        "control_socket = %s\nlog_level = notice\n[peers]\n" %
                        (i, PREFIX, d, self.sock(i)))
                for j in range(1, self.n + 1):
                    f.write("%d = %s:7000\n" % (j, addr(j)))
                f.write("[timing]\nelection_timeout_ms = 200\n[security]\nplaintext = true\n"
                        "plaintext_allow_network = true\n")
            with open(os.path.join(d, "log"), "ab") as log:
                self.procs[i] = subprocess.Popen(
                    wrap(i) + [os.path.join(self.build, "fs", "omnifsd"), "-c",
                               os.path.join(d, "omnifs.conf")], stdout=log,
                    stderr=subprocess.STDOUT)
        for i in range(1, self.n + 1):
            wait_for(lambda i=i: os.path.exists(self.sock(i)), 30, "n%d's socket" % i)
            self.clients[i] = Client("omnifs", i, self.sock(i))

    def leader(self):
        try:
            st, body = omnifs_call(self.sock(1), "status", "--json")
            return json.loads(body)["leader"] if st == 0 else 0
        except (OSError, ValueError):
            return 0


class Etcd(System):
    name = "etcd"

    def __init__(self, args, n, tmp):
        self.n, self.dir = n, os.path.join(tmp, "etcd%d" % n)
        self.procs, self.clients, self.ids = {}, {}, {}

    def start(self):
        cluster = ",".join("e%d=http://%s:2380" % (i, addr(i)) for i in range(1, self.n + 1))
        for i in range(1, self.n + 1):
            d = os.path.join(self.dir, "e%d" % i)
            os.makedirs(d)
            with open(d + ".log", "ab") as log:
                self.procs[i] = subprocess.Popen(wrap(i) + [
                    "etcd", "--name", "e%d" % i, "--data-dir", d,
                    "--listen-client-urls", "http://127.0.0.1:2379,http://%s:2379" % addr(i),
                    "--advertise-client-urls", "http://%s:2379" % addr(i),
                    "--listen-peer-urls", "http://%s:2380" % addr(i),
                    "--initial-advertise-peer-urls", "http://%s:2380" % addr(i),
                    "--initial-cluster", cluster, "--initial-cluster-state", "new",
                    "--initial-cluster-token", PREFIX], stdout=log, stderr=subprocess.STDOUT)
        for i in range(1, self.n + 1):
            self.clients[i] = Client("etcd", i, "http://127.0.0.1:2379")

    def status(self, i):
        """(member id, leader id) as member i says, or None."""
        out = subprocess.run(wrap(i) + [sys.executable, os.path.abspath(__file__), "--status",
                                        "http://127.0.0.1:2379"], capture_output=True, text=True)
        try:
            r = json.loads(out.stdout)
            return int(r["header"]["member_id"]), int(r["leader"])
        except (ValueError, KeyError):
            return None

    def leader(self):
        st = {}
        for i in range(1, self.n + 1):
            s = self.status(i)
            if s:
                st[s[0]] = i
                lead = s[1]
        return st.get(lead, 0) if st else 0


# --- the network -------------------------------------------------------------


def net_up(n):
    sw = PREFIX + "-sw"
    run("ip", "netns", "add", sw)
    run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
    run("ip", "-n", sw, "link", "set", "br0", "up")
    for i in range(1, n + 1):
        run("ip", "netns", "add", ns(i))
        run("ip", "-n", ns(i), "link", "set", "lo", "up")
        run("ip", "link", "add", "eth0", "netns", ns(i), "type", "veth", "peer", "name",
            "m%d" % i, "netns", sw)
        run("ip", "-n", sw, "link", "set", "m%d" % i, "master", "br0", "up")
        run("ip", "-n", ns(i), "addr", "add", addr(i) + "/24", "dev", "eth0")
        run("ip", "-n", ns(i), "link", "set", "eth0", "up")


def net_down(n):
    for i in range(1, n + 1):
        subprocess.run(["ip", "netns", "del", ns(i)], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "netns", "del", PREFIX + "-sw"], stderr=subprocess.DEVNULL)


def cut(a, b):
    for x, y in ((a, b), (b, a)):
        run("ip", "netns", "exec", ns(x), "iptables", "-I", "INPUT", "-s", addr(y), "-j", "DROP")
        run("ip", "netns", "exec", ns(x), "iptables", "-I", "OUTPUT", "-d", addr(y), "-j",
            "DROP")


def heal(n):
    for i in range(1, n + 1):
        run("ip", "netns", "exec", ns(i), "iptables", "-F")


def wait_for(pred, secs, what):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


# --- measuring -----------------------------------------------------------------


def healthy(sysm, tag):
    """Every node writes, and the cluster has a leader."""
    for i in range(1, sysm.n + 1):
        wait_for(lambda i=i: sysm.clients[i].ask(op="put", key="h", val=tag)["ok"], 60,
                 "%s n%d to take a write" % (sysm.name, i))
    wait_for(lambda: sysm.leader() != 0, 30, sysm.name + " to name a leader")


def measure(sysm, label, cuts, writers, marker_at, cap):
    """Cuts the links, then: per writer, the time to its first successful
    write; per writer, how long the marker written at marker_at stays
    invisible to its local reads. Returns (max recovery, max window,
    writers without either within cap)."""
    # Readers of their own, started before the cut (a client takes a while
    # to start: it would count in the window).
    readers = {i: Client(sysm.name, i, sysm.clients[i].p.args[-1]) for i in writers}
    t0 = time.monotonic()
    for a, b in cuts:
        cut(a, b)
    rec, win, stuck = {}, {}, []
    marker = {"t": None}

    def write_until_ok(i):
        k = 0
        while time.monotonic() - t0 < cap:
            k += 1
            if sysm.clients[i].ask(op="put", key="w-%s-n%d-%d" % (label, i, k), val="x")["ok"]:
                rec[i] = time.monotonic() - t0
                return

    def mark():
        while time.monotonic() - t0 < cap:
            if sysm.clients[marker_at].ask(op="put", key="m-" + label, val=label)["ok"]:
                marker["t"] = time.monotonic()
                return

    def read_until_seen(i):
        c = readers[i]
        while time.monotonic() - t0 < cap:
            if c.ask(op="get", key="m-" + label).get("val") == label:
                seen = time.monotonic()
                while marker["t"] is None and time.monotonic() - t0 < cap:
                    time.sleep(0.001)
                if marker["t"] is not None:
                    win[i] = max(0.0, seen - marker["t"])
                return
            time.sleep(0.005)

    threads = [threading.Thread(target=mark)]
    threads += [threading.Thread(target=write_until_ok, args=(i,)) for i in writers]
    threads += [threading.Thread(target=read_until_seen, args=(i,)) for i in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in readers.values():
        c.close()
    stuck = sorted(set(i for i in writers if i not in rec or i not in win))
    fmt = lambda d: ("%.2f" % max(d.values())) if len(d) == len(writers) else ">%d" % cap
    return fmt(rec), fmt(win), stuck


LABELS = {3: ["leader-link", "follower-link"],
          5: ["leader-link", "follower-link", "quorum-loss", "constrained"]}


def scenario(label, n, L):
    """(cuts, writers, marker node, phase-one cuts) of a scenario, for a
    cluster of n led by L now."""
    others = [i for i in range(1, n + 1) if i != L]
    f1, f2 = others[0], others[1]
    everyone = list(range(1, n + 1))
    if label == "leader-link":
        return [(L, f1)], everyone, f2, []
    if label == "follower-link":
        return [(f1, f2)], everyone, L, []
    A, C = others[0], L
    if label == "quorum-loss":
        rest = [i for i in everyone if i != A]
        return [(x, y) for x in rest for y in rest if x < y], everyone, A, []
    bde = [i for i in everyone if i not in (A, C)]
    phase2 = [(C, i) for i in bde] + [(x, y) for x in bde for y in bde if x < y]
    return phase2, [A] + bde, A, [(A, C)]


def bench(args, system, n, tmp, rows):
    sysm = system(args, n, tmp)
    sysm.start()
    try:
        healthy(sysm, "start")
        for label in LABELS[n]:
            healthy(sysm, label)
            L = sysm.leader()
            cuts, writers, marker_at, phase1 = scenario(label, n, L)
            if phase1:
                for a, b in phase1:
                    cut(a, b)
                time.sleep(1.0)  # the paper's "shortly after": A lags meanwhile
            rec, win, stuck = measure(sysm, label, cuts, writers, marker_at, args.cap)
            heal(n)
            rows.append((n, label, sysm.name, "n%d" % L, rec, win,
                         " ".join("n%d" % i for i in stuck) or "-"))
            print("  %d nodes, %s, %s, leader %s: every majority node writes again after "
                  "%s s, stale-read window %s s, not recovered: %s" % rows[-1], flush=True)
    finally:
        sysm.stop()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(sys.argv[2], sys.argv[3])
    if len(sys.argv) > 1 and sys.argv[1] == "--status":
        print(json.dumps(etcd_call(sys.argv[2], "/v3/maintenance/status", {})))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--cap", type=int, default=15, help="seconds to wait per measure")
    ap.add_argument("--no-etcd", action="store_true")
    ap.add_argument("--nodes", default="3,5")
    ap.add_argument("--keep", action="store_true", help="keep the logs and data dirs")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    systems = [Omnifs]
    if not args.no_etcd and shutil.which("etcd"):
        systems.append(Etcd)
    elif not args.no_etcd:
        print("etcd is not installed: omnifs alone")
    tmp = tempfile.mkdtemp(prefix="omnifs-bench-partial.")
    rows = []
    print("logs in " + tmp)
    try:
        net_up(5)
        for n in [int(x) for x in args.nodes.split(",")]:
            for system in systems:
                heal(5)
                bench(args, system, n, tmp, rows)
    finally:
        net_down(5)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| nodes | scenario | system | leader | every majority node writes again (s) "
          "| stale-read window (s) | nodes not recovered within %d s |" % args.cap)
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %s | %s | %s | %s | %s | %s |" % r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
