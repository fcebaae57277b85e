#!/usr/bin/env bash
# The core (issue 2) through a real mount: every file of /procs/ID, the line
# grammar, exit codes, ctl, output capture, timeouts, threads vs processes,
# limits, refusals, unmount with running tasks.
. "$(dirname "$0")/lib.sh"

pcfs_mount "[tasks]
output_max = 64K
default_time = 30s
history = 50
kill_grace = 500ms
[limits]
max_processes = 40
max_threads = 64"

# --- the namespace ---
expect "root lists the contract files" "$(ls "$M" | tr '
' ' ')" "README channels config events events.json joblog log mem mem.json pools procs run shm spawn stats stats.json sync sys top wait "
check "README documents the grammar" grep -q 'WORKLOAD \[COUNT\]' "$M/README"
check "config is ini and loads back" grep -q '^\[limits\]' "$M/config"

# --- start, read back the ids on the same descriptor ---
# Task 1 must still run through the checks on a running task below however
# long a loaded machine takes over them: it sleeps ten minutes and is killed
# once they are done.  Task 2 (200 ms) is the one waited for to its end.
exec 3<>"$M/spawn"
echo 'sleep time=10m' >&3
read -r id1 <&3
echo 'cpu 2 time=200ms' >&3
read -r id2 <&3; read -r id3 <&3
exec 3>&-
expect "ids are 1, 2, 3 in order" "$id1 $id2 $id3" "1 2 3"
expect "a task directory per id" "$(ls "$M/procs" | tr '\n' ' ')" "1 2 3 "
expect "state while running" "$(cat "$M/procs/1/state")" "running"
expect "alive while running" "$(cat "$M/procs/1/alive")" "1"
expect "exitcode is empty (0 bytes) while running" "$(stat -c %s "$M/procs/1/exitcode"; wc -c < "$M/procs/1/exitcode")" "0
0"
expect "cmd is the line" "$(cat "$M/procs/1/cmd")" "sleep time=10m"
expect "kind" "$(cat "$M/procs/1/kind")" "process"
expect "built-ins fork by default" "$(cat "$M/procs/1/method")" "fork"
expect_match "pid is a live process" "$(cat "$M/procs/1/pid")" '^[0-9]+$'
check "the pid is really running" kill -0 "$(cat "$M/procs/1/pid")"
expect "each process leads its own group" "$(ps -o pgid= -p "$(cat "$M/procs/1/pid")" | tr -d ' ')" "$(cat "$M/procs/1/pid")"
echo kill > "$M/procs/1/ctl"; cat "$M/procs/1/wait" >/dev/null

# --- wait: blocking, non-blocking, interrupted ---
expect "wait blocks until the end, then gives the exitcode" "$(cat "$M/procs/2/wait")" "0"
expect "state after exit" "$(cat "$M/procs/2/state")" "exited"
expect "alive after exit" "$(cat "$M/procs/2/alive")" "0"
expect "exitcode after exit" "$(cat "$M/procs/2/exitcode")" "0"
expect_match "cpu prints its result line" "$(cat "$M/procs/2/stdout")" '^cpu ops=[0-9]+ elapsed='

# Tasks that a ctl ends run for minutes: on a loaded machine a few seconds
# between two commands are possible, and the task must not end first.
echo 'sleep time=10m' > "$M/spawn"     # id 4
out=$(dd if="$M/procs/4/wait" iflag=nonblock 2>&1)
expect_match "O_NONBLOCK wait gives EAGAIN while running" "$out" 'Resource temporarily unavailable'
start=$(date +%s%N)
timeout -s INT 0.3 cat "$M/procs/4/wait"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect "Ctrl-C on a blocked wait ends the reader (SIGINT)" "$rc" "124"
# "at once" as against "when the task ends", 10 minutes on: a loaded machine
# may take a few seconds to run timeout and cat themselves
check "... at once ($ms ms)" test "$ms" -lt 10000
expect "... and changes nothing" "$(cat "$M/procs/4/state")" "running"

# --- exit codes ---
echo 'sh exit 3' > "$M/spawn"          # 5
expect "non-zero exit status" "$(cat "$M/procs/5/wait")" "3"
echo term > "$M/procs/4/ctl"
expect "term gives -15 (Python's exitcode)" "$(cat "$M/procs/4/wait")" "-15"
expect "state after a signal" "$(cat "$M/procs/4/state")" "killed"
echo 'sleep time=10m' > "$M/spawn"      # 6
echo kill > "$M/procs/6/ctl"
expect "kill gives -9" "$(cat "$M/procs/6/wait")" "-9"
echo 'sleep time=10m' > "$M/spawn"      # 7
echo 'signal USR1' > "$M/procs/7/ctl"
expect "signal NAME" "$(cat "$M/procs/7/wait")" "-10"
echo 'sleep time=10m' > "$M/spawn"      # 8
echo 'signal 2' > "$M/procs/8/ctl"
expect "signal N" "$(cat "$M/procs/8/wait")" "-2"

