#!/usr/bin/env bash
# The Slurm executor (issue 9) against a real single-node cluster started by
# tools/slurm-cluster.sh: success, built-ins on the cluster, exit codes,
# signals, a refused submission, cancel (pending in Slurm), term (running), an
# outside scancel, 30 futures through map, a controller restart, switching
# back to local, jobs scancelled at unmount, and Slurm's OUT_OF_MEMORY told
# as an OOM kill (the cluster restarted with memory enforced).  Skipped (exit 77) only when
# Slurm cannot be started here.
. "$(dirname "$0")/lib.sh"

CLUSTER="$PCFS_SOURCE_DIR/tools/slurm-cluster.sh"
was_up=0
bash "$CLUSTER" status >/dev/null 2>&1 && was_up=1
if ! out=$(bash "$CLUSTER" start 2>&1); then
	echo "SKIP: Slurm cannot be started here:"
	echo "$out" | sed 's/^/     | /'
	exit 77
fi
echo "$out"
stop_cluster() { [ "$was_up" = 1 ] || bash "$CLUSTER" stop >/dev/null 2>&1 || true; }

pcfs_mount "[slurm]
poll_interval = 200ms"
P=$M/pools

fut() { cat "$P/$1/futures/$2/$3" 2>&1; }
wait_final() { timeout 60 cat "$P/$1/futures/$2/wait"; }
submit() { local id; exec 3<>"$P/$1/submit"; echo "$2" >&3; read -r id <&3; exec 3>&-; echo "$id"; }
squeue_state() { squeue -h -t all -j "$1" -o %T 2>/dev/null; }
is_state() { [ "$(fut "$1" "$2" state)" = "$3" ]; }
has_job() { [ -n "$(fut "$1" "$2" slurm_job)" ]; }
job_is() { [ "$(squeue_state "$1")" = "$2" ]; }

# --- setting a pool up ---
check "mkdir a pool" mkdir "$P/hpc"
expect "ctl: executor=slurm with options" \
	"$(write_err "$P/hpc/ctl" 'executor=slurm partition=debug workers=64')" ""
expect "ctl shows the executor and options" "$(cat "$P/hpc/ctl")" \
	"workers=64 type=process gil=0 executor=slurm partition=debug"
expect "status says slurm" "$(sed -n 's/^executor: //p' "$P/hpc/status")" "slurm"
expect "cpus=0 is refused" "$(write_err "$P/hpc/ctl" 'cpus=0')" "Invalid argument"
expect "a bad mem= is refused" "$(write_err "$P/hpc/ctl" 'mem=lots')" "Invalid argument"
expect "mem_max= on a Slurm pool is refused (its jobs take Slurm's mem=)" \
	"$(write_err "$P/hpc/ctl" 'mem_max=1G')" "Invalid argument"
check "... saying why" grep -q "a Slurm pool's jobs take Slurm's mem= and cpus=" "$M/log"
expect "... and on a Slurm pool's line" "$(write_err "$P/hpc/submit" 'sleep mem_max=64M')" "Invalid argument"
expect "a bad partition name is refused" "$(write_err "$P/hpc/ctl" 'partition=a;b')" \
	"Invalid argument"
expect "a bad option on a task line is refused before submission" \
	"$(write_err "$P/hpc/submit" 'sh true cpus=x')" "" # cpus=x after the command is an argument
expect "... but not among the options" "$(write_err "$P/hpc/submit" 'sh cpus=x true')" \
	"Invalid argument"
check "/log says why" grep -q "cpus= takes 1..4096" "$M/log"

# --- success, built-ins, exit codes, signals ---
f1=$(submit hpc 'sh echo hello from $PCFS_POOL $PCFS_ID')
expect "a job that succeeds: done" "$(wait_final hpc "$f1")" "done"
expect "... result is its stdout" "$(fut hpc "$f1" result)" "hello from hpc $f1"
expect "... exitcode 0" "$(fut hpc "$f1" exitcode)" "0"
job=$(fut hpc "$f1" slurm_job)
expect_match "... slurm_job is its job id" "$job" '^[0-9]+$'
expect "... Slurm knows it by name" "$(squeue -h -t all -j "$job" -o '%j|%T')" \
	"pcfs-hpc-$f1|COMPLETED"
expect "... status shows the job" "$(sed -n 's/^slurm_job: //p' "$P/hpc/futures/$f1/status")" "$job"

