#!/usr/bin/env bash
# The consensus core must stay pure: no sockets, files, threads, clocks or
# randomness (HACKING.md). Fails if a core source includes or calls any of them.
# Usage: check_core_purity.sh FILE...   (the core's sources and headers)
set -uo pipefail
[ $# -gt 0 ] || { echo "no sources given"; exit 1; }
forbidden_includes='zmq\.h|rocksdb/|fuse[^ ]*\.h|pthread\.h|<time\.h>|sys/time\.h|<unistd\.h>|<stdio\.h>|sys/socket\.h|<fcntl\.h>|<threads\.h>|sys/random\.h'
forbidden_calls='\b(clock_gettime|gettimeofday|time|rand|random|srand|srandom|getrandom|fopen|open|read|write|socket|sleep|usleep|nanosleep|pthread_[a-z_]+)[[:space:]]*\('
status=0
for f in "$@"; do
	if grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($forbidden_includes)" "$f" |
		grep -E "$forbidden_includes"; then
		echo "FAIL: $f includes a header the pure core must not use"
		status=1
	fi
	# The compiler strips comments (without expanding includes); then strings go.
	if ${CC:-cc} -fpreprocessed -dD -E -P -x c "$f" 2>/dev/null | sed -e 's:"[^"]*"::g' |
		grep -nE "$forbidden_calls"; then
		echo "FAIL: $f calls I/O, clock, randomness or threads"
		status=1
	fi
done
[ $status -eq 0 ] && echo "core purity: $# files checked, none reaches outside libc memory and strings"
exit $status
