"""Linearizability of one register with compare-and-set: the checker of lincheck.py.

A history is a list of Op, each with the time it was invoked and the time it
returned (None: unknown outcome, it may take effect at any point after its
invocation, or never). The model is a register whose state is a value or
None (absent):

  write v          state := v
  read -> v        requires state == v
  cas exp -> new   requires state == exp, then state := new
  casfail exp      requires state != exp (a compare-and-set that answered
                   "version mismatch": decided in log order like a write, so
                   it is checked too, as a read that says "not exp")

Operations that definitely did not take effect (EROFS at once, a read that
got no answer) are left out by the caller; an unknown read says nothing and is
left out too. Writes and compare-and-sets with unknown outcome stay in, with
no return time.

The search is Wing and Gong's, with Lowe's memoisation (as in Porcupine and
Knossos' WGL): walk the events in time order, try to linearize a pending
call whose precondition holds, remember every (set of linearized ops, state)
already explored, and backtrack when a return is reached whose op is not yet
linearized. The history is linearizable once every op with a known outcome is
linearized; unknown ones may be left out.

minimal_window() shrinks a violation to the shortest time window that no
start state explains (see window()), which is what a reader needs to see the
bug. Standard library only.
"""

from dataclasses import dataclass, field, replace
from typing import Optional

WRITE, READ, CAS, CASFAIL = "write", "read", "cas", "casfail"


class AnyBut(frozenset):
    """The state of a window's start when it may be anything: any value but
    the ones listed (those a mismatch has already ruled out). The first op
    that observes the state narrows it to one value."""


@dataclass
class Op:
    kind: str  # WRITE, READ, CAS or CASFAIL
    value: object = None  # WRITE/CAS: the value written; READ: the value read
    expect: object = None  # CAS/CASFAIL: the value compared with
    invoke: int = 0  # time of the call (any monotonic unit)
    ret: Optional[int] = None  # time of the answer; None: unknown outcome
    proc: str = ""  # who ran it (for printing)
    info: dict = field(default_factory=dict)  # anything the caller wants printed

    def describe(self):
        if self.kind == WRITE:
            what = "write %r" % (self.value,)
        elif self.kind == READ:
            what = "read -> %r" % (self.value,)
        elif self.kind == CAS:
            what = "cas %r -> %r" % (self.expect, self.value)
        else:
            what = "cas %r -> mismatch" % (self.expect,)
        end = "unknown" if self.ret is None else str(self.ret)
        extra = " ".join("%s=%s" % kv for kv in sorted(self.info.items()))
        return "%-10s [%s, %s] %s%s" % (self.proc, self.invoke, end, what,
                                        "  (" + extra + ")" if extra else "")


def step(state, op):
    """(allowed, next state) of op on state."""
    if isinstance(state, AnyBut):
        if op.kind == WRITE:
            return True, op.value
        if op.kind == READ:
            return op.value not in state, op.value
        if op.kind == CAS:
            return op.expect not in state, op.value
        if op.kind == CASFAIL:
            return True, AnyBut(state | {op.expect})
    if op.kind == WRITE:
        return True, op.value
    if op.kind == READ:
        return state == op.value, state
    if op.kind == CAS:
        return (True, op.value) if state == op.expect else (False, state)
    if op.kind == CASFAIL:
        return state != op.expect, state
    raise ValueError("unknown op kind %r" % (op.kind,))


class _Entry:
    __slots__ = ("op", "idx", "is_call", "match", "prev", "next")

    def __init__(self, op, idx, is_call):
        self.op, self.idx, self.is_call = op, idx, is_call
        self.match = None  # a call's return entry (None if unknown outcome)
        self.prev = self.next = None


def _entries(ops):
    """The doubly linked list of call and return events in time order (a
    call before a return at the same time: they overlap). Returns its head."""
    events = []
    for i, op in enumerate(ops):
        call = _Entry(op, i, True)
        events.append((op.invoke, 0, i, call))
        if op.ret is not None:
            if op.ret < op.invoke:
                raise ValueError("op %d returns before it is invoked" % i)
            r = _Entry(op, i, False)
            call.match = r
            events.append((op.ret, 1, i, r))
    events.sort(key=lambda e: e[:3])
    head = _Entry(None, -1, False)
    prev = head
    for *_, e in events:
        prev.next, e.prev = e, prev
        prev = e
    return head


