#!/usr/bin/env bash
# user-vs-kernel-space.sh MOUNTPOINT - the seed's user space vs kernel space:
# where a task's CPU time goes, from its sched file (utime: running its own
# code; stime: the kernel working on its behalf, in system calls and page
# faults), for
#   - a CPU-bound task (cpu ops=20000): computes, hardly ever enters the kernel;
#   - an I/O-bound task (io): write + fdatasync, a system call per block; it
#     spends little CPU at all, mostly waiting for the disk (voluntary
#     context switches);
#   - a program whose work is done in system calls (dd from /dev/urandom,
#     1 KiB a read): the kernel makes every byte it reads, so the kernel's
#     share dominates.  (dd bs=1 from /dev/zero, two system calls a byte
#     that each do almost nothing, splits about evenly on a machine whose
#     system calls are cheap: the cost of a call is what is done in it.)
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: user-vs-kernel-space.sh MOUNTPOINT}}
P=$M/procs

start() {   # start LINE -> prints the new id
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3; read -r id <&3; exec 3>&-
	echo "$id"
}
kv() { sed -n "s/^$2: //p" "$P/$1/$3"; }   # kv ID KEY FILE

# A fixed amount of work (about 1 s), so a busy machine cannot starve it; and
# long enough to be sampled at least once ([memory] sample_period), since a
# task that ends before its first sample has no sched figures at all.
cpu=$(start 'cpu ops=20000')
io=$(start 'io ops=3000 size=64k')
dd=$(start 'exec dd if=/dev/urandom of=/dev/null bs=1k count=100000')
for id in $cpu $io $dd; do cat "$P/$id/wait" >/dev/null; done

printf '%-54s %7s %7s %7s %7s %7s %9s\n' "task" "wall s" "utime" "stime" "user%" "kernel%" "vol_ctxsw"
for id in $cpu $io $dd; do
	# after the end, sched's CPU times come from wait4(): exact
	u=$(kv "$id" utime sched); s=$(kv "$id" stime sched)
	awk -v c="$(cat "$P/$id/cmd")" -v w="$(kv "$id" runtime status)" -v u="$u" -v s="$s" \
	    -v v="$(kv "$id" voluntary_ctxt_switches sched)" 'BEGIN {
		t = u + s
		if (t > 0) { up = sprintf("%.0f%%", 100 * u / t); kp = sprintf("%.0f%%", 100 * s / t) }
		else { up = kp = "-" }
		printf "%-54s %7.2f %7.3f %7.3f %7s %7s %9d\n", c, w, u, s, up, kp, v }'
done
echo
echo "cpu: nearly all of its CPU time is user time; it stays off the kernel's paths."
echo "io: little CPU time at all (utime + stime far below its wall time): it waits;"
echo "    what it does spend is mostly the kernel's, writing and syncing for it."
echo "dd from /dev/urandom: the kernel makes the bytes in its read calls: kernel time dominates."
