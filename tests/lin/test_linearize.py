#!/usr/bin/env python3
"""Self-test of the linearizability checker (linearize.py), hand-made
histories: linearizable ones it must accept, and non-linearizable ones (a
stale read, a lost write, two winners of one compare-and-set, a mismatch that
cannot be) it must refuse, and the window it shrinks a violation to. A
checker that accepts everything would pass the cluster test: this one fails
then. Prints TAP."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linearize as L  # noqa: E402


def w(v, t0, t1, proc="p"):
    return L.Op(L.WRITE, value=v, invoke=t0, ret=t1, proc=proc)


def r(v, t0, t1, proc="p"):
    return L.Op(L.READ, value=v, invoke=t0, ret=t1, proc=proc)


def cas(exp, new, t0, t1, proc="p"):
    return L.Op(L.CAS, value=new, expect=exp, invoke=t0, ret=t1, proc=proc)


def casfail(exp, t0, t1, proc="p"):
    return L.Op(L.CASFAIL, expect=exp, invoke=t0, ret=t1, proc=proc)


LINEARIZABLE = {
    "empty": [],
    "sequential": [w("a", 0, 1), r("a", 2, 3), cas("a", "b", 4, 5), r("b", 6, 7),
                   casfail("a", 8, 9), cas("b", None, 10, 11), r(None, 12, 13)],
    "read overlapping a write sees either": [
        w("a", 0, 1), w("b", 2, 10, "p1"), r("b", 3, 4, "p2"), r("b", 5, 6, "p3")],
    "reads in flight may order either way": [
        w("a", 0, 10, "p1"), r("a", 1, 3, "p2"), r(None, 2, 4, "p3")],
    "one of two racing cas wins": [
        w("a", 0, 1), cas("a", "b", 2, 6, "p1"), casfail("a", 3, 7, "p2"), r("b", 8, 9)],
    "unknown write taking effect late": [
        w("a", 0, 1), w("b", 2, None, "p1"), r("a", 3, 4), r("b", 20, 21)],
    "unknown write never taking effect": [
        w("a", 0, 1), w("b", 2, None, "p1"), r("a", 30, 31)],
    "unknown cas explaining a mismatch": [
        w("a", 0, 1), cas("a", "b", 2, None, "p1"), casfail("a", 5, 6, "p2"), r("b", 7, 8)],
}

NOT_LINEARIZABLE = {
    "stale read": [w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)],
    "read of a value never written": [w("a", 0, 1), r("z", 2, 3)],
    "lost write": [w("a", 0, 1, "p1"), w("b", 2, 3, "p2"), r("a", 4, 5), r("b", 6, 7)],
    "read going back in time": [
        w("a", 0, 10, "p1"), r("a", 1, 2, "p2"), r(None, 3, 4, "p3")],
    "two winners of one cas": [
        w("a", 0, 1), cas("a", "b", 2, 5, "p1"), cas("a", "c", 3, 6, "p2")],
    "mismatch while at the version": [w("a", 0, 1), casfail("a", 2, 3)],
    "cas on absent after a write": [w("a", 0, 1), cas(None, "b", 2, 3)],
    "unknown write seen then unseen": [
        w("a", 0, 1), w("b", 2, None, "p1"), r("b", 3, 4), r("a", 5, 6)],
}


def main():
    results = []
    for name, ops in LINEARIZABLE.items():
        results.append(("accepts " + name, L.check(ops)))
    for name, ops in NOT_LINEARIZABLE.items():
        results.append(("refuses " + name, not L.check(ops)))

    # A stale read buried in a long linearizable history: the window is the
    # few ops that show it, and nothing there is explainable.
    long_ops = []
    t = 0
    for i in range(200):
        long_ops.append(w("v%d" % i, t, t + 1, "p%d" % (i % 3)))
        long_ops.append(r("v%d" % i, t + 2, t + 3))
        t += 4
    long_ops.append(w("x", t, t + 1))
    long_ops.append(r("v199", t + 2, t + 3))
    long_ops.extend([w("y", t + 4, t + 5), r("y", t + 6, t + 7)])
    results.append(("refuses a stale read after 400 good ops", not L.check(long_ops)))
    start, end, win = L.minimal_window(long_ops)
    results.append(("shrinks it to at most 3 ops (%d, [%d, %d])" % (len(win), start, end),
                    0 < len(win) <= 3 and start > 0))
    results.append(("the window is explainable from no state",
                    not L.explainable(win, None, True)))
    # A mismatch explained by a write invoked after it: a window ending
    # before that write would blame the mismatch; the right one does not.
    late = [w("a", 0, 1), casfail("a", 2, 10, "p1"), w("b", 3, 4, "p2"), r("a", 20, 21)]
    start, end, win = L.minimal_window(late)
    results.append(("the window of a late explanation is the stale read",
                    not L.check(late) and end == 21 and
                    any(op.kind == L.READ for op in win)))
    results.append(("a linearizable history of 400 ops passes", L.check(long_ops[:400])))

    # From an unknown start: a read explains it, a mismatch then a read of
    # the very value does not.
    results.append(("any start explains a lone read",
                    L.explainable([r("q", 0, 1), cas("q", "s", 2, 3)], None, True)))
    results.append(("no start explains a mismatch then a read of it",
                    not L.explainable([casfail("q", 0, 1), r("q", 2, 3)], None, True)))

    # Many writes in flight at once, then the search budget.
    wide = [w("v%d" % i, 0, 100, "p%d" % i) for i in range(12)] + [r("v5", 101, 102)]
    results.append(("12 concurrent writes, the read sees one", L.check(wide)))
    try:
        L.check(wide, max_steps=3)
        results.append(("a search over budget raises Budget", False))
    except L.Budget:
        results.append(("a search over budget raises Budget", True))

    # Local reads on one node (lincheck.check_monotonic): (node,
    # incarnation, key, invoked, returned, version).
    import lincheck
    good = [(1, 1, "k", 0, 5, 3), (1, 1, "k", 6, 8, 3), (1, 1, "k", 7, 9, 4),
            (1, 1, "k", 10, 11, 4), (1, 2, "k", 20, 21, 2), (2, 1, "k", 12, 13, 1)]
    results.append(("local reads: monotonic per node and process",
                    lincheck.check_monotonic(good) == []))
    bad = good + [(1, 1, "k", 12, 14, 3)]
    results.append(("local reads: a version going back is found",
                    len(lincheck.check_monotonic(bad)) == 1))

    print("1..%d" % len(results))
    failed = 0
    for i, (name, ok) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
