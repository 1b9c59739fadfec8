#!/usr/bin/env python3
"""A strict reader of the Prometheus text exposition format (0.0.4).

Refuses what Prometheus would refuse or misread: a sample before its
family's TYPE, a family split in two or declared twice, a sample named for
no family it follows, a bad metric or label name, a bad escape in a label
value, a duplicate label or series, a value that is no float, text not
ending in a newline; and for histograms: a series without le, buckets out of
order or not cumulative, no +Inf bucket, _count other than the +Inf bucket,
no _sum.

Usage:
  metrics_check.py check FILE...         exit 1 with the first fault of each
  metrics_check.py value FILE NAME [LABEL=VALUE...]
                                         print one sample's value
  metrics_check.py selftest              the reader refuses bad pages
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Fault(Exception):
    pass


def parse_value(s, where):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise Fault("%s: value %r is not a float" % (where, s))
    return float(s)


def parse_labels(s, i, where):
    """Labels from s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i:i + 1] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise Fault("%s: bad label name at %r" % (where, s[i:]))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise Fault("%s: label %s: expected =\"" % (where, name))
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise Fault("%s: label %s: unterminated value" % (where, name))
            c = s[i]
            if c == "\\":
                esc = s[i + 1:i + 2]
                if esc not in ("\\", '"', "n"):
                    raise Fault("%s: label %s: bad escape \\%s" % (where, name, esc))
                val.append("\n" if esc == "n" else esc)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Fault("%s: label %s: raw newline" % (where, name))
            else:
                val.append(c)
                i += 1
        if name in labels:
            raise Fault("%s: label %s twice" % (where, name))
        labels[name] = "".join(val)
        if s[i:i + 1] == ",":
            i += 1
            if s[i:i + 1] == "}":
                return labels, i + 1
        elif s[i:i + 1] != "}":
            raise Fault("%s: expected , or } after label %s" % (where, name))


