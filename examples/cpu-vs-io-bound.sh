#!/usr/bin/env bash
# cpu-vs-io-bound.sh MOUNTPOINT - the seed's sections 7-8: CPU-bound work
# speeds up on processes, not on threads under a GIL; I/O-bound work speeds up
# on threads either way, because a waiting thread does not hold the GIL.
# Four tasks on two workers of each kind; wall times side by side.
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: cpu-vs-io-bound.sh MOUNTPOINT}}
OPS=${OPS:-4000}
now() { date +%s.%N; }

# run POOL TYPE GIL WORKLOAD OPTIONS: four tasks through a fresh 2-worker
# pool; prints the wall time and the parallelism (CPU seconds / wall seconds:
# how many cores were busy on average)
run() {
	local P=$M/pools/$1
	mkdir "$P"
	echo "type=$2" > "$P/ctl"
	[ "$2" = thread ] && echo "gil=$3" > "$P/ctl"
	echo workers=2 > "$P/ctl"
	local t0 wall cpu
	t0=$(now)
	exec 3<>"$P/map"
	echo "$4 4 $5" >&3              # COUNT 4: four futures from one line
	cat <&3 >/dev/null              # map: all four results
	exec 3>&-
	wall=$(echo "$(now) - $t0" | bc)
	cpu=$(cat "$P"/futures/*/status | awk '/^cpu: / { s += $2 } END { print s + 0 }')
	echo shutdown > "$P/ctl"
	printf '%-34s %8.2f %8.2f %12.2f\n' "$6" "$wall" "$cpu" "$(echo "$cpu / $wall" | bc -l)"
}

printf '%-34s %8s %8s %12s\n' "4 tasks on 2 workers" "wall s" "cpu s" "parallelism"
run cpu-proc process 0 cpu "ops=$OPS" "cpu ops=$OPS, processes"
run cpu-gil thread 1 cpu "ops=$OPS" "cpu ops=$OPS, threads, gil=1"
run cpu-nogil thread 0 cpu "ops=$OPS" "cpu ops=$OPS, threads, gil=0"
run io-gil thread 1 io time=500ms "io time=500ms, threads, gil=1"
run io-proc process 0 io time=500ms "io time=500ms, processes"
echo
echo "CPU-bound: processes can keep both cores busy (parallelism up to 2);"
echo "threads holding a GIL take turns on one (parallelism at most 1), so they"
echo "take about twice as long on an idle 2-core machine."
echo "I/O-bound: threads overlap their waits, GIL or not: 4 x 0.5 s in about 1 s."