# a job runs where its line was written, with its writer's environment (issue 17)
mkdir -p "$WORKDIR/sproj/sub"
printf '#!/bin/sh\necho "in $(pwd) FOO=$FOO BAR=${BAR-unset}"\n' > "$WORKDIR/sproj/run.sh"
chmod +x "$WORKDIR/sproj/run.sh"
fw=$(cd "$WORKDIR/sproj" && FOO=slurmy BAR=x bash -c "exec 3<>'$P/hpc/submit'; echo 'exec env=-BAR ./run.sh' >&3; read -r id <&3; echo \$id")
expect "a job runs in its writer's directory, with its writer's environment" \
	"$(wait_final hpc "$fw") $(fut hpc "$fw" result)" "done in $WORKDIR/sproj FOO=slurmy BAR=unset"
fw=$(cd "$WORKDIR/sproj" && bash -c "exec 3<>'$P/hpc/submit'; echo 'sh cwd=sub pwd' >&3; read -r id <&3; echo \$id")
expect "... a relative cwd= is --chdir to that" "$(wait_final hpc "$fw") $(fut hpc "$fw" result)" \
	"done $WORKDIR/sproj/sub"

f2=$(submit hpc 'cpu ops=2000 cpus=1')
expect "a built-in runs on the cluster (pcfs-worker run)" "$(wait_final hpc "$f2")" "done"
expect_match "... its result line" "$(fut hpc "$f2" result)" '^cpu ops=2000 elapsed='

f3=$(submit hpc 'sh echo oops >&2; exit 3')
expect "exit 3: failed" "$(wait_final hpc "$f3")" "failed"
expect "... exitcode 3" "$(fut hpc "$f3" exitcode)" "3"
expect_match "... error names the job and the status" "$(fut hpc "$f3" error)" \
	"^slurm job [0-9]+ FAILED \(NonZeroExitCode\), exit status 3$"
expect "... stderr kept" "$(fut hpc "$f3" stderr)" "oops"
check_fails "... result fails (EIO)" cat "$P/hpc/futures/$f3/result"

f4=$(submit hpc 'sh kill -9 $$')
expect "killed by SIGKILL: failed" "$(wait_final hpc "$f4")" "failed"
expect "... exitcode -9" "$(fut hpc "$f4" exitcode)" "-9"

f5=$(submit hpc 'sh partition=nosuchpartition true')
expect "a submission Slurm refuses: failed" "$(wait_final hpc "$f5")" "failed"
expect_match "... sbatch's message in error" "$(fut hpc "$f5" error)" \
	'^sbatch refused the job: .*[Ii]nvalid partition'
check "... and in /log" grep -q "sbatch refused the job" "$M/log"
expect "... no job id" "$(fut hpc "$f5" slurm_job)" ""

# --- cancel (pending in Slurm), term (running), outside scancel ---
# a running job keeps the next one, which asks for every CPU of the node,
# pending.  The running one takes a single CPU, not the whole node: on a
# cluster others use too, a node-filling job waits for their jobs to end.
mkdir "$P/c"
echo 'executor=slurm workers=8' > "$P/c/ctl"
big=$(awk '/^NodeName/ { for (i = 1; i <= NF; i++) if ($i ~ /^CPUs=/) { sub("CPUs=", "", $i); print $i } }' /etc/slurm/slurm.conf)
: "${big:=16}"
r=$(submit c "sleep time=10m cpus=1")
check "a job runs" wait_until 400 is_state c "$r" running
expect "executor= changes only while idle (EBUSY)" "$(write_err "$P/c/ctl" 'executor=local')" \
	"Device or resource busy"
p=$(submit c "sh echo never cpus=$big")
check "status: two jobs in flight" wait_until 200 grep -qx "busy: 2" "$P/c/status"
check "the next one has a job id" wait_until 200 has_job c "$p"
pjob=$(fut c "$p" slurm_job)
# (Slurm is waited for, not given 0.5 s: a loaded controller is slow to list it)
wait_until 400 job_is "$pjob" PENDING
expect "... and is pending in Slurm" "$(squeue_state "$pjob")" "PENDING"
expect "... and here" "$(fut c "$p" state)" "pending"
check "cancel a pending future" sh -c "echo 1 > '$P/c/futures/$p/cancel'"
expect "... cancelled" "$(fut c "$p" state)" "cancelled"
check "... its job is scancelled" wait_until 200 job_is "$pjob" CANCELLED
expect "cancel of a running one: EBUSY" "$(write_err "$P/c/futures/$r/cancel" 1)" \
	"Device or resource busy"
rjob=$(fut c "$r" slurm_job)
echo term > "$P/c/futures/$r/ctl"
expect "ctl term on a running future: failed" "$(wait_final c "$r")" "failed"
expect "... exitcode -15" "$(fut c "$r" exitcode)" "-15"
expect_match "... error says ctl" "$(fut c "$r" error)" 'killed by signal 15 \(ctl\)$'
check "... the job has ended in Slurm" test "$(squeue_state "$rjob")" != RUNNING

