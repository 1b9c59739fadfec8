#!/usr/bin/env bash
# Configures (once) and builds one flavour:
#   tools/build.sh asan      debug + AddressSanitizer/UBSan, in build/asan (tests run here)
#   tools/build.sh release   optimized, in build/release (benchmarks, the local cluster)
#   tools/build.sh tsan      debug + ThreadSanitizer, in build/tsan (data races; TSan and
#                            ASan cannot share a build)
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
	meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir" >/dev/null
echo "build: $dir is up to date"
