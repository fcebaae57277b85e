#!/usr/bin/env bash
# tools/chaos.sh - a long chaos run (tests/chaos/chaos.py) against a fresh
# mount, niced so that it shares the machine.
#
#   tools/chaos.sh [--minutes N] [--seed S] [--workers K] [--build DIR]
#
# Prints the seed first; a failing run replays with the same --seed.  The
# mount's directory is kept on failure (its path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=60 seed="" workers=4 build=build
while [ $# -gt 0 ]; do
	case $1 in
	--minutes) minutes=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--workers) workers=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	*) echo "usage: $0 [--minutes N] [--seed S] [--workers K] [--build DIR]" >&2; exit 2 ;;
	esac
done
[ -x "$build/pcfs" ] || { meson setup "$build" >/dev/null; }
ninja -C "$build" >/dev/null
export PCFS_WORKER=$PWD/$build/pcfs-worker
exec nice -n 19 python3 tests/chaos/chaos.py --seconds $((minutes * 60)) --workers "$workers" \
	--pcfs "$build/pcfs" ${seed:+--seed "$seed"}
