#!/usr/bin/env python3
"""Lock clients for test_locks.sh, on the mounts of a real cluster.

  counter LOCKFILE COUNTER SECONDS OUT
      increments the number in COUNTER under flock(LOCKFILE) until SECONDS
      passed or the mount fails; writes "acked unknown" to OUT: increments
      whose write was acknowledged, and those whose outcome is unknown (the
      write failed, so it may or may not have landed).
  ranges FILE1 FILE2 FILE3
      POSIX byte-range locks on one file through three nodes' mounts, from
      one process (each node is another lock owner): conflicts, F_GETLK of a
      holder on another node (l_pid 0), splits by a partial unlock.
  eintr LOCKFILE
      a blocking flock interrupted by a signal after a second must fail
      with EINTR (exit 0); exit 1 if it got the lock.
"""
import errno
import fcntl
import os
import signal
import struct
import sys
import time

FLOCK = "hhxxxxqqixxxx"  # struct flock on x86_64 and aarch64 Linux


def counter(lockfile, path, seconds, out):
    acked = unknown = 0
    end = time.monotonic() + float(seconds)
    try:
        while time.monotonic() < end:
            fd = os.open(lockfile, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with open(path) as f:
                    text = f.read().strip()
                n = int(text) if text else 0
                try:
                    with open(path, "w") as f:
                        f.write("%d\n" % (n + 1))
                except OSError:
                    unknown += 1
                    raise
                acked += 1
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                try:
                    os.close(fd)
                except OSError:
                    pass
    except OSError as e:
        print("counter: stopped: %s" % e, file=sys.stderr)
    with open(out + ".tmp", "w") as f:
        f.write("%d %d\n" % (acked, unknown))
    os.rename(out + ".tmp", out)


def setlk(fd, typ, start, length, wait=False):
    fcntl.fcntl(fd, fcntl.F_SETLKW if wait else fcntl.F_SETLK,
                struct.pack(FLOCK, typ, os.SEEK_SET, start, length, 0))


def getlk(fd, typ, start, length):
    r = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FLOCK, typ, os.SEEK_SET, start, length, 0))
    return struct.unpack(FLOCK, r)


def refused(fd, typ, start, length):
    try:
        setlk(fd, typ, start, length)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    return False


def check(cond, what):
    if not cond:
        print("ranges: FAIL: " + what, file=sys.stderr)
        sys.exit(1)


