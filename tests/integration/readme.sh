# The README's code blocks, for tests that run them as written. Source it
# after lib.sh (it uses T and fail); README defaults to the tree's README.md.

: "${README:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/README.md}"

# readme_part TITLE: the README's text under the heading TITLE (any level),
# up to the next heading (a '#' line inside a code block is no heading).
readme_part() {
	python3 - "$README" "$1" <<'PY'
import sys
path, title = sys.argv[1:]
part, inside, fence = None, False, False
for line in open(path).read().splitlines(keepends=True):
    if line.startswith("```"):
        fence = not fence
    heading = not fence and line.startswith("#")
    if heading and inside:
        break
    if heading and line.lstrip("#").strip() == title:
        inside, part = True, ""
    elif inside:
        part += line
if part is None:
    sys.exit("%s: no heading '%s'" % (path, title))
print(part, end="")
PY
}

# readme_block TITLE K: the K-th sh code block under the README's heading TITLE.
readme_block() {
	readme_part "$1" >"$T/part" || return 1
	python3 - "$T/part" "$2" <<'PY'
import re, sys
path, k = sys.argv[1], int(sys.argv[2])
blocks = re.findall(r"^```sh\n(.*?)^```", open(path).read(), re.M | re.S)
if len(blocks) < k:
    sys.exit("README: %d sh blocks under that heading, expected at least %d" % (len(blocks), k))
print(blocks[k - 1], end="")
PY
}

# load_block ARRAY TITLE K: that block's lines into ARRAY; none fails the test.
load_block() {
	local -n lines=$1
	readme_block "$2" "$3" >"$T/block" || fail "README: no sh block $3 under '$2'"
	mapfile -t lines <"$T/block"
	[ ${#lines[@]} -gt 0 ] || fail "README: sh block $3 under '$2' is empty"
}

# readme_machines LINE: the members of the README's omnifs-bootstrap LINE
# (ID=HOST:PORT words) into the caller's arrays MACHINES (the ids, in order),
# ADDR and PORT (by id); three are expected.
readme_machines() {
	local w
	for w in $1; do
		if [[ "$w" =~ ^([0-9]+)=([0-9.]+):([0-9]+)$ ]]; then
			MACHINES+=("${BASH_REMATCH[1]}")
			ADDR[BASH_REMATCH[1]]=${BASH_REMATCH[2]}
			PORT[BASH_REMATCH[1]]=${BASH_REMATCH[3]}
		fi
	done
	[ ${#MACHINES[@]} = 3 ] || fail "README: expected three members in: $1"
}
