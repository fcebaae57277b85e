#!/usr/bin/env python3
"""long_functions.py - list the C functions longer than the team's limit.

Usage: long_functions.py [--max N] [--allow FILE:FUNCTION ...] [--skip FILE ...] DIR|FILE...

A function is measured from the line of its opening '{' to the line of its
closing '}', both counted.  The code is in kernel style, so a function body
opens and closes with a brace in column 0; nothing else does.  Exits 1 when
a function not allowed is over the limit, so a check can run it.
"""
import argparse
import os
import re
import sys

NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
ATTRIBUTE = re.compile(r"__attribute__\s*\(\(.*?\)\)")


def function_name(lines, brace):
    """The name on the signature above the brace at lines[brace]: the first
    identifier followed by '(' on the lines since the last blank line or
    statement end above it."""
    start = brace
    while start > 0 and lines[start - 1].strip() and not lines[start - 1].rstrip().endswith(
            (";", "}", "*/")):
        start -= 1
    for line in lines[start:brace]:
        m = NAME.search(ATTRIBUTE.sub("", line))
        if m:
            return m.group(1)
    return "?"


def long_functions(path, limit):
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("{"):
            end = i + 1
            while end < len(lines) and not lines[end].startswith("}"):
                end += 1
            length = end - i + 1
            if length > limit:
                yield i + 1, function_name(lines, i), length
            i = end
        i += 1


def c_files(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(".c"):
                    yield os.path.join(dirpath, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max", type=int, default=80, help="most lines a function may have")
    ap.add_argument("--allow", action="append", default=[], metavar="FILE:FUNCTION",
                    help="a function allowed to be longer")
    ap.add_argument("--skip", action="append", default=[], metavar="FILE",
                    help="a file not checked")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    allowed = set(args.allow)
    skipped = {os.path.normpath(s) for s in args.skip}
    over = 0
    for path in c_files(args.paths):
        if os.path.normpath(path) in skipped:
            continue
        for line, name, length in long_functions(path, args.max):
            note = ""
            if f"{os.path.normpath(path)}:{name}" in allowed:
                note = " (allowed)"
            else:
                over += 1
            print(f"{path}:{line}: {name}: {length} lines{note}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
