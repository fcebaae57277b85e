#!/usr/bin/env bash
# processes-vs-threads.sh MOUNTPOINT - the seed's section 7 through pcfs:
# threads of one process share its address space, processes each have their
# own; I/O-bound work switches context voluntarily, CPU-bound work does not;
# and what creating a thread costs next to creating a process, measured by
# starting and waiting for tasks through pcfs itself.
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: processes-vs-threads.sh MOUNTPOINT}}
P=$M/procs

start() {   # start LINE -> prints the new ids, one per line
	local id n=$2
	exec 3<>"$M/spawn"; echo "$1" >&3
	for _ in $(seq "$n"); do read -r id <&3; echo "$id"; done
	exec 3>&-
}
kv() { sed -n "s/^$2: //p" "$P/$1/$3"; }         # kv ID KEY FILE
layout() { awk '{ print $1, $2, $5, $6 }' "$P/$1/maps"; }   # maps without RSS/Dirty

echo "== 1. Address spaces"
# (killed below: they run for minutes, so that a slow machine still finds them)
mapfile -t t < <(start 'sleep 2 as=thread time=10m' 2)
mapfile -t p < <(start 'sleep 2 method=spawn time=10m' 2)
printf 'threads   %s and %s: pid %s and %s, tid %s and %s\n' "${t[0]}" "${t[1]}" \
	"$(cat "$P/${t[0]}/pid")" "$(cat "$P/${t[1]}/pid")" "$(cat "$P/${t[0]}/tid")" "$(cat "$P/${t[1]}/tid")"
printf 'processes %s and %s: pid %s and %s\n' "${p[0]}" "${p[1]}" \
	"$(cat "$P/${p[0]}/pid")" "$(cat "$P/${p[1]}/pid")"
if [ "$(layout "${t[0]}")" = "$(layout "${t[1]}")" ]; then
	echo "threads: the same maps ($(layout "${t[0]}" | wc -l) lines): one address space"
else
	echo "threads: different maps"
fi
if [ "$(layout "${p[0]}")" = "$(layout "${p[1]}")" ]; then
	echo "processes: the same maps"
else
	echo "processes: different maps: each its own address space"
	diff <(layout "${p[0]}") <(layout "${p[1]}") | grep -m2 '^[<>]' | sed 's/^/  /' || true
fi
printf 'threads report their host'"'"'s memory: RSS %s and %s KiB; the processes: %s and %s KiB\n' \
	"$(kv "${t[0]}" rss mem)" "$(kv "${t[1]}" rss mem)" "$(kv "${p[0]}" rss mem)" "$(kv "${p[1]}" rss mem)"
for id in "${t[@]}" "${p[@]}"; do echo kill > "$P/$id/ctl"; done

echo
echo "== 2. Context switches: blocking I/O gives up the CPU, computing is taken off it"
io=$(start 'io time=1s' 1); cpu=$(start 'cpu time=1s' 1)
cat "$P/$io/wait" "$P/$cpu/wait" >/dev/null
for id in $io $cpu; do
	printf '%-4s voluntary_ctxt_switches %6s  nonvoluntary_ctxt_switches %5s  utime %s s  stime %s s\n' \
		"$(kv "$id" workload status)" "$(kv "$id" voluntary_ctxt_switches sched)" \
		"$(kv "$id" nonvoluntary_ctxt_switches sched)" "$(kv "$id" utime sched)" \
		"$(kv "$id" stime sched)"
done

echo
echo "== 3. Creation cost: start N noop tasks with one write, wait for all of them"
N=${N:-50}
cost() {   # cost LABEL LINE -> prints the time per task
	local t0 t1 ids
	t0=$(date +%s%N)
	mapfile -t ids < <(start "$2" "$N")
	# one reader for all: the cost measured is pcfs's and the kernel's,
	# not that of starting a `cat` per task
	local waits=()
	for id in "${ids[@]}"; do waits+=("$P/$id/wait"); done
	cat "${waits[@]}" >/dev/null
	t1=$(date +%s%N)
	awk -v l="$1" -v n="$N" -v ns=$((t1 - t0)) \
		'BEGIN { printf "%-34s %4d tasks in %7.1f ms: %6.3f ms each\n", l, n, ns / 1e6, ns / 1e6 / n }'
	for id in "${ids[@]}"; do rmdir "$P/$id"; done
}
cost "threads (pthread_create):" "noop $N as=thread"
cost "processes (fork server: fork):" "noop $N"
cost "processes (posix_spawn + exec):" "noop $N method=spawn"
echo "A thread needs a stack and a task struct; a process also needs its own page"
echo "tables (copied lazily, copy-on-write) or, with exec, a whole new program image."