# --- ctl: stop/cont, errors ---
# it runs until the test lets it finish (a file appears), not for a time a
# loaded machine could use up before the stop
echo "sh while [ ! -e $WORKDIR/go9 ]; do sleep 0.05; done" > "$M/spawn"   # 9
check "stop is taken" sh -c "echo stop > '$M/procs/9/ctl'"
check "stop shows as stopped" wait_until 400 grep -qx stopped "$M/procs/9/state"
# seen once beside a benchmark, never since: what the next one would want to know
grep -qx stopped "$M/procs/9/state" || {
	p9=$(cat "$M/procs/9/pid")
	echo "     | state $(cat "$M/procs/9/state"); /proc/$p9/stat: $(cut -d' ' -f1-8 "/proc/$p9/stat")"
	ps -o pid=,stat=,args= -g "$p9" | sed 's/^/     | /'
	grep 'task 9\b' "$M/log" | tail -5 | sed 's/^/     | /'
}
echo cont > "$M/procs/9/ctl"
check "cont shows as running" wait_until 400 grep -qx running "$M/procs/9/state"
touch "$WORKDIR/go9"
expect "it then finishes normally" "$(timeout 60 cat "$M/procs/9/wait")" "0"
expect "ctl on an ended task: ESRCH" "$(write_err "$M/procs/9/ctl" term)" "No such process"
expect "unknown ctl command: EINVAL" "$(write_err "$M/procs/9/ctl" frobnicate)" "Invalid argument"
expect "bad signal: EINVAL" "$(write_err "$M/procs/9/ctl" 'signal NOPE')" "Invalid argument"

# --- output: separate, captured while running ---
echo 'sh echo out; echo err >&2; echo more; exit 0' > "$M/spawn"   # 10
cat "$M/procs/10/wait" >/dev/null
expect "stdout captured" "$(cat "$M/procs/10/stdout")" "out
more"
expect "stderr captured separately" "$(cat "$M/procs/10/stderr")" "err"
echo 'sh echo first; sleep 600' > "$M/spawn"   # 11
check "stdout readable while it runs" wait_until 400 grep -qx first "$M/procs/11/stdout"
expect "stdout reports its true size" "$(stat -c %s "$M/procs/11/stdout")" "6"
echo kill > "$M/procs/11/ctl"

# --- status and its JSON twin ---
st=$(cat "$M/procs/5/status")
expect_match "status has key: value lines" "$st" 'state: exited'
expect_match "status has the exit code" "$st" 'exitcode: 3'
expect_match "status has CPU times" "$st" 'utime: [0-9.]+'
if command -v jq >/dev/null; then
	expect "status.json parses, numbers are numbers" \
		"$(jq -r '[.id, .exitcode, .state, (.exitcode|type)] | @tsv' "$M/procs/5/status.json")" \
		"5	3	exited	number"
	echo 'sleep time=10m' > "$M/spawn"   # 12
	expect "exitcode is null while running (Python's None)" \
		"$(jq -r '.exitcode' "$M/procs/12/status.json")" "null"
	echo kill > "$M/procs/12/ctl"; cat "$M/procs/12/wait" >/dev/null
	expect "stats.json counts" "$(jq -r '.started >= 12' "$M/stats.json")" "true"
fi

# --- timeouts escalate TERM then KILL ---
echo 'sleep time=10m timeout=200ms' > "$M/spawn"   # 13
expect "timeout= terminates: -15" "$(cat "$M/procs/13/wait")" "-15"
expect_match "status says it timed out" "$(cat "$M/procs/13/status")" 'timed_out: 1'
echo "sh trap '' TERM; sleep 600" > "$M/spawn"      # 14 (ignores TERM)
echo 'timeout=' > /dev/null
n=$(cat "$M/stats" | sed -n 's/^started: //p')
echo "sh timeout=200ms trap '' TERM; sleep 5" > "$M/spawn" 2>/dev/null
# (the trap must be in place before the timeout's TERM: on a loaded machine
# the shell may not have run it yet, and then TERM rightly ends it with -15.
# Such a run proves nothing: it is tried again with a longer timeout.  A
# run is valid once the task got past its trap, which it says with a file.)
for t in 200ms 2s 10s; do
	rm -f "$WORKDIR/trapped"
	echo "sh timeout=$t trap '' TERM; touch $WORKDIR/trapped; while :; do sleep 0.1; done" > "$M/spawn"
	last=$(ls "$M/procs" | sort -n | tail -1)
	code=$(cat "$M/procs/$last/wait")
	[ -e "$WORKDIR/trapped" ] && break
