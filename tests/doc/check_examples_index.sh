#!/usr/bin/env bash
# check_examples_index.sh [SOURCE_DIR] - every file in examples/ is listed in
# examples/README.md, so the guided tour cannot fall behind.
set -u
src=${1:-${PCFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}}
missing=0
for f in "$src"/examples/*; do
	name=$(basename "$f")
	[ "$name" = README.md ] && continue
	if grep -qF "[\`$name\`]($name)" "$src/examples/README.md"; then
		echo "ok   examples/README.md lists $name"
	else
		echo "FAIL examples/README.md does not list $name"; missing=$((missing + 1))
	fi
done
[ "$missing" -eq 0 ]
