#!/usr/bin/env bash
# quickstart.sh MOUNTPOINT - a first tour of pcfs: start work by writing a
# line, watch it through files, wait for it, read its output.
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: quickstart.sh MOUNTPOINT}}

echo "# 4 CPU-bound workers, as stress-ng would start them:"
echo "\$ echo 'cpu 4 time=1s' > $M/spawn"
exec 3<>"$M/spawn"
echo 'cpu 4 time=1s' >&3
ids=()
for _ in 1 2 3 4; do read -r id <&3; ids+=("$id"); done
exec 3>&-
echo "ids: ${ids[*]}"
echo
echo "# each task is a directory:"
echo "\$ ls $M/procs/${ids[0]}"
ls "$M/procs/${ids[0]}" | tr '\n' ' '; echo
for id in "${ids[@]}"; do
	printf 'task %s: pid %s, state %s, exitcode "%s"\n' "$id" "$(cat "$M/procs/$id/pid")" \
		"$(cat "$M/procs/$id/state")" "$(cat "$M/procs/$id/exitcode")"
done
echo
echo "# wait blocks until a task ends and gives its exit code (join):"
for id in "${ids[@]}"; do
	printf 'task %s wait -> %s\n' "$id" "$(cat "$M/procs/$id/wait")"
done
echo "\$ cat $M/procs/${ids[0]}/stdout"
cat "$M/procs/${ids[0]}/stdout"
echo
echo "# a program, its output captured:"
echo "\$ echo 'exec uname -s' > $M/spawn"
exec 3<>"$M/spawn"; echo 'exec uname -s' >&3; read -r id <&3; exec 3>&-
cat "$M/procs/$id/wait" >/dev/null
echo "stdout of task $id: $(cat "$M/procs/$id/stdout")"
echo
echo "# status, for people and for jq:"
grep -E '^(state|exitcode|runtime|utime):' "$M/procs/${ids[0]}/status"
echo
echo "# the engine's counters:"
cat "$M/stats"