k=$(submit c 'sleep time=120')
check "another job runs" wait_until 400 is_state c "$k" running
echo kill > "$P/c/futures/$k/ctl"
expect "ctl kill: failed" "$(wait_final c "$k")" "failed"
expect "... exitcode -9" "$(fut c "$k" exitcode)" "-9"

x=$(submit c 'sleep time=120')
check "another job runs" wait_until 400 is_state c "$x" running
scancel "$(fut c "$x" slurm_job)"
expect "an admin's scancel: cancelled" "$(wait_final c "$x")" "cancelled"
expect_match "... error says so" "$(fut c "$x" error)" 'cancelled in Slurm \(scancel\)'

# --- many futures, map order, completed ---
mkdir "$P/many"
echo 'executor=slurm workers=64' > "$P/many/ctl"
seq 1 30 | sed 's/^/sh echo /' > "$WORKDIR/lines"
exec 3<>"$P/many/map"
cat "$WORKDIR/lines" >&3
got=$(timeout 120 cat <&3 | tr '\n' ' ')
exec 3>&-
expect "30 futures through map, in submission order" "$got" "$(seq 1 30 | tr '\n' ' ')"
expect "all done" "$(sed -n 's/^done: //p' "$P/many/status")" "30"
echo shutdown > "$P/many/ctl"
expect "completed lists each once, then EOF (shut down)" \
	"$(timeout 60 cat "$P/many/completed" | sort -n | uniq | wc -l)" "30"
jobs=$(for i in $(seq 1 30); do fut many "$i" slurm_job; done | sort -u | wc -l)
expect "... as 30 distinct jobs" "$jobs" "30"

# --- the controller goes away and comes back ---
if grep -qx slurmctld /run/pcfs-slurm/started 2>/dev/null; then
	# (only the controller: a stale pid file's pid may be another process now)
	ctld=$(cat /run/slurmctld.pid)
	[ "$(cat "/proc/$ctld/comm" 2>/dev/null)" = slurmctld ] && kill "$ctld"
	wait_until 200 sh -c "[ \"\$(cat /proc/$ctld/comm 2>/dev/null)\" != slurmctld ]"
	b=$(submit hpc 'sh echo back')
	# sbatch itself retries for ~9 s before it gives up
	check "controller down: /log says the futures wait" \
		wait_until 600 grep -q "futures stay pending" "$M/log"
	expect "... the future stays pending" "$(fut hpc "$b" state)" "pending"
	expect "... without a job" "$(fut hpc "$b" slurm_job)" ""
	expect_match "... error says why" "$(fut hpc "$b" error)" \
		"^waiting for Slurm: .*Unable to contact slurm controller"
	/usr/sbin/slurmctld
	expect "controller back: it completes" "$(wait_final hpc "$b")" "done"
	expect "... with its result" "$(fut hpc "$b" result)" "back"
	check "/log said the controller is back" grep -q "controller answers again" "$M/log"
else
	echo "note: slurmctld was not started by slurm-cluster.sh; not restarting someone else's controller"
fi

# --- back to local ---
expect "executor=local on an idle pool" "$(write_err "$P/hpc/ctl" 'executor=local workers=2')" ""
expect "ctl shows no executor (local)" "$(cat "$P/hpc/ctl")" "workers=2 type=process gil=0"
l=$(submit hpc 'sh echo local')
expect "a local future again" "$(wait_final hpc "$l")" "done"
expect "... no slurm_job" "$(fut hpc "$l" slurm_job)" ""
expect "... a worker task ran it" "$(fut hpc "$l" task | grep -c '^[0-9]')" "1"

# --- examples/slurm-pool.sh prints what it promises ---
if timeout 120 bash "$PCFS_SOURCE_DIR/examples/slurm-pool.sh" "$M" >"$WORKDIR/ex.out" 2>&1; then
	ok "examples/slurm-pool.sh runs"; else bad "examples/slurm-pool.sh runs"; fi
ex=$(cat "$WORKDIR/ex.out")
expect_match "example: a job's result" "$ex" 'result of [0-9]+: hello from .*, Slurm job [0-9]+'
expect_match "example: a built-in's result" "$ex" 'result of [0-9]+: cpu ops=5000 '
expect_match "example: a failed job" "$ex" 'slurm job [0-9]+ -> failed, exitcode 4'
expect_match "example: map" "$ex" 'map: 1 4 9 16 25 36 49 64 81 100 '