done
expect "a task ignoring TERM gets KILL after the grace" "$code" "-9"
echo kill > "$M/procs/14/ctl"

# --- output is bounded: the head is kept, the rest counted ---
echo 'sh head -c 100000 /dev/zero; echo tail >&2' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
cat "$M/procs/$last/wait" >/dev/null
expect "stdout keeps output_max bytes" "$(stat -c %s "$M/procs/$last/stdout") $(wc -c < "$M/procs/$last/stdout")" "65536 65536"
expect "status counts what was dropped" "$(sed -n 's/^stdout_dropped: //p' "$M/procs/$last/status")" "34464"
expect "stderr has its own budget" "$(cat "$M/procs/$last/stderr")" "tail"

# --- nice= ---
echo 'sleep nice=5 time=10m' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
expect "nice= on a forked built-in" "$(ps -o ni= -p "$(cat "$M/procs/$last/pid")" | tr -d ' ')" "5"
echo kill > "$M/procs/$last/ctl"
echo 'exec nice=7 sleep 600' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
expect "nice= on a spawned program" "$(ps -o ni= -p "$(cat "$M/procs/$last/pid")" | tr -d ' ')" "7"
echo kill > "$M/procs/$last/ctl"
expect "nice= out of range is refused" "$(write_err "$M/spawn" 'sleep nice=20')" "Invalid argument"

# --- grandchildren die with the group ---
echo 'sh sleep 101 & sleep 102 & wait' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
check "grandchildren started" wait_until 400 pgrep -f 'sleep 10[12]'
echo term > "$M/procs/$last/ctl"
cat "$M/procs/$last/wait" >/dev/null
check "term reaches the whole process group" wait_until 400 sh -c '! pgrep -f "sleep 10[12]"'

# --- environment ---
echo 'sh echo $PCFS_ID $PCFS_MOUNT $FOO' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
cat "$M/procs/$last/wait" >/dev/null
expect "tasks see PCFS_ID and PCFS_MOUNT" "$(cat "$M/procs/$last/stdout")" "$last $M"
echo 'sh env=FOO=bar cwd=/tmp echo $FOO $(pwd)' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
cat "$M/procs/$last/wait" >/dev/null
expect "env= and cwd=" "$(cat "$M/procs/$last/stdout")" "bar /tmp"

# --- start methods ---
for m in spawn vfork clone fork; do
	echo "exec method=$m /bin/echo via $m" > "$M/spawn"
	last=$(ls "$M/procs" | sort -n | tail -1)
	expect "exec method=$m" "$(cat "$M/procs/$last/wait") $(cat "$M/procs/$last/stdout") $(cat "$M/procs/$last/method")" "0 via $m $m"
done
for m in fork spawn vfork clone; do
	echo "cpu method=$m ops=5" > "$M/spawn"
	last=$(ls "$M/procs" | sort -n | tail -1)
	expect_match "cpu method=$m" "$(cat "$M/procs/$last/wait") $(cat "$M/procs/$last/stdout")" "^0 cpu ops=5 "
done
# One write of many lines: the processes start several at a time (one thread
# per CPU), yet every id is its own line's task, in the order of the write,
# around a thread line and a failing line.
{
	for i in $(seq 1 12); do echo "exec /bin/echo line $i"; done
	echo 'noop 2 as=thread'
	echo 'exec /no/such/program'
	for m in vfork clone fork spawn; do echo "exec method=$m /bin/echo line $m"; done
} > "$WORKDIR/batch"
exec 3<>"$M/spawn"; cat "$WORKDIR/batch" >&3
ids=(); for _ in $(seq 19); do read -r id <&3; ids+=("$id"); done; exec 3>&-
got=""
for id in "${ids[@]}"; do got+="$(cat "$M/procs/$id/wait"):$(cat "$M/procs/$id/stdout" "$M/procs/$id/method");"; done
want=""
for i in $(seq 1 12); do want+="0:line $i"$'\n'"spawn;"; done
want+="0:pthread;0:pthread;127:spawn;"
for m in vfork clone fork spawn; do want+="0:line $m"$'\n'"$m;"; done
expect "a batch of 19 lines: each id runs its own line" "$got" "$want"
expect "... with consecutive ids" "$((ids[18] - ids[0]))" "18"

