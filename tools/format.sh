#!/usr/bin/env bash
# Checks (default) or fixes (--fix) the C formatting against .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h')
[ ${#files[@]} -gt 0 ] || exit 0
if [ "${1:-}" = "--fix" ]; then
	clang-format -i "${files[@]}"
else
	clang-format --dry-run -Werror "${files[@]}"
	echo "format: ${#files[@]} files match .clang-format"
fi
