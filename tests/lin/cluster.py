"""The cluster lincheck.py runs: its daemons (started, killed -9 with the
unit's ExecStopPost, restarted), their control sockets (fs/base/ctl.h, one
persistent connection per client) and, with --netns, the network namespaces
they run in and the faults made there (iptables, unplugged cables).
Standard library only."""

import json
import os
import socket
import struct
import subprocess
import time

CTL_TIMEOUT_S = 15  # longer than the daemons' commit_timeout_ms
T0 = time.monotonic_ns()


def now_us():
    return (time.monotonic_ns() - T0) // 1000


def say(msg):
    print("[%9.3f] %s" % (now_us() / 1e6, msg), flush=True)


# --- the control socket ------------------------------------------------------


class Lost(Exception):
    """The connection broke or timed out: the outcome is unknown."""


class Ctl:
    """One persistent connection to a daemon's control socket."""

    def __init__(self, path, timeout=CTL_TIMEOUT_S):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        try:
            self.s.connect(path)
        except OSError:
            self.s.close()
            raise

    def close(self):
        self.s.close()

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise Lost("connection closed")
            buf += chunk
        return buf

    def call(self, *args):
        """(status, body): status 0 or a positive errno. Raises Lost."""
        req = b"".join(a.encode() + b"\0" for a in args)
        try:
            self.s.sendall(struct.pack("<I", len(req)) + req)
            status, n = struct.unpack("<II", self._recv(8))
            return status, self._recv(n)
        except (OSError, socket.timeout) as e:
            raise Lost(str(e)) from e


def ctl_once(path, *args, timeout=10):
    c = Ctl(path, timeout)
    try:
        return c.call(*args)
    finally:
        c.close()


# --- the daemons -------------------------------------------------------------


class Node:
    def __init__(self, args, i):
        self.i = i
        base = os.path.join(args.dir, "node%d" % i)
        self.conf = os.path.join(base, "omnifs.conf")
        self.sock = os.path.join(base, "ctl.sock")
        self.log = os.path.join(base, "log")
        self.pidfile = os.path.join(base, "pid")
        self.connfile = os.path.join(base, "fuse-conn")
        self.conn = None
        self.stuck_kills = 0
        self.wrap = []  # a command that enters the node's network namespace
        self.incarnation = 0  # daemon processes started so far
        self.mnt = os.path.join(args.dir, "mnt", "node%d" % i)
        self.omnifsd = os.path.join(args.build, "fs", "omnifsd")
        self.proc = None

    def start(self, deadline_s=60):
        self.launch()
        self.wait_ready(deadline_s)

    def launch(self):
        self.incarnation += 1
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(self.wrap + [self.omnifsd, "-c", self.conf], stdout=logf,
                                         stderr=subprocess.STDOUT)
        with open(self.pidfile, "w") as f:
            f.write("%d\n" % self.proc.pid)

    def wait_ready(self, deadline_s=60):
        """Until it answers on its control socket and its mount is in place
        (a new cluster's nodes mount once a quorum has created the root)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("n%d exited with %d at start (see %s)" %
                                   (self.i, self.proc.returncode, self.log))
            try:
                if ctl_once(self.sock, "status", timeout=2)[0] == 0 and self.mounted():
                    self.conn = self.fuse_connection()
                    with open(self.connfile, "w") as f:
                        f.write("%s\n" % self.conn)
                    return
            except (OSError, Lost):
                pass
            time.sleep(0.05)
        raise RuntimeError("n%d did not answer and mount within %d s" % (self.i, deadline_s))

    def fuse_connection(self):
        """The mount's FUSE connection number (its device's minor), or None."""
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == self.mnt:
                    major, minor = fields[2].split(":")
                    return minor if major == "0" else None
        return None

    def mounted(self):
        try:
            with open("/proc/mounts") as f:
                return any(line.split()[1] == self.mnt for line in f)
        except OSError:
            return False

    def kill(self):
        """kill -9, then what the unit's ExecStopPost does: lazily unmount."""
        if self.proc:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                # A thread of the daemon waits in the kernel for an answer
                # only the daemon could give (e.g. an invalidation waiting
                # for a directory's lock held by a create in progress):
                # the process cannot end and its mount hangs until the
                # connection is aborted.
                self.stuck_kills += 1
                say("n%d did not end within 5 s of kill -9 (stuck in the kernel on its own "
                    "mount): aborting its FUSE connection %s" % (self.i, self.conn))
                self.abort_connection()
                self.proc.wait(30)
            self.proc = None
            os.unlink(self.pidfile)
        if self.mounted():
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], check=False)

    def abort_connection(self):
        if self.conn:
            with open("/sys/fs/fuse/connections/%s/abort" % self.conn, "w") as f:
                f.write("1")

    def stop(self):
        """SIGTERM; the exit status (None if it was not running)."""
        if not self.proc:
            return None
        self.proc.terminate()
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            return "a timeout (killed)"
        self.proc = None
        os.unlink(self.pidfile)
        return rc

    def up(self):
        return self.proc is not None


