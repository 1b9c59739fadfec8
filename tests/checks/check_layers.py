#!/usr/bin/env python3
"""The layers of omnifs and the only arrows allowed between them.

Two checks, so that neither an #include nor a call can run the wrong way:
  - includes: every quoted #include in a layer's folder names a header of
    that layer or of one it may use, and a private header (*_int.h,
    tp_internal.h) only from its own folder;
  - links: every symbol a layer's static library needs from another omnifs
    library is defined in a layer it may use (nm), so there is no call
    circle between folders either.

Usage: check_layers.py SOURCE_ROOT LIBRARY...  (the layers' static libraries)
"""
import os
import re
import subprocess
import sys

# layer: (folder, library name, the layers it may use). Lower layers first.
LAYERS = {
    "consensus": ("consensus", ["consensus_core", "rocks_util", "rocks_crc32c", "consensus_rocksdb"], []),
    "transport": ("transport", ["tp_codec", "transport"], ["consensus"]),
    "base": ("fs/base", ["omnifs_base"], []),
    "kv": ("fs/kv", ["omnifs_kv"], ["base", "consensus"]),
    "replica": ("fs/replica", ["omnifs_replica"], ["kv", "base", "consensus", "transport"]),
    "vfs": ("fs/vfs", ["omnifs_vfs"], ["kv", "base", "consensus"]),
    "main": ("fs", [], ["vfs", "replica", "kv", "base", "consensus", "transport"]),
}
PRIVATE = re.compile(r"(_int|tp_internal)\.h$")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def layer_files(root):
    """{layer: [paths]} of the .c and .h files directly in each layer's folder."""
    out = {}
    for name, (folder, _, _) in LAYERS.items():
        d = os.path.join(root, folder)
        out[name] = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith((".c", ".h")))
    return out


def check_includes(root):
    files = layer_files(root)
    owner = {os.path.basename(p): name for name, ps in files.items() for p in ps if p.endswith(".h")}
    bad = []
    for name, paths in files.items():
        allowed = set(LAYERS[name][2]) | {name}
        for p in paths:
            for h in INCLUDE.findall(open(p).read()):
                target = owner.get(os.path.basename(h))
                if target is None:
                    bad.append("%s: includes %s, which belongs to no layer" % (p, h))
                elif target not in allowed:
                    bad.append("%s (%s) includes %s of %s" % (p, name, h, target))
                elif target != name and PRIVATE.search(h):
                    bad.append("%s includes %s, private to %s" % (p, h, target))
    return bad, sum(len(v) for v in files.values())


def symbols(lib, flag):
    out = subprocess.run(["nm", "-g", flag, lib], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip() and not line.endswith(":")}


def check_links(libs):
    layer_of_lib = {l: name for name, (_, ls, _) in LAYERS.items() for l in ls}
    lib_layer = {}
    for path in libs:
        base = re.sub(r"^lib|\.a$", "", os.path.basename(path))
        if base not in layer_of_lib:
            return ["%s: not a library of any layer" % path], 0
        lib_layer[path] = layer_of_lib[base]
    defined = {}
    for path in libs:
        for s in symbols(path, "--defined-only"):
            defined.setdefault(s, path)
    bad = []
    for path in libs:
        me = lib_layer[path]
        allowed = set(LAYERS[me][2]) | {me}
        for s in sorted(symbols(path, "--undefined-only")):
            d = defined.get(s)
            if d and lib_layer[d] not in allowed:
                bad.append("%s (%s) calls %s of %s" % (os.path.basename(path), me, s, lib_layer[d]))
    return bad, len(libs)


def main():
    root, libs = sys.argv[1], sys.argv[2:]
    bad_inc, n_files = check_includes(root)
    bad_link, n_libs = check_links(libs)
    for line in bad_inc + bad_link:
        print("FAIL:", line)
    if bad_inc or bad_link:
        return 1
    print("layers: %d files and %d libraries checked, every arrow runs down" % (n_files, n_libs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
