#!/usr/bin/env bash
# Pools and futures (issue 3) through a real mount: the seed's map vs
# as_completed, submit/result/wait/cancel/ctl, worker death, shutdown, retries,
# timeouts, concurrent submitters, thread pools, pipelining (futures handed to
# a worker ahead: cancel, a worker's death, a shrink), poll(), limits and bad names.
. "$(dirname "$0")/lib.sh"
# [pools] ahead = 10s: once a pool has run something, its workers are handed
# futures ahead up to depth (32) whatever the machine's load, so the
# pipelining tests below know what is where, and the others run with it.
pcfs_mount "[limits]
max_queued = 5000
[tasks]
kill_grace = 300ms
[pools]
ahead = 10s"
P=$M/pools

# one write of several lines (bash's printf would write line by line)
lines() { printf '%s\n' "$@" > "$WORKDIR/lines"; cat "$WORKDIR/lines"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

check "mkdir creates a pool" mkdir "$P/sq"
expect "its files" "$(ls "$P/sq" | tr '\n' ' ')" \
	"as_completed completed ctl events events.json futures joblog map progress progress.json status status.json submit workers "
expect_match "ctl shows the settings" "$(cat "$P/sq/ctl")" '^workers=[0-9]+ type=process gil=0$'
echo workers=4 > "$P/sq/ctl"
expect "workers= resizes" "$(sed -n 's/^workers: //p' "$P/sq/status")" "4"

# --- the seed's example: map keeps submission order, as_completed finishing order ---
# The claims about time are checked from each future's own record, not the
# test's clock (a loaded machine stretches both): futures of one write share
# their submission, so queued_for is a start and queued_for + runtime an end
# on one time line.  The workers start on the first submit: first that.
echo noop > "$P/sq/submit"; cat "$P/sq/futures/1/wait" >/dev/null
wait_until 400 sh -c "[ \"\$(sed -n 's/^ready: //p' '$P/sq/status')\" = 4 ]"
SQ=('sh sleep 0.3; echo 9' 'sh sleep 0.1; echo 1' 'sh sleep 0.4; echo 16' 'sh sleep 0.2; echo 4')
exec 3<>"$P/sq/map"
lines "${SQ[@]}" >&3
got=$(cat <&3 | tr '\n' ' ')
exec 3>&-
expect "map gives results in submission order" "$got" "9 1 16 4 "
read -r span sum < <(fut_times sq 2 3 4 5 | span_sum)
check "map runs them side by side: first start to last end ($span s) is less than the sum ($sum s)" \
	awk "BEGIN { exit !($span < $sum) }"
exec 3<>"$P/sq/as_completed"
lines "${SQ[@]}" >&3
ac=$(cat <&3)
exec 3>&-
expect "as_completed gives each result once" "$(echo "$ac" | cut -d' ' -f2 | sort -n | tr '\n' ' ')" "1 4 9 16 "
ends=$(fut_times sq $(echo "$ac" | cut -d' ' -f1) | awk '{ printf "%s ", $2 }')
check "as_completed gives them in the order they finished (ends at $ends s)" \
	awk -v e="$ends" 'BEGIN { n = split(e, a, " "); for (i = 2; i <= n; i++) if (a[i] + 0 < a[i - 1] + 0) exit 1 }'

# --- submit, futures/ID files ---
exec 3<>"$P/sq/submit"
echo 'sh echo hello; echo oops >&2' >&3; read -r f1 <&3
echo 'sh exit 3' >&3; read -r f2 <&3
exec 3>&-
expect "result blocks, then gives stdout" "$(cat "$P/sq/futures/$f1/result")" "hello"
expect "wait gives the final state" "$(cat "$P/sq/futures/$f1/wait")" "done"
expect "exitcode" "$(cat "$P/sq/futures/$f1/exitcode")" "0"
expect "status shows the line" "$(sed -n 's/^cmd: //p' "$P/sq/futures/$f1/status")" 'sh echo hello; echo oops >&2'
expect "stderr is kept apart" "$(cat "$P/sq/futures/$f1/stderr")" "oops"
expect "a failing task: state failed" "$(cat "$P/sq/futures/$f2/wait")" "failed"
expect "... exitcode" "$(cat "$P/sq/futures/$f2/exitcode")" "3"
expect "... error says why" "$(cat "$P/sq/futures/$f2/error")" "exit status 3"
check_fails "... and result fails (EIO), as result() raises" cat "$P/sq/futures/$f2/result"
task=$(cat "$P/sq/futures/$f1/task")
check "task names a worker in /procs" test -d "$M/procs/$task"
expect_match "workers/N link to their task directories" "$(readlink "$P/sq/workers/1")" '^\.\./\.\./\.\./procs/[0-9]+$'
expect "workers/1/pid works through the link" "$(cat "$P/sq/workers/1/pid")" "$(cat "$M/procs/$(basename "$(readlink "$P/sq/workers/1")")/pid")"
if command -v jq >/dev/null; then
	expect "status.json" "$(jq -r '.state + " " + (.exitcode|tostring)' "$P/sq/futures/$f2/status.json")" "failed 3"
	expect "pool status.json counts" "$(jq -r '.done >= 9 and .failed >= 1' "$P/sq/status.json")" "true"
	expect "progress.json" "$(jq -r '.done == .total' "$P/sq/progress.json")" "true"
fi

# --- built-ins run inside the worker: its pid, not a new process ---
echo 'cpu ops=3' > "$P/sq/submit"
last=$(ls "$P/sq/futures" | sort -n | tail -1)
expect_match "a built-in's result is its result line" "$(cat "$P/sq/futures/$last/result")" '^cpu ops=3 '
expect "it ran in a worker process" "$(cat "$M/procs/$(cat "$P/sq/futures/$last/task")/kind")" "process"

# --- environment ---
echo 'sh echo $PCFS_POOL $PCFS_SLOT' > "$P/sq/submit"
last=$(ls "$P/sq/futures" | sort -n | tail -1)
expect_match "tasks see PCFS_POOL and PCFS_SLOT" "$(cat "$P/sq/futures/$last/result")" '^sq [1-4]$'

# --- a line near the 64 KiB limit: its RUN is too big for a batch and goes alone ---
long=$(head -c 65480 /dev/zero | tr '\0' x)
printf 'sh echo %s | wc -c\n' "$long" > "$P/sq/submit"
last=$(ls "$P/sq/futures" | sort -n | tail -1)
expect "a 65,496-byte line runs (not pending forever)" "$(timeout 120 cat "$P/sq/futures/$last/wait")" done
expect "... with its whole line" "$(cat "$P/sq/futures/$last/result")" 65481

# --- cancel and ctl ---
mkdir "$P/one"; echo workers=1 > "$P/one/ctl"
# futures ended by a ctl (or a worker's death) run for minutes: they must
# still run when the checks come, however loaded the machine
exec 3<>"$P/one/submit"
echo 'sleep time=10m' >&3; read -r run <&3
echo 'sleep time=10m' >&3; read -r pend <&3
exec 3>&-
check "the first runs" wait_until 400 grep -qx running "$P/one/futures/$run/state"
expect "the second waits" "$(cat "$P/one/futures/$pend/state")" "pending"
expect "cancel of a running future: EBUSY" "$(write_err "$P/one/futures/$run/cancel" 1)" "Device or resource busy"
check "cancel of a pending one works" sh -c "echo 1 > '$P/one/futures/$pend/cancel'"
expect "... it is cancelled" "$(cat "$P/one/futures/$pend/wait")" "cancelled"
check_fails "... and result fails (ECANCELED)" cat "$P/one/futures/$pend/result"
echo term > "$P/one/futures/$run/ctl"
expect "ctl term stops a running future: failed" "$(cat "$P/one/futures/$run/wait")" "failed"
expect "... with -15" "$(cat "$P/one/futures/$run/exitcode")" "-15"

# --- a worker killed mid-task fails only its future; a replacement starts ---
mkdir "$P/w"; echo workers=2 > "$P/w/ctl"
exec 3<>"$P/w/submit"
echo 'sleep time=10m' >&3; read -r a <&3
# b runs until the test lets it end (a file appears)
echo "sh while [ ! -e $WORKDIR/go.b ]; do sleep 0.05; done" >&3; read -r b <&3
exec 3>&-
check "both run" wait_until 400 sh -c "grep -qx running '$P/w/futures/$a/state' && grep -qx running '$P/w/futures/$b/state'"
victim=$(cat "$M/procs/$(cat "$P/w/futures/$a/task")/pid")
kill -9 "$victim"
expect "the killed worker's future fails" "$(cat "$P/w/futures/$a/wait")" "failed"
expect_match "... saying the worker died" "$(cat "$P/w/futures/$a/error")" 'worker [0-9]+ died: .*signal 9'
touch "$WORKDIR/go.b"
expect "the other future is unaffected" "$(timeout 60 cat "$P/w/futures/$b/wait")" "done"
check "a replacement worker starts" wait_until 400 sh -c "[ \$(ls '$P/w/workers' | wc -l) = 2 ]"
echo 'noop' > "$P/w/submit"
last=$(ls "$P/w/futures" | sort -n | tail -1)
expect "the pool keeps working" "$(cat "$P/w/futures/$last/wait")" "done"

# --- pause holds the queue, resume lets it go ---
echo pause > "$P/w/ctl"
echo noop > "$P/w/submit"
last=$(ls "$P/w/futures" | sort -n | tail -1)
sleep 0.3
expect "a paused pool starts nothing" "$(cat "$P/w/futures/$last/state")" "pending"
expect_match "ctl shows it paused" "$(cat "$P/w/ctl")" ' paused$'
echo resume > "$P/w/ctl"
expect "resume runs what waited" "$(cat "$P/w/futures/$last/wait")" "done"

# --- a live pool grows and shrinks ---
echo workers=4 > "$P/w/ctl"
echo 'sleep 4 time=300ms' > "$P/w/submit"
check "growing: four workers" wait_until 400 sh -c "[ \$(ls '$P/w/workers' | wc -l) = 4 ]"
echo workers=1 > "$P/w/ctl"
check "shrinking: running tasks finish, then one worker is left" \
	wait_until 400 sh -c "[ \$(ls '$P/w/workers' | wc -l) = 1 ]"
last=$(ls "$P/w/futures" | sort -n | tail -1)
expect "the futures that ran during the shrink are done" "$(cat "$P/w/futures/$last/wait")" "done"
echo workers=2 > "$P/w/ctl"

# --- Ctrl-C on a blocked result ---
echo 'sleep time=10m' > "$P/w/submit"
last=$(ls "$P/w/futures" | sort -n | tail -1)
start=$(now_ms); timeout -s INT 0.3 cat "$P/w/futures/$last/result"; rc=$?
expect "SIGINT ends a reader blocked on result" "$rc" "124"
# at once as against when the future ends, 10 minutes on (a loaded machine
# takes its time to run timeout and cat)
check "... at once" test $(( $(now_ms) - start )) -lt 10000
echo kill > "$P/w/futures/$last/ctl"

# --- retries and timeouts ---
echo 'sh retries=2 echo try; exit 1' > "$P/w/submit"
last=$(ls "$P/w/futures" | sort -n | tail -1)
expect "retries: still failed after 3 attempts" "$(cat "$P/w/futures/$last/wait")" "failed"
expect "... attempts recorded" "$(sed -n 's/^attempts: //p' "$P/w/futures/$last/status")" "3"
echo "sh retries=2 test -e $WORKDIR/w.ran && { echo second; exit 0; }; touch $WORKDIR/w.ran; exit 4" \
	> "$P/w/submit"
last=$(ls "$P/w/futures" | sort -n | tail -1)
expect "retries: a future that fails once, then succeeds, is done" \
	"$(cat "$P/w/futures/$last/wait") $(sed -n 's/^attempts: //p' "$P/w/futures/$last/status")" "done 2"
expect "... with the last run's output and no error left from the first" \
	"$(cat "$P/w/futures/$last/result")|$(cat "$P/w/futures/$last/error")" "second|"
echo 'sleep timeout=200ms time=10m' > "$P/w/submit"
last=$(ls "$P/w/futures" | sort -n | tail -1)
expect "timeout= fails the future" "$(cat "$P/w/futures/$last/wait")" "failed"
expect_match "... as a timeout" "$(cat "$P/w/futures/$last/error")" 'signal 15 \(timeout\)'

# --- shutdown: queued futures still run; then completed ends; rmdir ---
exec 3<>"$P/one/submit"
for i in 1 2 3; do echo 'sleep time=100ms' >&3; read -r x <&3; done
exec 3>&-
echo shutdown > "$P/one/ctl"
expect "submit after shutdown is refused" "$(write_err "$P/one/submit" noop)" "Cannot send after transport endpoint shutdown"
check "queued futures still run to the end" wait_until 400 grep -qx "state: closed" "$P/one/status"
n=$(timeout 30 cat "$P/one/completed" | wc -l)
expect "completed lists every future once, then EOF" "$n" "$(ls "$P/one/futures" | wc -l)"
check "rmdir removes a closed pool" rmdir "$P/one"
check_fails "rmdir of a busy pool: EBUSY" rmdir "$P/w"

mkdir "$P/c"; echo workers=1 > "$P/c/ctl"
# the first runs until the test is done with it (killed after the shutdown)
exec 3<>"$P/c/submit"
echo 'sleep time=10m' >&3; read -r x <&3
for i in 2 3 4; do echo 'sleep time=300ms' >&3; read -r x <&3; done
exec 3>&-
check "the first one runs" wait_until 400 grep -qx running "$P/c/futures/1/state"
echo 'shutdown cancel' > "$P/c/ctl"
echo kill > "$P/c/futures/1/ctl"
check "shutdown cancel: the pool closes" wait_until 400 grep -qx "state: closed" "$P/c/status"
expect "queued futures were cancelled" "$(sed -n 's/^cancelled: //p' "$P/c/status")" "3"

# --- concurrent submitters: nothing lost, nothing twice ---
mkdir "$P/many"; echo workers=2 > "$P/many/ctl"
# 8 shells x 250 submits while another shell cancels whatever is pending
subs=()
for s in $(seq 8); do
	( for i in $(seq 250); do echo "sleep time=1ms name=s$s" > "$P/many/submit" || exit 1; done ) &
	subs+=($!)
done
( for i in $(seq 2 7 2000); do echo 1 > "$P/many/futures/$i/cancel"; done 2>/dev/null ) &
canceller=$!
wait "${subs[@]}" "$canceller"   # not a bare wait: the daemon is a background job too
expect "2000 futures" "$(ls "$P/many/futures" | wc -l)" "2000"
echo shutdown > "$P/many/ctl"
ids=$(timeout 120 cat "$P/many/completed")
expect "completed has each of them exactly once" "$(echo "$ids" | sort -n | uniq | wc -l) $(echo "$ids" | wc -l)" "2000 2000"
done_n=$(sed -n 's/^done: //p' "$P/many/status"); cancelled_n=$(sed -n 's/^cancelled: //p' "$P/many/status")
expect "every future ended done or cancelled" "$((done_n + cancelled_n))" "2000"
n_states=$(cat "$P"/many/futures/*/state | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')
expect "... and the files agree with the counters" "$n_states" "$( [ "$cancelled_n" -gt 0 ] && echo "cancelled=$cancelled_n " )done=$done_n "

# --- thread pools ---
mkdir "$P/t"; echo type=thread > "$P/t/ctl"; echo workers=3 > "$P/t/ctl"
exec 3<>"$P/t/map"
lines 'cpu ops=2' 'sleep time=50ms' 'noop' >&3
out=$(cat <&3)
exec 3>&-
expect_match "a thread pool runs built-ins" "$out" '^cpu ops=2 '
pids=$(for w in "$P/t/workers/"*; do cat "$w/pid"; done | sort -u | wc -l)
expect "its workers are threads of one process" "$pids" "1"
expect "workers are thread tasks" "$(cat "$P/t/workers/1/kind")" "thread"
# a thread pool's worker is a slot thread of a shared host: its ctl is
# refused (asked before gil=, which lets the idle workers go)
expect "ctl of a thread pool's worker: EPERM" "$(write_err "$P/t/workers/1/ctl" term)" "Operation not permitted"
expect "... signal N too" "$(write_err "$P/t/workers/1/ctl" 'signal 9')" "Operation not permitted"
expect "... and the worker lives on" "$(cat "$P/t/workers/1/state")" "running"
check "gil=1 on a thread pool" sh -c "echo gil=1 > '$P/t/ctl'"
# type= and gil= change only while nothing is queued or running
exec 3<>"$P/t/submit"; echo 'sleep time=10m' >&3; read -r busy <&3; exec 3>&-
check "a thread pool busy with a future" wait_until 400 grep -qx running "$P/t/futures/$busy/state"
expect "gil= on a busy pool: EBUSY" "$(write_err "$P/t/ctl" gil=0)" "Device or resource busy"
expect "type= on a busy pool: EBUSY" "$(write_err "$P/t/ctl" type=process)" "Device or resource busy"
check "... saying why in /log" grep -q 'type= and gil= change only while nothing is queued or running' "$M/log"
expect_match "... and nothing changed" "$(cat "$P/t/ctl")" '^workers=3 type=thread gil=1$'
echo kill > "$P/t/futures/$busy/ctl"; cat "$P/t/futures/$busy/wait" >/dev/null
check "once idle, gil= changes again" sh -c "echo gil=1 > '$P/t/ctl'"
expect "gil=1 on a process pool is refused" "$(write_err "$P/w/ctl" gil=1)" "Invalid argument"

# --- pipelining: a worker is handed futures ahead once the pool's pace is known ---
st() { sed -n "s/^$2: //p" "$1/status"; }
# eight noops give the pool a pace; every worker must be ready (one slow to
# start would be handed nothing, and the tests say which worker gets what)
warm() {
	lines noop noop noop noop noop noop noop noop > "$1/submit"; cat "$1/futures/$2/wait" >/dev/null
	wait_until 200 sh -c "[ \"\$(sed -n 's/^ready: //p' '$1/status')\" = \"\$(sed -n 's/^workers: //p' '$1/status')\" ]"
}
mkdir "$P/pl"; echo type=thread > "$P/pl/ctl"; echo workers=1 > "$P/pl/ctl"
warm "$P/pl" 8
# the first runs until the checks are done with it: killed once it has run
# a second, so the last one (timeout=500ms) waited that long behind it
lines 'sleep time=10m' 'sh echo $PCFS_SLOT' noop 'sleep time=100ms timeout=500ms' > "$P/pl/submit"
check "the first runs" wait_until 400 grep -qx running "$P/pl/futures/9/state"
expect "the rest are on the worker's queue: prefetched" "$(st "$P/pl" prefetched) $(st "$P/pl" queued) $(st "$P/pl" running)" "3 3 1"
expect "... and pending, not running, no slot, no attempt" \
	"$(cat "$P/pl/futures/11/state") $(sed -n 's/^attempts: //p' "$P/pl/futures/11/status")" "pending 0"
check "cancel of a future on the worker's queue works" sh -c "echo 1 > '$P/pl/futures/11/cancel'"
expect "... it is cancelled" "$(cat "$P/pl/futures/11/wait")" "cancelled"
expect "... and no longer prefetched" "$(st "$P/pl" prefetched)" "2"
expect "the running one: EBUSY" "$(write_err "$P/pl/futures/9/cancel" 1)" "Device or resource busy"
wait_until 400 sh -c "awk '/^runtime: / { exit !(\$2 >= 1) }' '$P/pl/futures/9/status'"
echo kill > "$P/pl/futures/9/ctl"
expect "the others run after it" "$(cat "$P/pl/futures/10/result")" "1"
expect "a timeout counts from the start, not from the handing" "$(cat "$P/pl/futures/12/wait")" "done"
q12=$(sed -n 's/^queued_for: //p' "$P/pl/futures/12/status")
check "... queued_for is the wait behind the first, past its timeout ($q12 s)" awk "BEGIN { exit !($q12 >= 0.8) }"
# (the first twelve ended: read them, not until a timeout)
expect "completed: the cancel first, then in order" "$(timeout 30 head -n 12 "$P/pl/completed" | tail -4 | tr '\n' ' ')" "11 9 10 12 "
lines "sh while [ ! -e $WORKDIR/go.pl ]; do sleep 0.05; done" noop noop noop > "$P/pl/submit"
check "the next one runs" wait_until 400 grep -qx running "$P/pl/futures/13/state"
expect "... three handed ahead" "$(st "$P/pl" prefetched)" "3"
echo 'shutdown cancel' > "$P/pl/ctl"
touch "$WORKDIR/go.pl"   # (it ran until the shutdown)
check "shutdown cancel: the pool closes" wait_until 400 grep -qx "state: closed" "$P/pl/status"
expect "... the running one ran, those handed ahead were cancelled" \
	"$(for i in 13 14 15 16; do cat "$P/pl/futures/$i/state"; done | tr '\n' ' ')" "done cancelled cancelled cancelled "
expect "... completed lists each once" "$(timeout 30 cat "$P/pl/completed" | sort -n | uniq | wc -l)" "16"

mkdir "$P/pd"; echo workers=1 > "$P/pd/ctl"
warm "$P/pd" 8
lines 'sleep time=10m' 'sh echo $PCFS_SLOT' noop > "$P/pd/submit"
check "a process worker runs the first" wait_until 400 grep -qx running "$P/pd/futures/9/state"
expect "... two on its queue" "$(st "$P/pd" prefetched)" "2"
kill -9 "$(cat "$P/pd/workers/1/pid")"
expect "its death fails only the running future" "$(cat "$P/pd/futures/9/wait")" "failed"
expect "those on its queue run on the replacement" "$(cat "$P/pd/futures/10/wait") $(cat "$P/pd/futures/11/wait")" "done done"
expect "... once" "$(sed -n 's/^attempts: //p' "$P/pd/futures/10/status")" "1"

# a cancel waits for the worker's answer; a worker that does not answer (here
# stopped) leaves the future pending and the cancel gets EAGAIN after 2 s
mkdir "$P/pa"; echo workers=1 > "$P/pa/ctl"
warm "$P/pa" 8
lines 'sleep time=10m' noop > "$P/pa/submit"
check "a process worker runs one, the next is handed to it" wait_until 400 sh -c "grep -qx running '$P/pa/futures/9/state' && [ \"\$(sed -n 's/^prefetched: //p' '$P/pa/status')\" = 1 ]"
wpid=$(cat "$P/pa/workers/1/pid")
kill -STOP "$wpid"
t0=$(now_ms)
expect "cancel of a future held by a worker that does not answer: EAGAIN" \
	"$(write_err "$P/pa/futures/10/cancel" 1)" "Resource temporarily unavailable"
t=$(( $(now_ms) - t0 ))
check "... after waiting about 2 s for it ($t ms)" test "$t" -ge 1900
expect "... the future is still pending" "$(cat "$P/pa/futures/10/state")" "pending"
check "... and /log says the worker did not answer" grep -q "future 10: its worker did not answer the cancel within 2000 ms" "$M/log"
kill -CONT "$wpid"
echo kill > "$P/pa/futures/9/ctl"    # done with the one it ran
expect "once the worker answers, the future runs as if nothing was asked" "$(timeout 60 cat "$P/pa/futures/10/wait")" "done"

mkdir "$P/ps"; echo type=thread > "$P/ps/ctl"; echo workers=2 > "$P/ps/ctl"
warm "$P/ps" 8
# handed one per worker in turn: worker 1 gets 9 11 13, worker 2 gets 10 12 14
# (9 and 10 run until killed after the shrink, as 700 ms ones used to end)
lines 'sleep time=10m' 'sleep time=10m' 'sh echo $PCFS_SLOT' 'sh echo $PCFS_SLOT' \
	'sh echo $PCFS_SLOT' 'sh echo $PCFS_SLOT' > "$P/ps/submit"
check "both workers run" wait_until 400 sh -c "grep -qx running '$P/ps/futures/9/state' && grep -qx running '$P/ps/futures/10/state'"
expect "four are on their queues" "$(st "$P/ps" prefetched)" "4"
echo workers=1 > "$P/ps/ctl"
echo kill > "$P/ps/futures/9/ctl"; echo kill > "$P/ps/futures/10/ctl"
expect "shrinking: what worker 2 held runs on worker 1" \
	"$(for i in 11 12 13 14; do cat "$P/ps/futures/$i/result"; done | tr '\n' ' ')" "1 1 1 1 "
check "one worker is left" wait_until 400 sh -c "[ \$(ls '$P/ps/workers' | wc -l) = 1 ]"
expect "nothing is left prefetched" "$(st "$P/ps" prefetched)" "0"

mkdir "$P/pg"; echo type=thread > "$P/pg/ctl"; echo gil=1 > "$P/pg/ctl"; echo workers=2 > "$P/pg/ctl"
warm "$P/pg" 8
# the first two compute until killed, once it is seen that the other two
# were handed ahead meanwhile; the wall time covers all four runs
t0=$(now_ms)
exec 3<>"$P/pg/map"; lines 'cpu time=10m' 'cpu time=10m' 'cpu time=300ms' 'cpu time=300ms' >&3
check "gil=1: two run, two are handed ahead" wait_until 400 sh -c "[ \"\$(sed -n 's/^prefetched: //p' '$P/pg/status') \$(sed -n 's/^running: //p' '$P/pg/status')\" = '2 2' ]"
echo kill > "$P/pg/futures/9/ctl"; echo kill > "$P/pg/futures/10/ctl"
cat "$P/pg/futures/11/wait" "$P/pg/futures/12/wait" >/dev/null; exec 3>&-
wall=$(( $(now_ms) - t0 ))
cpu=$(for i in 9 10 11 12; do sed -n 's/^cpu: //p' "$P/pg/futures/$i/status"; done | awk '{ s += $1 } END { print s }')
check "... and the GIL still lets one compute at a time (cpu ${cpu} s in ${wall} ms)" \
	awk "BEGIN { exit !($cpu > 0 && $cpu / ($wall / 1000) <= 1.15) }"

# --- poll(): readable when the answer is ready ---
# timed from the submit (python's own start may take longer than the sleep
# on a loaded machine): readable no sooner than the 1 s it sleeps
out=$(python3 - "$P/w" <<'PY'
import os, select, sys, time
t = time.time()
sfd = os.open(sys.argv[1] + "/submit", os.O_RDWR)
os.write(sfd, b"sleep time=1s\n"); fid = os.read(sfd, 64).decode().strip(); os.close(sfd)
fd = os.open(sys.argv[1] + "/futures/" + fid + "/result", os.O_RDONLY | os.O_NONBLOCK)
p = select.poll(); p.register(fd, select.POLLIN)
before = p.poll(0)
ev = p.poll(120000); dt = time.time() - t
print("before=%d ready=%d waited=%d" % (len(before), len(ev), dt >= 1.0))
PY
)
expect "poll() waits for the future, then says readable" "$out" "before=0 ready=1 waited=1"
# a poll() of map before the read at a failed future's turn only looks:
# that read still fails with EIO (the poll's fill used to skip it)
mkdir "$P/mp"; echo workers=2 > "$P/mp/ctl"
out=$(timeout 120 python3 - "$P/mp/map" <<'PY'
import errno, os, select, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b'sh echo a\nsh exit 3\nsh echo c\n')
p = select.poll(); p.register(fd, select.POLLIN)
out = []
for _ in range(6):
    p.poll(5000)
    try:
        d = os.read(fd, 4096)
    except OSError as e:
        out.append(errno.errorcode[e.errno]); continue
    if not d:
        out.append("EOF"); break
    out.append(d.decode().strip())
print(" ".join(out))
PY
)
expect "map, polled before each read: EIO at the failed one's turn" "$out" "a EIO c EOF"

# --- bad input ---
check_fails "bad pool name: space" mkdir "$P/a b"
check_fails "bad pool name: too long" mkdir "$P/$(printf 'x%.0s' $(seq 70))"
expect "bad ctl" "$(write_err "$P/w/ctl" workers=0)" "Invalid argument"
expect "bad line" "$(write_err "$P/w/submit" 'bogus')" "Invalid argument"
expect "as= against the pool type" "$(write_err "$P/w/submit" 'noop as=thread')" "Invalid argument"
expect "queue limit: EAGAIN" "$(write_err "$P/c/submit" noop)" "Cannot send after transport endpoint shutdown"
mkdir "$P/lim"; echo workers=1 > "$P/lim/ctl"; echo pause > "$P/lim/ctl"
expect "over max_queued: EAGAIN" "$(write_err "$P/lim/submit" 'noop 5001')" "Resource temporarily unavailable"
expect "nothing was queued" "$(ls "$P/lim/futures" | wc -l)" "0"

check "unmount with pools: the daemon exits 0" pcfs_umount

# --- [pools] default_workers and depth, on a mount of their own ---
pcfs_mount "[pools]
default_workers = 3
depth = 3
ahead = 10s"
P=$M/pools
mkdir "$P/dw"
expect_match "a new pool has default_workers workers" "$(cat "$P/dw/ctl")" '^workers=3 '
echo noop > "$P/dw/submit"; cat "$P/dw/futures/1/wait" >/dev/null
check "... and starts that many on the first submit" wait_until 200 sh -c "[ \$(ls '$P/dw/workers' | wc -l) = 3 ]"
mkdir "$P/d"; echo workers=1 > "$P/d/ctl"
warm "$P/d" 8
# the first runs until the test lets it end (a file appears)
lines "sh while [ ! -e $WORKDIR/go.d ]; do sleep 0.05; done" noop noop noop noop noop > "$P/d/submit"
check "the first runs" wait_until 400 grep -qx running "$P/d/futures/9/state"
check "depth = 3: the worker holds three, the one it runs and two handed ahead" \
	wait_until 400 sh -c "[ \"\$(sed -n 's/^prefetched: //p' '$P/d/status')\" = 2 ]"
sleep 0.3
expect "... never more: prefetched queued running" "$(st "$P/d" prefetched) $(st "$P/d" queued) $(st "$P/d" running)" "2 5 1"
touch "$WORKDIR/go.d"
expect "all of them run" "$(for i in $(seq 9 14); do cat "$P/d/futures/$i/wait"; done | sort | uniq -c | awk '{ print $1, $2 }')" "6 done"
check "unmount: the daemon exits 0" pcfs_umount

# --- -o max_idle_threads: workers outlive the FUSE thread that started them ---
# (the chaos test: an idle libfuse thread let go took the pool workers it had
# started with it, PR_SET_PDEATHSIG following the thread, failing their futures)
pcfs_mount "" -o max_idle_threads=1
P=$M/pools
# a burst of requests at once brings up FUSE threads that then go idle
burst() { local pids=() i; for i in 1 2 3 4 5 6; do cat "$M/stats" >/dev/null & pids+=($!); done
	wait "${pids[@]}"; }
for n in 1 2 3 4 5 6; do
	mkdir "$P/i$n"
	burst & b=$!
	lines 'sleep time=200ms' 'sleep time=200ms' noop noop > "$P/i$n/submit"
	wait "$b"; burst
done
for n in 1 2 3 4 5 6; do
	burst & b=$!
	echo shutdown > "$P/i$n/ctl"; cat "$P/i$n/completed" >/dev/null; wait "$b"
done
expect "every future done: no worker died with an idle thread" \
	"$(cat "$P"/i*/futures/*/state | sort | uniq -c | awk '{ print $1, $2 }')" "24 done"
expect "no worker was killed" "$(grep -c 'killed by signal' "$M/log")" "0"
expect_match "the option is said to be ignored" "$(cat "$M/log")" 'max_idle_threads is ignored'
check "unmount: the daemon exits 0" pcfs_umount
finish
