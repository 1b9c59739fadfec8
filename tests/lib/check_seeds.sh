#!/bin/sh
# check_seeds.sh GEN DIR: the checked-in fuzz seeds in DIR are exactly what
# the seed generator GEN writes today, so a format change that leaves them
# stale fails (regenerate them with GEN DIR).
d=$(mktemp -d) || exit 1
"$1" "$d" && diff -r "$d" "$2"
rc=$?
rm -rf "$d"
exit $rc