def parse(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}."""
    if not text.endswith("\n"):
        raise Fault("the text does not end with a newline")
    fams = {}
    cur = None
    closed = set()
    series = set()
    for no, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d" % no
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise Fault("%s: bad family name %r" % (where, name))
                if name in closed:
                    raise Fault("%s: family %s comes back after another" % (where, name))
                if cur is not None and cur != name:
                    closed.add(cur)
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                if f["samples"]:
                    raise Fault("%s: %s %s after its samples" % (where, parts[1], name))
                key = parts[1].lower()
                if f[key] is not None:
                    raise Fault("%s: %s of %s twice" % (where, parts[1], name))
                arg = parts[3] if len(parts) == 4 else ""
                if key == "type" and arg not in TYPES:
                    raise Fault("%s: unknown type %r" % (where, arg))
                if key == "help" and not re.fullmatch(r"(?:[^\\]|\\[\\n])*", arg):
                    raise Fault("%s: bad escape in HELP" % where)
                f[key] = arg
                cur = name
            continue
        m = NAME.match(line)
        if not m:
            raise Fault("%s: bad sample %r" % (where, line))
        name = m.group(0)
        i = m.end()
        labels = {}
        if line[i:i + 1] == "{":
            labels, i = parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise Fault("%s: expected a space before the value" % where)
        fields = line[i + 1:].split(" ")
        if len(fields) not in (1, 2):
            raise Fault("%s: expected a value and at most a timestamp" % where)
        value = parse_value(fields[0], where)
        if cur is None:
            raise Fault("%s: sample %s before any TYPE" % (where, name))
        f = fams[cur]
        if f["type"] is None:
            raise Fault("%s: sample %s before the TYPE of %s" % (where, name, cur))
        allowed = {cur}
        if f["type"] == "histogram":
            allowed = {cur + "_bucket", cur + "_sum", cur + "_count"}
        if name not in allowed:
            raise Fault("%s: sample %s in family %s" % (where, name, cur))
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise Fault("%s: series %s%s twice" % (where, name, labels))
        series.add(key)
        f["samples"].append((name, labels, value))
    for name, f in fams.items():
        if f["type"] is None:
            raise Fault("family %s has no TYPE" % name)
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
        if f["type"] == "counter":
            for s in f["samples"]:
                if not s[2] >= 0:
                    raise Fault("counter %s is %r" % (name, s[2]))
    return fams


def check_histogram(name, samples):
    groups = {}
    for sname, labels, value in samples:
        rest = {k: v for k, v in labels.items() if k != "le"}
        g = groups.setdefault(tuple(sorted(rest.items())), {"b": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            if "le" not in labels:
                raise Fault("%s: a bucket without le" % name)
            g["b"].append((parse_value(labels["le"], name), value))
        elif "le" in labels:
            raise Fault("%s: le on %s" % (name, sname))
        elif sname.endswith("_sum"):
            g["sum"] = value
        else:
            g["count"] = value
    for key, g in groups.items():
        b = g["b"]
        if not b or b[-1][0] != math.inf:
            raise Fault("%s%s: no +Inf bucket last" % (name, dict(key)))
        for (le0, c0), (le1, c1) in zip(b, b[1:]):
            if le1 <= le0:
                raise Fault("%s%s: le %r after %r" % (name, dict(key), le1, le0))
            if c1 < c0:
                raise Fault("%s%s: bucket counts fall at le %r" % (name, dict(key), le1))
        if g["count"] is None or g["count"] != b[-1][1]:
            raise Fault("%s%s: _count %r is not the +Inf bucket %r" % (name, dict(key), g["count"], b[-1][1]))
        if g["sum"] is None:
            raise Fault("%s%s: no _sum" % (name, dict(key)))


def value(fams, name, want):
    for f in fams.values():
        for sname, labels, v in f["samples"]:
            if sname == name and all(labels.get(k) == x for k, x in want.items()):
                return v
    raise Fault("no sample %s%s" % (name, want))


BAD = {
    "no newline at the end": "# TYPE a gauge\na 1",
    "sample before TYPE": "a 1\n",
    "TYPE twice": "# TYPE a gauge\n# TYPE a gauge\na 1\n",
    "family split": "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# HELP a x\n",
    "sample of another family": "# TYPE a gauge\nb 1\n",
    "bad escape": '# TYPE a gauge\na{x="\\t"} 1\n',
    "unescaped quote": '# TYPE a gauge\na{x="a"b"} 1\n',
    "duplicate series": '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n',
    "not a float": "# TYPE a gauge\na one\n",
    "bucket without +Inf": '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    "buckets not cumulative": '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n'
                              "h_sum 1\nh_count 1\n",
    "count is not +Inf": '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
    "no sum": '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 1\n',
    "negative counter": "# TYPE c counter\nc -1\n",
    "bad escape in HELP": "# HELP a x\\y\n# TYPE a gauge\na 1\n",
}
GOOD = ('# HELP h a \\\\ b\\n\n# TYPE h histogram\nh_bucket{op="a\\"b",le="0.5"} 1\n'
        'h_bucket{op="a\\"b",le="+Inf"} 2\nh_sum{op="a\\"b"} 1.5\nh_count{op="a\\"b"} 2\n'
        "# TYPE g gauge\ng 3\n")


def selftest():
    for why, text in BAD.items():
        try:
            parse(text)
        except Fault:
            continue
        raise SystemExit("selftest: accepted a page with %s" % why)
    fams = parse(GOOD)
    assert value(fams, "h_count", {"op": 'a"b'}) == 2
    assert value(fams, "g", {}) == 3
    print("selftest: %d bad pages refused, a good one read" % len(BAD))


def main(argv):
    if len(argv) >= 2 and argv[1] == "selftest":
        selftest()
        return 0
    if len(argv) >= 3 and argv[1] == "check":
        for path in argv[2:]:
            try:
                fams = parse(open(path).read())
            except Fault as e:
                print("%s: %s" % (path, e), file=sys.stderr)
                return 1
            print("%s: %d families" % (path, len(fams)))
        return 0
    if len(argv) >= 4 and argv[1] == "value":
        want = dict(a.split("=", 1) for a in argv[4:])
        try:
            v = value(parse(open(argv[2]).read()), argv[3], want)
        except Fault as e:
            print("%s: %s" % (argv[2], e), file=sys.stderr)
            return 1
        print(int(v) if v == int(v) else v)
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
