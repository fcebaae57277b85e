#!/usr/bin/env bash
# start-methods.sh MOUNTPOINT - the seed's start methods through pcfs: the
# same task started with method=fork, spawn, vfork and clone, and as=thread
# (pthread_create), and what each gives: which program runs, its pid and
# tid, its parent, and whether it shares pages copy-on-write with the
# process it was forked from.
#
#   multiprocessing fork / forkserver  ->  method=fork   (the fork server forks)
#   multiprocessing spawn              ->  method=spawn  (posix_spawn a fresh program)
#   vfork + exec                       ->  method=vfork
#   clone(2)                           ->  method=clone
#   threading.Thread                   ->  as=thread     (pthread_create in a host)
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: start-methods.sh MOUNTPOINT}}
P=$M/procs

start() {   # start LINE COUNT -> prints the new ids, one per line
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3
	for _ in $(seq "${2:-1}"); do read -r id <&3; echo "$id"; done
	exec 3>&-
}
kv() { sed -n "s/^$2: //p" "$P/$1/$3"; }             # kv ID KEY FILE
ppid() { awk '$1 == "PPid:" { print $2 }' "/proc/$1/status"; }
comm() { cat "/proc/$1/comm"; }
prog() { basename "$(readlink "/proc/$1/exe")"; }

row() {   # row ID: one line about a live task
	local id=$1 pid tid pp
	pid=$(cat "$P/$id/pid"); tid=$(cat "$P/$id/tid"); pp=$(ppid "$pid")
	printf '%-28s %-7s %-7s %7s %7s %7s %-6s %-12s %s\n' "$(cat "$P/$id/cmd")" \
		"$(cat "$P/$id/method")" "$(cat "$P/$id/kind")" "$pid" "$tid" "$pp" "$(comm "$pp")" \
		"$(prog "$pid")" "$(kv "$id" method cow)"
}
header() {
	printf '%-28s %-7s %-7s %7s %7s %7s %-6s %-12s %s\n' LINE METHOD KIND PID TID PPID PARENT PROGRAM COW
}

echo "== 1. A built-in workload (sleep), started five ways"
ids=()
# (killed below: they run for minutes, so that a slow machine still finds them)
for m in fork spawn vfork clone; do ids+=("$(start "sleep time=10m method=$m")"); done
mapfile -t th < <(start 'sleep 2 time=10m as=thread' 2)
ids+=("${th[@]}")
sleep 0.5   # let the samplers see them (cow)
header
for id in "${ids[@]}"; do row "$id"; done
echo
echo "fork:  the fork server (a pcfs-worker started before the daemon had threads)"
echo "       forks; the child runs the workload at once, sharing the server's"
echo "       pages copy-on-write (cow: pagemap, frames compared with the server)."
echo "spawn: posix_spawn starts a fresh pcfs-worker program: nothing inherited"
echo "       but what exec keeps (cow: n/a)."
echo "vfork: vfork + exec of pcfs-worker: the parent waits until the exec."
echo "clone: the fork server calls clone(2) directly."
echo "Every process's parent is the daemon (pcfs), which reaps them all."
echo "as=thread: two threads of one host process: one PID, two TIDs; the host's"
echo "       parent is the daemon."
for id in "${ids[@]}"; do echo kill > "$P/$id/ctl"; done
for id in "${ids[@]}"; do cat "$P/$id/wait" >/dev/null; done

echo
echo "== 2. A program (exec sleep 600), started four ways"
ids=()
for m in spawn fork vfork clone; do ids+=("$(start "exec method=$m sleep 600")"); done
# a fork-server child execs on its own time: wait until each one is sleep
for id in "${ids[@]}"; do
	for _ in $(seq 400); do [ "$(prog "$(cat "$P/$id/pid")")" = sleep ] && break; sleep 0.05; done
done
header
for id in "${ids[@]}"; do row "$id"; done
echo
echo "The program is sleep whichever way it started; only how it got there differs:"
echo "posix_spawn from the daemon (the default), a fork-server child that execs,"
echo "vfork + exec, clone(CLONE_VM|CLONE_VFORK) + exec."
for id in "${ids[@]}"; do echo kill > "$P/$id/ctl"; done
for id in "${ids[@]}"; do cat "$P/$id/wait" >/dev/null; done