# the example took hpc from local back to Slurm: its local workers retire and
# are not replaced (they were, up to workers=64, idle beside the Slurm jobs)
local_workers() { ps --ppid "$PCFS_PID" -o args= | grep -c '^pcfs-worker pool' || true; }
check "a pool gone to Slurm keeps no local workers" wait_until 1000 sh -c \
	"[ \$(ps --ppid $PCFS_PID -o args= | grep -c '^pcfs-worker pool') = 0 ]"
echo "     | local pool workers left: $(local_workers)"

# --- no zombies; unmount scancels jobs in flight ---
# (a child that has just ended is a zombie until the reaper's next turn,
# which a sanitizer build on a loaded machine may take a while to reach:
# one that stays is the bug)
zombies() { ps --ppid "$PCFS_PID" -o stat= | grep -c '^Z' || true; }
wait_until 400 sh -c "[ \"\$(ps --ppid $PCFS_PID -o stat= | grep -c '^Z')\" = 0 ]"
expect "no zombie children of the daemon" "$(zombies)" "0"
u=$(submit c 'sleep time=120')
check "a job in flight at unmount" wait_until 400 is_state c "$u" running
ujob=$(fut c "$u" slurm_job)
check "unmount" pcfs_umount
check "... its job was scancelled" wait_until 200 job_is "$ujob" CANCELLED

# --- a pcfs killed with jobs in flight finds them again ([state] dir) ---
STATE="[state]
dir = $WORKDIR/state
[slurm]
poll_interval = 200ms"
pcfs_mount "$STATE"
P=$M/pools
mkdir "$P/r" && echo 'executor=slurm workers=8' > "$P/r/ctl"
# r1 runs until the test makes a file once pcfs is back (not for 6 s, which
# a loaded machine may spend before the kill); r2 ends while no pcfs runs
r1=$(submit r "sh until [ -e $WORKDIR/r1.go ]; do sleep 0.2; done; echo survived")
r2=$(submit r 'sh sleep 1; echo while away')
check "jobs in flight" wait_until 400 is_state r "$r1" running
j1=$(fut r "$r1" slurm_job)
j2=$(fut r "$r2" slurm_job)
kill -9 "$PCFS_PID"; wait "$PCFS_PID" 2>/dev/null; PCFS_PID=
check "... the jobs outlive the daemon" job_is "$j1" RUNNING
# r2 ends while no pcfs watches it: waited for in Slurm, not for 2 s
check "... one ends while no pcfs runs" wait_until 1200 job_is "$j2" COMPLETED
pcfs_mount "$STATE"
P=$M/pools
expect "restarted: the future has its job again" "$(fut r "$r1" slurm_job)" "$j1"
touch "$WORKDIR/r1.go"
expect "... it ends done" "$(wait_final r "$r1")" "done"
expect "... with the job's output" "$(fut r "$r1" result)" "survived"
expect "a job that ended while no pcfs ran: done" "$(wait_final r "$r2")" "done"
expect "... its output too" "$(fut r "$r2" result)" "while away"
expect "... same job" "$(fut r "$r2" slurm_job)" "$j2"
check "/log says what came back" grep -q "1 pools" "$M/log"
pcfs_umount

# --- Slurm's OUT_OF_MEMORY is an OOM kill: the cluster restarted with its
# memory enforced (task/cgroup, ConstrainRAMSpace), then back as it was
if out=$(SLURM_MEMORY=enforced bash "$CLUSTER" start 2>&1); then
	pcfs_mount "[slurm]
poll_interval = 200ms"
	P=$M/pools
	mkdir "$P/om" && echo 'executor=slurm workers=4' > "$P/om/ctl"
	o=$(submit om 'mem size=512M touch=100% time=30s mem=64M')
	k=$(submit om 'mem size=16M touch=100% time=1s mem=64M')
	expect "a job over its mem=64M fails" "$(wait_final om "$o")" "failed"
	expect "... killed by the OOM killer, as a task over its mem_max= is" \
		"$(fut om "$o" exitcode)|$(fut om "$o" error)|$(sed -n 's/^oom_killed: //p' "$P/om/futures/$o/status")" \
		"-9|killed by the OOM killer (slurm job $(fut om "$o" slurm_job), mem=64M)|1"
	expect "... one within it is done" "$(wait_final om "$k")|$(sed -n 's/^oom_killed: //p' "$P/om/futures/$k/status")" "done|0"
	pcfs_umount
	check "the cluster goes back to its default mode" bash "$CLUSTER" start
else
	echo "skip Slurm's OUT_OF_MEMORY: the cluster cannot enforce memory here:"
	echo "$out" | sed 's/^/     | /'
	bash "$CLUSTER" start >/dev/null 2>&1 || true
fi

stop_cluster
finish
