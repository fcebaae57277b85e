#!/usr/bin/env bash
# fuse_floor.sh [R] - the floor under bench/run's memory-stats row.
#
# Times `cat` of 200 files of bench/fuse_floor.c's filesystem against `cat`
# of 200 live processes' /proc/PID/smaps_rollup (the row's baseline), R runs
# each (default 9), medians.  Three ways:
#   fixed      a fixed 185-byte text, pcfs's loop (16 threads)
#   fixed -s   the same, single-threaded
#   rollup     pcfs's loop, each open also reading the process's smaps_rollup
# Each `cat` of a file is five FUSE requests however little the daemon does
# (OPEN; GETATTR, since a direct-I/O read invalidates atime and cat fstats;
# READ; the READ that sees EOF; RELEASE): what `fixed` costs over the baseline
# is the least pcfs's `mem` can.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-9}
mkdir -p build
cc -O2 -Wall -o build/bench-fuse-floor bench/fuse_floor.c $(pkg-config --cflags --libs fuse3)

mnt=$(mktemp -d /tmp/pcfs-floor.XXXXXX); pidfile=$(mktemp /tmp/pcfs-floor-pids.XXXXXX)
sleepers=()
for _ in $(seq 200); do sleep 600 & sleepers+=($!); done
printf '%s\n' "${sleepers[@]}" > "$pidfile"
cleanup() {
	mountpoint -q "$mnt" && fusermount3 -u "$mnt"
	rmdir "$mnt"; rm -f "$pidfile"
	kill "${sleepers[@]}" 2>/dev/null || true
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
files=(); rollups=()
for i in $(seq 200); do files+=("$mnt/$i/mem"); rollups+=("/proc/${sleepers[$((i - 1))]}/smaps_rollup"); done

measure() {   # measure NAME READ [fuse options...]
	local name=$1 read=$2; shift 2
	FLOOR_PIDS=$pidfile FLOOR_READ=$read ./build/bench-fuse-floor "$@" "$mnt"
	cat "${files[@]}" >/dev/null   # entries looked up once, as in the row
	local f=() b=()
	for _ in $(seq "$R"); do
		local t0; t0=$(now); cat "${files[@]}" >/dev/null; f+=("$(echo "$(now) - $t0" | bc)")
		t0=$(now); cat "${rollups[@]}" >/dev/null; b+=("$(echo "$(now) - $t0" | bc)")
	done
	fusermount3 -u "$mnt"
	local fm bm; fm=$(median "${f[@]}"); bm=$(median "${b[@]}")
	printf '%-10s floor %6.1f ms   smaps_rollup %5.1f ms   %.2fx\n' "$name" \
		"$(echo "$fm * 1000" | bc -l)" "$(echo "$bm * 1000" | bc -l)" "$(echo "$fm / $bm" | bc -l)"
}

measure fixed 0
measure "fixed -s" 0 -s
measure rollup 1