echo 'exec /no/such/program' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
expect "a program that cannot start: state failed" "$(cat "$M/procs/$last/state")" "failed"
expect_match "... with the reason in error" "$(cat "$M/procs/$last/error")" 'No such file or directory'
expect "... and exitcode 127 like a shell" "$(cat "$M/procs/$last/wait")" "127"

# --- threads vs processes ---
echo 'sleep 3 as=thread time=300ms' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
t1=$((last - 2)); t2=$((last - 1)); t3=$last
expect "threads of one line share one host pid" "$(cat "$M/procs/$t1/pid")" "$(cat "$M/procs/$t3/pid")"
check "... which is not the daemon" test "$(cat "$M/procs/$t1/pid")" != "$PCFS_PID"
check "... and each has its own tid" test "$(cat "$M/procs/$t1/tid")" != "$(cat "$M/procs/$t2/tid")"
expect "kind thread, method pthread" "$(cat "$M/procs/$t1/kind") $(cat "$M/procs/$t1/method")" "thread pthread"
echo 'sleep 3 time=300ms' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
check "processes of one line have different pids" test "$(cat "$M/procs/$((last-2))/pid")" != "$(cat "$M/procs/$last/pid")"
echo 'sleep 2 as=thread time=10m' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
echo term > "$M/procs/$((last-1))/ctl"
expect "term on a thread stops it cooperatively: -15" "$(cat "$M/procs/$((last-1))/wait")" "-15"
expect "... and its sibling keeps running" "$(cat "$M/procs/$last/state")" "running"
expect "stop on a thread is refused: EINVAL" "$(write_err "$M/procs/$last/ctl" stop)" "Invalid argument"
expect "cont on a thread too" "$(write_err "$M/procs/$last/ctl" cont)" "Invalid argument"
check "... saying why in /log" grep -q 'a thread cannot be stopped on its own' "$M/log"
expect "... its host was not stopped: the thread runs" "$(cat "$M/procs/$last/state") $(awk '{ print $3 }' "/proc/$(cat "$M/procs/$last/pid")/stat")" "running S"
echo kill > "$M/procs/$last/ctl"
expect "kill on a thread: -9" "$(cat "$M/procs/$last/wait")" "-9"
expect "exec as a thread is refused" "$(write_err "$M/spawn" 'exec as=thread /bin/true')" "Invalid argument"
expect "over max_threads (64): EAGAIN, nothing starts" \
	"$(write_err "$M/spawn" 'sleep 65 as=thread time=1s')" "Resource temporarily unavailable"

# --- malformed lines: refused whole, nothing starts, reason readable ---
# the newest id, not the count: tasks that end meanwhile may be forgotten
# (history is bounded), which a slow machine makes happen here
before=$(ls "$M/procs" | sort -n | tail -1)
# bash's printf writes each line separately; cat writes a small file at once
printf 'sleep time=1s\nbogus 2\n' > "$WORKDIR/batch"
exec 3<>"$M/spawn"
cat "$WORKDIR/batch" >&3 2>/dev/null
read -r reply <&3
exec 3>&-
expect_match "the reason is readable on the same descriptor" "$reply" "^error: line 2: unknown workload 'bogus'"
expect "nothing started from the refused write" "$(ls "$M/procs" | sort -n | tail -1)" "$before"
check "the reason is in /log" grep -q "unknown workload 'bogus'" "$M/log"
expect "bad option value" "$(write_err "$M/spawn" 'sleep time=forever')" "Invalid argument"
expect "unknown option" "$(write_err "$M/spawn" 'cpu wibble=1')" "Invalid argument"
expect "empty write" "$(write_err "$M/spawn" '')" "Invalid argument"
check "printf without a newline still starts (at close)" sh -c "printf 'noop' > '$M/spawn'"
check "a line written in two pieces is gathered" python3 -c "
import os; fd = os.open('$M/spawn', os.O_WRONLY | os.O_TRUNC)
os.write(fd, b'noop '); os.write(fd, b'name=pieces\n'); os.close(fd)"
last=$(ls "$M/procs" | sort -n | tail -1)
expect_match "... and started once" "$(cat "$M/procs/$last/status")" 'name: pieces'
expect "writes to read-only files are refused" "$(write_err "$M/procs/$last/state" x)" "Permission denied"

