#!/usr/bin/env python3
"""check_layers.py SRCDIR - the engine's floors hold (doc/architecture.md):

  lib/    the bottom: includes no header of the engine above it
  core/   the ground floor: includes lib and its own core.h, no room's header
  rooms   exec, channels, memory, pools, persist: each includes the core, lib,
          its own headers, and other rooms' public header (ROOM/ROOM.h) only,
          never another room's private one; and no circle between rooms
  engine.c  the top floor: the only file that lists the rooms
  and no file of engine/ over 1,200 lines

Exits 1 and says which include breaks which rule.
"""
import os
import re
import sys

FILE_LINES_MAX = 1200
ROOMS = ["exec", "channels", "memory", "pools", "persist"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def includes(path):
    with open(path, encoding="utf-8") as f:
        return INCLUDE.findall(f.read())


def room_of(inc, here):
    """The room a quoted include names, or None (core, lib, other)."""
    first = inc.split("/")[0]
    if "/" in inc and first in ROOMS:
        return first
    if "/" not in inc and here in ROOMS and os.path.exists(os.path.join(SRC, "engine", here, inc)):
        return here
    return None


def main():
    bad = []
    lib_headers = set(os.listdir(os.path.join(SRC, "engine", "lib")))
    graph = {r: set() for r in ROOMS}
    for floor in ["lib", "core"] + ROOMS:
        d = os.path.join(SRC, "engine", floor)
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(d, name)
            for inc in includes(path):
                where = f"engine/{floor}/{name}: #include \"{inc}\""
                if floor == "lib":
                    if inc not in lib_headers and inc != "config.h":
                        bad.append(f"{where}: lib/ includes only lib/ headers")
                    continue
                r = room_of(inc, floor)
                if floor == "core":
                    if r or inc.split("/")[0] in ROOMS:
                        bad.append(f"{where}: the core includes no room's header")
                    continue
                if r and r != floor:
                    if inc != f"{r}/{r}.h":
                        bad.append(f"{where}: another room's private header")
                    graph[floor].add(r)
    # no circle between rooms
    state = {}

    def visit(r, path):
        state[r] = 1
        for n in sorted(graph[r]):
            if state.get(n) == 1:
                bad.append("a circle between rooms: " + " -> ".join(path + [n]))
            elif not state.get(n):
                visit(n, path + [n])
        state[r] = 2

    for r in ROOMS:
        if not state.get(r):
            visit(r, [r])
    # only engine.c names the rooms' rows
    for floor in ["core"] + ROOMS:
        d = os.path.join(SRC, "engine", floor)
        for name in os.listdir(d):
            if name.endswith(".c"):
                text = open(os.path.join(d, name), encoding="utf-8").read()
                for r in ROOMS:
                    if r != floor and re.search(r"\b%s_room\b" % r, text):
                        bad.append(f"engine/{floor}/{name} names {r}_room: only engine.c lists rooms")
    # one room, one job: no file over the limit
    for root, _, files in os.walk(os.path.join(SRC, "engine")):
        for name in files:
            if name.endswith((".c", ".h")):
                path = os.path.join(root, name)
                n = sum(1 for _ in open(path, encoding="utf-8"))
                if n > FILE_LINES_MAX:
                    bad.append(f"{os.path.relpath(path, SRC)}: {n} lines (at most {FILE_LINES_MAX})")
    for b in bad:
        print("FAIL", b)
    print(f"{'ok' if not bad else 'FAIL'}: engine floors ({len(bad)} problems)")
    return 1 if bad else 0


SRC = sys.argv[1] if len(sys.argv) > 1 else "."
sys.exit(main())
