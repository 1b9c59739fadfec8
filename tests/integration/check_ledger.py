#!/usr/bin/env python3
"""Checks a mount against a ledger of acknowledged writes (the crash tests).

  check_ledger.py DIR LEDGER [FROM]

LEDGER lines (from line FROM on, default 0) are "f NAME MD5": file NAME in
DIR was written with content MD5, or "c NAME N": config file NAME in DIR was
replaced (temp, fsync, rename) to hold N. Every file must hold its content;
a config file must hold its largest acknowledged N or a later one. Exits
non-zero, naming what was lost, if a write is missing.
"""
import hashlib
import os
import sys

d, ledger = sys.argv[1], sys.argv[2]
first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
bad, files, cfg = [], 0, {}
with open(ledger) as f:
    lines = f.readlines()[first:]
for line in lines:
    kind, name, v = line.split()
    if kind == "c":
        cfg[name] = max(cfg.get(name, 0), int(v))
        continue
    files += 1
    try:
        with open(os.path.join(d, name), "rb") as f:
            if hashlib.md5(f.read()).hexdigest() != v:
                bad.append(name + " (content)")
    except OSError as e:
        bad.append("%s (%s)" % (name, e.strerror))
for name, n in cfg.items():
    try:
        with open(os.path.join(d, name)) as f:
            got = int(f.read())
        if got < n:
            bad.append("%s holds %d, %d was acknowledged" % (name, got, n))
    except (OSError, ValueError) as e:
        bad.append("%s (%s)" % (name, e))
if bad:
    sys.exit("%d of %d acknowledged writes lost: %s" % (len(bad), files + len(cfg), bad[:8]))
print("%d files and %d config files as acknowledged" % (files, len(cfg)))
