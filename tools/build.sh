#!/usr/bin/env bash
# Configures (once) and builds one flavour:
#   tools/build.sh asan      debug + AddressSanitizer/UBSan, in build/asan (tests run here)
#   tools/build.sh release   optimized, in build/release (benchmarks, the local cluster)
#   tools/build.sh tsan      debug + ThreadSanitizer, in build/tsan (data races; TSan and
#                            ASan cannot share a build)
# With BUILD_PROGRESS=1 it shows how far the build is: one line rewritten in
# place on a terminal, a line every 10% elsewhere; compiler messages pass
# (what meson says while it re-configures the build dir does not).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-asan}"
dir="build/$flavour"
case "$flavour" in
asan) opts=(-Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false) ;;
release) opts=(-Dbuildtype=release -Db_ndebug=false) ;;
tsan) opts=(-Dbuildtype=debug -Db_sanitize=thread -Db_lundef=false) ;;
*) echo "usage: $0 asan|release|tsan" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
	[ "${BUILD_PROGRESS:-0}" = 1 ] && echo "build: configuring $dir"
	meson setup "$dir" "${opts[@]}" >/dev/null
fi

# progress: ninja's "[done/total] ..." lines as a percentage.
progress() {
	local tty=0
	[ -t 1 ] && tty=1
	awk -v tty="$tty" '
	/^\[[0-9]+\/[0-9]+\] / {
		# meson re-configuring itself talks at length: not progress
		regen = /Regenerating build files/
		split(substr($1, 2), a, "/")
		done = a[1] + 0; total = a[2] + 0; pct = int(100 * done / total)
		if (tty) {
			printf "\rbuild: %d of %d steps (%d%%)", done, total, pct
			shown = 1
		} else if (pct >= next_pct) {
			printf "build: %d of %d steps (%d%%)\n", done, total, pct
			next_pct = pct - pct % 10 + 10
		}
		fflush()
		next
	}
	/^ninja: / || regen { next }
	{
		if (shown) printf "\n"
		shown = 0
		print
		fflush()
	}
	END { if (shown) printf "\n" }'
}

if [ "${BUILD_PROGRESS:-0}" = 1 ]; then
	NINJA_STATUS='[%f/%t] ' ninja -C "$dir" | progress
else
	ninja -C "$dir" >/dev/null
fi
echo "build: $dir is up to date"