# --- network namespaces ------------------------------------------------------------


class Net:
    """With --netns: node I runs in namespace PREFIX-nI, with 10.77.0.I/24 on
    a veth cabled to a bridge in PREFIX-sw, and the configs' [peers]
    addresses are moved there (mounts and control sockets stay shared: the
    daemons are entered into the network namespace only). Partitions are
    iptables DROP rules inside the node namespaces (one way or both);
    unplugging sets the node's port on the switch down. Every namespace made
    is listed in <dir>/netns for the test's cleanup."""

    def __init__(self, args, nodes):
        self.prefix = "lin%d" % os.getpid()
        self.nodes = nodes
        self.listfile = os.path.join(args.dir, "netns")
        self.made = []

    @staticmethod
    def run(*cmd):
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))

    def ns(self, node):
        return "%s-n%d" % (self.prefix, node.i)

    @staticmethod
    def addr(node):
        return "10.77.0.%d" % node.i

    def add_ns(self, name):
        self.run("ip", "netns", "add", name)
        self.made.append(name)
        with open(self.listfile, "a") as f:
            f.write(name + "\n")

    def setup(self):
        sw = self.prefix + "-sw"
        self.add_ns(sw)
        self.run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        self.run("ip", "-n", sw, "link", "set", "br0", "up")
        for n in self.nodes:
            ns = self.ns(n)
            self.add_ns(ns)
            self.run("ip", "-n", ns, "link", "set", "lo", "up")
            self.run("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name",
                     "n%d" % n.i, "netns", sw)
            self.run("ip", "-n", sw, "link", "set", "n%d" % n.i, "master", "br0", "up")
            self.run("ip", "-n", ns, "addr", "add", self.addr(n) + "/24", "dev", "eth0")
            self.run("ip", "-n", ns, "link", "set", "eth0", "up")
            n.wrap = ["nsenter", "--net=/run/netns/" + ns, "--"]
            with open(n.conf) as f:
                lines = f.read().split("\n")
            section = ""
            for k, line in enumerate(lines):
                if line.startswith("["):
                    section = line
                elif section == "[peers]" and " = 127.0.0.1:" in line:
                    pid, port = line.split(" = 127.0.0.1:")
                    lines[k] = "%s = 10.77.0.%s:%s" % (pid, pid, port)
            with open(n.conf, "w") as f:
                f.write("\n".join(lines))

    def drop(self, at, peer, mode):
        """At node at, drop what comes from peer (in), goes to it (out), or both."""
        ns = self.ns(at)
        if mode in ("in", "both"):
            self.run("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-s", self.addr(peer),
                     "-j", "DROP")
        if mode in ("out", "both"):
            self.run("ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-d",
                     self.addr(peer), "-j", "DROP")

    def plug(self, node, up):
        self.run("ip", "-n", self.prefix + "-sw", "link", "set", "n%d" % node.i,
                 "up" if up else "down")

    def heal(self):
        for n in self.nodes:
            self.run("ip", "netns", "exec", self.ns(n), "iptables", "-F")
            self.plug(n, True)

    def teardown(self):
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
        self.made = []


def wait_quorum(node, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            st, body = ctl_once(node.sock, "status", "--json")
            s = json.loads(body) if st == 0 else {}
            if s.get("quorum") and s.get("leader"):
                return
        except (OSError, Lost, ValueError):
            pass
        time.sleep(0.05)
    raise RuntimeError("n%d has no leader with a quorum after %d s" % (node.i, deadline_s))


def digests_agree(nodes, deadline_s=30):
    """Every node at the same applied index and state digest (a barrier is
    an entry itself: barriers first, then poll the digests alone)."""
    for n in nodes:
        ctl_once(n.sock, "barrier")
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        ds = set()
        for n in nodes:
            ds.add(ctl_once(n.sock, "digest")[1])
        if len(ds) == 1:
            return True
        time.sleep(0.2)
    return False
