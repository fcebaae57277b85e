#!/usr/bin/env bash
# check_man.sh [SOURCE_DIR] - the man page renders without warnings, and every
# file of the namespace is documented in it.
#
# The files are the rows of the declarative tables in fs/rows_*.c (TEXT,
# KV, CTL, CTLSHOW, CTL_HERE, WAIT, STREAM, PULL, PULL_HERE, DIR_ROW; KV also
# makes NAME.json).
# A file counts as documented when its name is a word of a tag line of a
# tagged paragraph (.TP) in doc/pcfs.1, e.g. `.IR status ", " status.json`:
# adding a row without its paragraph fails here.
set -u
src=${1:-${PCFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}}
man=$src/doc/pcfs.1
fail=0

if ! command -v groff >/dev/null; then
	echo "SKIP: needs groff"
	exit 77
fi

warnings=$(groff -man -Tutf8 -ww -z "$man" 2>&1)
if [ -n "$warnings" ]; then
	echo "FAIL groff -man -ww warns:"; echo "$warnings" | sed 's/^/     | /'
	fail=1
else
	echo "ok   groff -man -Tutf8 -ww renders doc/pcfs.1 without warnings"
fi
if command -v man >/dev/null; then
	warnings=$(MANWIDTH=80 man --warnings -l "$man" 2>&1 >/dev/null)
	if [ -n "$warnings" ]; then
		echo "FAIL man -l warns:"; echo "$warnings" | sed 's/^/     | /'; fail=1
	else
		echo "ok   man --warnings -l renders it without warnings"
	fi
fi

# The row names, from the tables' constructors.
rows=$(sed -nE 's/^[[:space:]]*(TEXT|KV|CTL|CTLSHOW|CTL_HERE|WAIT|STREAM|PULL|PULL_HERE|DIR_ROW)\("([^"]+)".*/\1 \2/p' \
	"$src"/fs/rows_*.c | awk '{ print $2; if ($1 == "KV") print $2 ".json" }' | sort -u)
if [ "$(echo "$rows" | wc -w)" -lt 20 ]; then
	echo "FAIL found only $(echo "$rows" | wc -w) rows in fs/rows_*.c: has the table syntax changed?"
	exit 1
fi

# The words of the tag lines: the line after each .TP, macros and font
# escapes stripped, split at blanks, commas, slashes and quotes.
tags=$(awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 }' "$man" |
	sed -E 's/^\.[A-Z]+[[:space:]]*//; s/\\f[BIRP]//g; s/\\-/-/g; s/\\c//g' |
	tr ' ,/"|' '\n\n\n\n\n' | grep -v '^$' | sort -u)

missing=0
for r in $rows; do
	if ! grep -qxF -- "$r" <<<"$tags"; then
		echo "FAIL $r (a row in fs/rows_*.c) has no paragraph in doc/pcfs.1"
		missing=$((missing + 1))
	fi
done
[ "$missing" -eq 0 ] && echo "ok   all $(echo "$rows" | wc -w) files of fs/rows_*.c are documented in doc/pcfs.1"
[ "$missing" -eq 0 ] && [ "$fail" -eq 0 ]