def eventually(fn, what, seconds=10):
    """F_GETLK reads the node's applied state: poll until it shows."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    check(False, what)


def ranges(p1, p2, p3):
    with open(p1, "w") as f:
        f.write("x" * 1000)
    # A new file reaches the other nodes once they applied its commit.
    for p in (p2, p3):
        eventually(lambda: os.path.exists(p), "%s did not appear" % p)
    f1, f2, f3 = (os.open(p, os.O_RDWR) for p in (p1, p2, p3))
    # Node 1 write-locks bytes 0..9.
    setlk(f1, fcntl.F_WRLCK, 0, 10)
    # Node 2 cannot take byte 9, may take 10..19.
    check(refused(f2, fcntl.F_WRLCK, 9, 1), "n2 took byte 9 under n1's write lock")
    check(refused(f2, fcntl.F_RDLCK, 0, 1), "n2 read-locked byte 0 under n1's write lock")
    setlk(f2, fcntl.F_WRLCK, 10, 10)
    # F_GETLK on node 3 over 5..14: node 1's lock, whole, pid 0 (another node).
    t = eventually(lambda: (lambda r: r if r[0] != fcntl.F_UNLCK else None)(
        getlk(f3, fcntl.F_RDLCK, 5, 10)), "n3's F_GETLK did not show n1's lock")
    check(t[0] == fcntl.F_WRLCK and t[2] == 0 and t[3] == 10,
          "n3's F_GETLK: %r, not a write lock on 0..9" % (t,))
    check(t[4] == 0, "n3's F_GETLK: l_pid %d for a holder on another node, not 0" % t[4])
    # Node 1 unlocks 0..4: that part is free, 5..9 still held.
    setlk(f1, fcntl.F_UNLCK, 0, 5)
    setlk(f3, fcntl.F_WRLCK, 0, 5)
    check(refused(f3, fcntl.F_WRLCK, 5, 1), "n3 took byte 5: the unlock freed more than 0..4")
    # Shared locks: readers on two nodes share 100..199, a writer on a third waits.
    setlk(f1, fcntl.F_RDLCK, 100, 100)
    setlk(f2, fcntl.F_RDLCK, 150, 100)
    check(refused(f3, fcntl.F_WRLCK, 180, 1), "n3 write-locked byte 180 under two readers")
    # A lock to the end of the file (l_len 0) covers bytes past the end.
    setlk(f2, fcntl.F_WRLCK, 5000, 0)
    check(refused(f1, fcntl.F_RDLCK, 10**9, 1), "n1 read-locked past n2's lock to EOF")
    # F_SETLKW waits for a release from another node.
    pid = os.fork()
    if pid == 0:
        time.sleep(0.5)
        os._exit(0)
    # (the child's exit does not release the parent's locks: they are the process's)
    os.waitpid(pid, 0)
    check(refused(f1, fcntl.F_WRLCK, 6000, 1), "a child's exit released the parent's lock")
    # Closing any descriptor of the file releases the process's locks on that node.
    os.close(f2)
    setlk(f1, fcntl.F_WRLCK, 6000, 1, wait=True)
    check(refused(f3, fcntl.F_WRLCK, 6000, 1), "n1's F_SETLKW lock is not held")
    os.close(f1)
    os.close(f3)
    ofd(p1, p2)
    print("ranges: ok")


def ofd(p1, p2):
    """Open file description locks: each open file is its own owner, even
    in one process, and the lock goes with the last close of that file."""
    a, b = os.open(p1, os.O_RDWR), os.open(p1, os.O_RDWR)
    c = os.open(p2, os.O_RDWR)

    def ofd_setlk(fd, typ, start, length):
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(FLOCK, typ, os.SEEK_SET, start, length, 0))

    def ofd_refused(fd, typ, start, length):
        try:
            ofd_setlk(fd, typ, start, length)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        return False

    ofd_setlk(a, fcntl.F_WRLCK, 0, 10)
    check(ofd_refused(b, fcntl.F_WRLCK, 5, 1), "a second open file of one process shared an OFD lock")
    check(ofd_refused(c, fcntl.F_RDLCK, 9, 1), "n2 took byte 9 under n1's OFD lock")
    # A POSIX lock of this process conflicts with it too.
    check(refused(b, fcntl.F_RDLCK, 0, 1), "a POSIX lock shared n1's OFD write lock")
    os.close(b)  # another open file: the OFD lock stays
    check(ofd_refused(c, fcntl.F_WRLCK, 0, 1), "closing another open file freed the OFD lock")
    os.close(a)  # its last close: free
    end = time.monotonic() + 10
    while ofd_refused(c, fcntl.F_WRLCK, 0, 10):
        check(time.monotonic() < end, "the OFD lock outlived its open file")
        time.sleep(0.05)
    os.close(c)


class Interrupted(Exception):
    pass


def eintr(lockfile):
    def on_alarm(sig, frame):
        raise Interrupted()

    signal.signal(signal.SIGALRM, on_alarm)
    fd = os.open(lockfile, os.O_RDWR)
    signal.alarm(1)
    t0 = time.monotonic()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except Interrupted:
        # The handler runs only once the blocked call returned: with EINTR.
        print("eintr: interrupted after %.1f s" % (time.monotonic() - t0))
        sys.exit(0)
    print("eintr: FAIL: got the lock", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"counter": counter, "ranges": ranges, "eintr": eintr}[cmd](*args)