def _lift(call):
    call.prev.next = call.next
    if call.next:
        call.next.prev = call.prev
    r = call.match
    if r is not None:
        r.prev.next = r.next
        if r.next:
            r.next.prev = r.prev


def _unlift(call):
    r = call.match
    if r is not None:
        r.prev.next = r
        if r.next:
            r.next.prev = r
    call.prev.next = call
    if call.next:
        call.next.prev = call


class Budget(Exception):
    """The search took more steps than allowed: no verdict."""


def check(ops, init=None, max_steps=5_000_000):
    """True if ops (a list of Op on one register starting at init) is
    linearizable. Raises Budget after max_steps search steps."""
    head = _entries(ops)
    definite = sum(1 for op in ops if op.ret is not None)
    linearized, state = 0, init
    cache = set()
    calls = []  # (call entry, state before it)
    entry = head.next
    steps = 0
    while definite > 0:
        steps += 1
        if steps > max_steps:
            raise Budget()
        if entry is None:
            # Only unknown calls are left after the last return; nothing
            # more can be tried from here.
            if not calls:
                return False
            entry, state = calls.pop()
            linearized &= ~(1 << entry.idx)
            if entry.match is not None:
                definite += 1
            _unlift(entry)
            entry = entry.next
            continue
        if entry.is_call:
            ok, nxt = step(state, entry.op)
            if ok:
                lin2 = linearized | (1 << entry.idx)
                key = (lin2, nxt)
                if key not in cache:
                    cache.add(key)
                    calls.append((entry, state))
                    linearized, state = lin2, nxt
                    if entry.match is not None:
                        definite -= 1
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # The op returning here is not linearized: undo the last choice.
            if not calls:
                return False
            entry, state = calls.pop()
            linearized &= ~(1 << entry.idx)
            if entry.match is not None:
                definite += 1
            _unlift(entry)
            entry = entry.next
    return True


def explainable(ops, init, any_start):
    """True if ops are linearizable from init, or (any_start) from some state."""
    return check(ops, AnyBut() if any_start else init)


def window(ops, start, end):
    """The ops of a history seen through the time window [start, end]: what
    returned before start or was invoked after end is left out; a write or
    compare-and-set that overlaps either edge becomes unknown (it may have
    taken effect outside, where the start state absorbs it, or not yet); a
    read or mismatch that overlaps an edge is left out (what it saw need not
    be in the window). A linearization of the whole history, cut to the
    window, linearizes this from the state at start: if no start state
    explains the window, the whole history is not linearizable either."""
    out = []
    for op in ops:
        if (op.ret is not None and op.ret < start) or op.invoke > end:
            continue
        cut = op.invoke < start or op.ret is None or op.ret > end
        if not cut:
            out.append(op)
        elif op.kind in (WRITE, CAS):
            info = dict(op.info, window="outcome outside the window")
            out.append(replace(op, ret=None, info=info))
    return out


def minimal_window(ops, init=None):
    """The shortest time window [start, end] of a non-linearizable history
    that no start state explains (from init if it starts with the history):
    the earliest end (by binary search: a later end only adds constraints),
    then the latest start. Returns (start, end, the window's ops)."""
    times = sorted({op.invoke for op in ops} | {op.ret for op in ops if op.ret is not None})
    first = times[0]

    def fails(s, e):
        return not check(window(ops, s, e), init if s <= first else AnyBut())

    lo, hi = 0, len(times) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if fails(first, times[mid]):
            hi = mid
        else:
            lo = mid + 1
    end = times[lo]
    # Moving the start later is not monotone (an op cut by the start loses
    # its deadline), so scan back from the end for the latest one that fails.
    start = first
    for t in reversed(times[:lo]):
        if fails(t, end):
            start = t
            break
    return start, end, window(ops, start, end)