# --- rmdir ---
echo 'sleep time=10m' > "$M/spawn"
last=$(ls "$M/procs" | sort -n | tail -1)
check_fails "rmdir of a running task fails (EBUSY)" rmdir "$M/procs/$last"
echo kill > "$M/procs/$last/ctl"; cat "$M/procs/$last/wait" >/dev/null
check "rmdir forgets an ended task" rmdir "$M/procs/$last"
check_fails "... and it is gone" test -e "$M/procs/$last/state"

# --- the kernel keeps names of task directories (ops.c, inval.c): they must
# still come and go at once ---
next=$((last + 1))
check_fails "a task not yet started is not there" stat "$M/procs/$next"
echo noop > "$M/spawn"
check "... and is there at once when it starts (no cached ENOENT)" cat "$M/procs/$next/state"
cat "$M/procs/$next/wait" >/dev/null
stat "$M/procs/$next" "$M/procs/$next/status" >/dev/null; cat "$M/procs/$next/status" >/dev/null
check "rmdir of a looked-up task" rmdir "$M/procs/$next"
check_fails "... stat says it is gone at once" stat "$M/procs/$next"
check_fails "... ls too" ls "$M/procs/$next"
check_fails "... cat too" cat "$M/procs/$next/status"
# forgotten by [tasks] history (50 newer ended tasks), not by rmdir: the
# kernel's entry is dropped for us (stat would show the cached directory for
# up to 1 s otherwise)
old=$((next + 1))
echo noop > "$M/spawn"; cat "$M/procs/$old/wait" >/dev/null
cat "$M/procs/$old/status" >/dev/null
exec 3<>"$M/spawn"; echo 'noop 50 as=thread' >&3; for _ in $(seq 50); do read -r newest <&3; done; exec 3>&-
stat "$M/procs/$old" >/dev/null
cat "$M/procs/$newest/wait" >/dev/null
check "the 51st newest ended task is forgotten" wait_until 400 sh -c "! ls '$M/procs' | grep -qx $old"
check_fails "... stat says it is gone at once" stat "$M/procs/$old"
check_fails "... ls too" ls "$M/procs/$old"
check_fails "... cat too" cat "$M/procs/$old/state"
check "a task's files show what is true at each open" sh -c "
	exec 3<>'$M/spawn'; echo 'sleep time=10m' >&3; read -r id <&3; exec 3>&-
	[ \"\$(cat '$M'/procs/\$id/state)\" = running ] || exit 1
	echo kill > '$M'/procs/\$id/ctl; cat '$M'/procs/\$id/wait >/dev/null
	[ \"\$(cat '$M'/procs/\$id/state)\" = killed ] && [ \"\$(cat '$M'/procs/\$id/alive)\" = 0 ]"

# --- limits: EAGAIN, the mount stays usable ---
expect "over max_processes: EAGAIN, nothing starts" "$(write_err "$M/spawn" 'sleep 41 time=1s')" "Resource temporarily unavailable"
# each of the loop's tasks outlives the loop, however slow the machine makes
# it: it is the number alive, not their pace, that reaches the limit
check_fails "a runaway spawn loop is refused, not fatal" sh -c "for i in \$(seq 100); do echo 'sleep time=10m' > '$M/spawn' || exit 1; done"
check "the mount still answers" cat "$M/stats"
check "refusals are counted" test "$(sed -n 's/^refused: //p' "$M/stats")" -gt 0
for d in "$M"/procs/*/; do [ "$(cat "$d/alive" 2>/dev/null)" = 1 ] && echo kill > "$d/ctl"; done
check "everything is reaped" wait_until 600 grep -qx 'running: 0' "$M/stats"

# --- a bad config stops startup with file:line and a non-zero exit ---
printf '[tasks]\nhistory = 10\nbogus_key = 1\n' > "$WORKDIR/bad.ini"
out=$("$PCFS" -f --config "$WORKDIR/bad.ini" "$WORKDIR" 2>&1); rc=$?
expect "a bad config: exit status 2" "$rc" "2"
expect_match "... saying file:line: reason" "$out" "bad.ini:3: unknown key 'bogus_key' in \[tasks\]"
printf '[limits]\nmax_tasks = 0\n' > "$WORKDIR/bad2.ini"
expect_match "an out-of-range value too" "$("$PCFS" -f --config "$WORKDIR/bad2.ini" "$WORKDIR" 2>&1)" 'bad2.ini:2: .*out of range'
check_fails "a missing config file" "$PCFS" -f --config "$WORKDIR/none.ini" "$WORKDIR"

# --- status reads a live process's CPU times when it opens (the one file that does) ---
# (it computes for ten minutes, killed below: on a loaded machine it gets a
# small share of a CPU, and it must still be computing at the later reads)
exec 3<>"$M/spawn"; echo 'cpu time=10m' >&3; read -r cid <&3; exec 3>&-
check "a running cpu task's status shows its CPU time so far" wait_until 600 sh -c \
	"[ \"\$(cat '$M/procs/$cid/state')\" = running ] && awk '/^utime: / { exit !(\$2 > 0.1) }' '$M/procs/$cid/status'"
# the process's stat file stays open from the first read on: each read is
# live, so a later one shows more (how soon depends on the CPU it is given)
u1=$(awk '/^utime: / { print $2 }' "$M/procs/$cid/status")
more_than_u1() { u2=$(awk '/^utime: / { print $2 }' "$M/procs/$cid/status"); awk -v a="$u1" -v b="$u2" 'BEGIN { exit !(b > a) }'; }
u2=
check "... and every later read of it is live (from $u1 s)" wait_until 400 more_than_u1
echo "     | then $u2 s"
echo kill > "$M/procs/$cid/ctl"; cat "$M/procs/$cid/wait" >/dev/null
f1=$(awk '/^utime: / { print $2 }' "$M/procs/$cid/status"); sleep 0.2
f2=$(awk '/^utime: / { print $2 }' "$M/procs/$cid/status")
check "... and final once it ended ($f1 s, then $f2 s)" test -n "$f1" -a "$f1" = "$f2"

# --- output pipes: a process that closes its stdout early runs on, and what
# a descendant writes after the task's end is still captured ---
# (each goes on when the test creates a file, not after a time a loaded
# machine could use up before the checks)
exec 3<>"$M/spawn"
echo "sh echo before; exec >&-; while [ ! -e $WORKDIR/go.oc ]; do sleep 0.05; done; echo after >&2" >&3; read -r oc <&3
echo "sh echo parent; (while [ ! -e $WORKDIR/go.od ]; do sleep 0.05; done; echo child) & exit 0" >&3; read -r od <&3
exec 3>&-
check "a process that closed its stdout is still running" wait_until 400 sh -c \
	"grep -qx before '$M/procs/$oc/stdout' && [ \"\$(cat '$M/procs/$oc/state')\" = running ]"
touch "$WORKDIR/go.oc"
expect "... then ends as itself, its output whole" \
	"$(timeout 60 cat "$M/procs/$oc/wait")|$(cat "$M/procs/$oc/stdout")|$(cat "$M/procs/$oc/stderr")" "0|before|after"
expect "a task whose child outlives it ends at its own exit" "$(timeout 60 cat "$M/procs/$od/wait")" "0"
touch "$WORKDIR/go.od"
check "... and what the child writes later is captured too" wait_until 400 sh -c \
	"[ \"\$(cat '$M/procs/$od/stdout')\" = \"\$(printf 'parent\\nchild')\" ]"

# --- /wait: many tasks on one descriptor, in the order they end ---
# The order they end in is set by the tasks, not by sleeps a loaded machine
# could reorder: each waits, through the mount, for the one that must end
# before it (ids of one write are consecutive): w3 fails to start, w2 ends
# after w3, w4 after w2, w1 after w4.
after() { echo "until cat \"\$PCFS_MOUNT/procs/\$((PCFS_ID $1))/wait\"; do sleep 0.05; done >/dev/null 2>&1"; }
printf '%s\n' "sh $(after +3); exit 3" "sh $(after +1); kill -9 \$\$" 'exec /nonexistent/prog' \
	"sh $(after -2)" > "$WORKDIR/batch"
exec 3<>"$M/spawn"; cat "$WORKDIR/batch" >&3
read -r w1 <&3; read -r w2 <&3; read -r w3 <&3; read -r w4 <&3; exec 3>&-
exec 3<>"$M/wait"
echo "$w1-$w4" >&3
got=$(timeout 60 cat <&3); rc=$?
expect "wait: one ID CODE line per task, in the order they end, then EOF" "$rc:$got" \
	"0:$w3 127
$w2 -9
$w4 0
$w1 3"
echo "$w2 $w1" >&3
expect "ended tasks are told at once (in the order they ended)" "$(timeout 5 cat <&3)" "$w2 -9
$w1 3"
check_fails "a malformed item refuses the whole write" sh -c "echo '$w1 x' >&3"
expect "... saying why on the descriptor" "$(timeout 5 cat <&3)" "error: 'x': not a task id or a range A-B"
expect_match "... and in /log" "$(tail -1 "$M/log")" "wait: refused \(Invalid argument\): 'x': not a task id"
expect "an id never given: EINVAL" "$(write_err "$M/wait" "$w1 999999")" "Invalid argument"
expect_match "... naming it" "$(tail -1 "$M/log")" 'no task 999999 \(the newest is [0-9]+\)'
expect "a backwards range: EINVAL" "$(write_err "$M/wait" "$w4-$w1")" "Invalid argument"
expect "no ids at all: EINVAL" "$(write_err "$M/wait" " ")" "Invalid argument"
expect "more ids than [limits] max_tasks (20000) could name: E2BIG" \
	"$(write_err "$M/wait" "1-30000")" "Argument list too long"
expect_match "... naming the limit" "$(tail -1 "$M/log")" 'more ids than \[limits\] max_tasks=20000'
exec 3>&-
echo 'sleep time=10m' > "$M/spawn"; ws=$(ls "$M/procs" | sort -n | tail -1)
out=$(python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NONBLOCK)
os.write(fd, (sys.argv[2] + "\n").encode())
try:
    os.read(fd, 64); print("read")
except BlockingIOError:
    print("EAGAIN")' "$M/wait" "$ws")
expect "O_NONBLOCK: EAGAIN while every task still runs" "$out" "EAGAIN"
exec 3<>"$M/wait"; echo "$ws" >&3
start=$(date +%s%N)
timeout -s INT 0.3 cat <&3; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect "Ctrl-C on a blocked /wait reader ends it" "$rc" "124"
check "... at once ($ms ms; the task runs 10 minutes)" test "$ms" -lt 10000
polled=$(python3 -c '
import select, sys, os
p = select.poll(); p.register(3, select.POLLIN)
before = p.poll(0)
os.system("echo kill > " + sys.argv[1])
after = p.poll(5000)
print(len(before), len(after))' "$M/procs/$ws/ctl")
expect "poll(): not readable while pending, readable once one ends" "$polled" "0 1"
expect "... and the line is there" "$(timeout 5 cat <&3)" "$ws -9"
exec 3>&-
rmdir "$M/procs/$w4"
exec 3<>"$M/wait"; echo "$w4 $w1" >&3
expect "a forgotten task is told as such" "$(timeout 5 cat <&3)" "$w4 forgotten
$w1 3"
exec 3>&-

# --- the fork server, restarted by a write that also starts processes directly ---
# Parallel spawn helpers are short-lived threads, and the fork server's
# PR_SET_PDEATHSIG follows the thread that started it: a helper must never be
# the one that restarts it.  The second line is the one a helper, started
# while the writing thread execs the first, takes; several rounds, as that is
# a race.
fserver() { ps --ppid "$PCFS_PID" -o pid=,args= | awk '/pcfs-worker forkserver/ { print $1 }'; }
fserver_up() { test -n "$(fserver)"; }     # (functions: wait_until asks again each time)
fserver_gone() { test -z "$(fserver)"; }
server_ends() { grep -c 'fork server (pid [0-9]*) ended' "$M/log"; }
{ echo 'exec true'; echo noop; for i in $(seq 6); do echo 'exec true'; echo noop; done; } > "$WORKDIR/mixed"
for round in $(seq 10); do
	echo noop > "$M/spawn"   # a fork server is up
	wait_until 400 fserver_up
	kill -9 "$(fserver)"
	wait_until 400 fserver_gone
	check "round $round: a write of exec lines and fork built-ins" cp "$WORKDIR/mixed" "$M/spawn"
done
# the tenth end is logged once the daemon reaps it; then a moment for an
# eleventh, which a server that died with a helper thread would add
ten_ends() { [ "$(server_ends)" -ge 10 ]; }
wait_until 400 ten_ends
sleep 0.5
ended=$(server_ends)
expect "the fork server restarted by those writes lives on (ended only when killed)" "$ended" "10"
exec 3<>"$M/spawn"; echo 'exec method=fork true' >&3; read -r id <&3; exec 3>&-
expect "... and a later fork-method spawn works" "$(timeout 10 cat "$M/procs/$id/wait")" "0"
check_fails "... without the server failing to answer" grep -q 'fork server did not answer' "$M/log"

# --- many parked waiters do not stall the mount ---
# They wait for a task that runs on (the newest task had ended: they did not
# park).  The answer is timed against the same ls and cat before they park:
# a loaded or sanitized machine is slower at both, a stalled mount would not
# answer until the task ends, 10 minutes on.
timed_ls_cat() {
	local t0; t0=$(date +%s%N); ls "$M/procs" >/dev/null; cat "$M/stats" >/dev/null
	echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
exec 3<>"$M/spawn"; echo 'sleep time=10m' >&3; read -r parked <&3; exec 3>&-
base=$(timed_ls_cat)
pids=()
for i in $(seq 1000); do cat "$M/procs/$parked/wait" >/dev/null & pids+=($!); done
sleep 1
ms=$(timed_ls_cat)
check "with 1000 blocked readers, ls and cat answer at once ($ms ms; $base ms before)" \
	test "$ms" -lt $((10 * base + 2000))
blocked=$(for p in "${pids[@]}"; do awk '$3 != "Z"' "/proc/$p/stat" 2>/dev/null; done | wc -l)
expect "... the readers were parked all along" "$blocked" "1000"
kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null
echo kill > "$M/procs/$parked/ctl"; cat "$M/procs/$parked/wait" >/dev/null

# --- unmount with running tasks: nothing left behind ---
echo 'sleep 3 time=60s' > "$M/spawn"
echo 'sleep 2 as=thread time=60s' > "$M/spawn"
echo "sh trap '' TERM; sleep 60" > "$M/spawn"
sleep 0.2
groups=$(for d in "$M"/procs/*/; do [ "$(cat "$d/alive" 2>/dev/null)" = 1 ] && cat "$d/pid"; done | sort -u)
check "tasks are running before unmount" test "$(echo "$groups" | wc -w)" -ge 3
check "unmount: the daemon exits 0" pcfs_umount
left=$(for g in $groups; do pgrep -g "$g"; done)
expect "no task process (or descendant) is left behind" "$left" ""
expect "no zombie children of the test" "$(ps --ppid $$ -o stat= | grep -c Z)" "0"

# --- [tasks] default_time and [limits] max_tasks, on a mount of their own ---
pcfs_mount "[tasks]
default_time = 1500ms
[limits]
max_tasks = 5"
exec 3<>"$M/spawn"; echo 'sleep' >&3; read -r s <&3; echo 'cpu' >&3; read -r c <&3; exec 3>&-
expect "built-ins without time=/ops= run for default_time: sleep ends 0" "$(cat "$M/procs/$s/wait")" "0"
expect_match "... after at least 1.5 s (runtime)" "$(sed -n 's/^runtime: //p' "$M/procs/$s/status")" '^(1\.[5-9]|[2-9]\.|[0-9]{2,}\.)'
expect "cpu ends 0 too" "$(cat "$M/procs/$c/wait")" "0"
expect_match "... having run about 1.5 s (its elapsed=)" "$(cat "$M/procs/$c/stdout")" ' elapsed=(1\.[4-9]|[2-9]\.)'
# not the built-in 10 s: from the task's own clock (elapsed= is from its
# start to its deadline), not the sleep's runtime, which also counts the
# start and the reaping that a loaded machine stretches
check_fails "... not the built-in 10 s (cpu's elapsed= under 9 s)" grep -qE ' elapsed=([0-9]{2,}|9)\.' "$M/procs/$c/stdout"
# max_tasks counts live tasks and kept history: ended ones are forgotten to
# make room, live ones are not, so a write beyond them is refused whole
ended=$(ls "$M/procs" | sort -n | tr '\n' ' ')
expect "two ended tasks are kept" "$ended" "1 2 "
exec 3<>"$M/spawn"; echo 'sleep 4 time=10m' >&3; for _ in 1 2 3 4; do read -r last <&3; done; exec 3>&-
expect "four live tasks: the oldest ended one made room" "$(ls "$M/procs" | sort -n | tr '\n' ' ')" "2 3 4 5 6 "
expect "a fifth live one fits, forgetting the last ended one" "$(echo 'sleep time=10m' > "$M/spawn" && ls "$M/procs" | sort -n | tr '\n' ' ')" "3 4 5 6 7 "
expect "over max_tasks (5 live): EAGAIN" "$(write_err "$M/spawn" 'sleep time=10m')" "Resource temporarily unavailable"
expect "... a write of two lines too, nothing of it starts" \
	"$(printf 'noop\nnoop\n' > "$WORKDIR/two"; { cat "$WORKDIR/two" > "$M/spawn"; } 2>&1 | sed 's/.*: //') $(ls "$M/procs" | wc -l)" \
	"Resource temporarily unavailable 5"
check "... and /log names the limit" grep -q 'would exceed max_tasks=5' "$M/log"
echo kill > "$M/procs/3/ctl"; cat "$M/procs/3/wait" >/dev/null
check "once one ends, a spawn fits again" sh -c "echo noop > '$M/spawn'"
check "unmount: the daemon exits 0" pcfs_umount
finish
