#!/usr/bin/env bash
# test_state.sh - results that survive the daemon ([state] dir): kill -9 the
# daemon with auto_unmount off, start it again on the same mountpoint: the
# stale mount is cleared, finished tasks and futures are as they were, what
# ran is `lost` (a future with a retry left runs again), what waited runs;
# two daemons never share a dir or a mount.
. "$(dirname "$0")/lib.sh"

ST=$WORKDIR/state
M=$(mktemp -d "$WORKDIR/mnt.XXXX")
CFG=$WORKDIR/state.ini

# start_pcfs CONFIG_TEXT: the daemon in the foreground (background job) on $M
# (ready when it says so: a stale mount there answers a cached stat too)
start_pcfs() { printf '%s\n' "$1" > "$CFG"; pcfs_start_on "$M" "$CFG"; }

CONF="[state]
dir = $ST
[fuse]
auto_unmount = false"
start_pcfs "$CONF"

A=$(echo 'sh echo out; echo err >&2; exit 3' > "$M/spawn"; ls "$M/procs" | sort -n | tail -1)
cat "$M/procs/$A/wait" >/dev/null
# (what must still run at the crash, and after the restart, runs for minutes:
# the checks between take a while on a loaded machine)
echo 'exec name=left /bin/sleep 600' > "$M/spawn"
C=$(ls "$M/procs" | sort -n | tail -1)
echo 'exec /bin/true' > "$M/spawn"
D=$(ls "$M/procs" | sort -n | tail -1)
cat "$M/procs/$D/wait" >/dev/null
rmdir "$M/procs/$D"
CPID=$(cat "$M/procs/$C/pid")

P=$M/pools/p
mkdir "$P"
echo workers=1 > "$P/ctl"
printf 'sh echo f1\nsh sleep 600\nsh echo f3\n' > "$P/submit"
cat "$P/futures/1/wait" >/dev/null
wait_until 1000 grep -qx running "$P/futures/2/state"
expect "before: future 2 runs, 3 waits" "$(cat "$P/futures/2/state") $(cat "$P/futures/3/state")" \
	"running pending"

# a future between two attempts (retries=, its pool paused so the retry waits)
# Its first attempt fails once the pool is paused (the test makes a file),
# not after 0.3 s: a loaded machine could see that attempt end, and the
# retry start, before the pause.
R=$M/pools/r
mkdir "$R"
echo workers=1 > "$R/ctl"
echo "sh retries=2 until [ -e $WORKDIR/r.paused ]; do sleep 0.05; done; exit 1" > "$R/submit"
wait_until 1000 grep -qx running "$R/futures/1/state"
echo pause > "$R/ctl"
touch "$WORKDIR/r.paused"
check "before: future r/1 failed once and waits for its retry" wait_until 1000 sh -c \
	"grep -qx pending '$R/futures/1/state' && grep -qx 'attempts: 1' '$R/futures/1/status'"

# running futures with retries=: one with a retry left (its first run is
# the one the crash takes), one on its last attempt (its first run failed)
LR=$M/pools/lr LX=$M/pools/lx
mkdir "$LR" "$LX"
echo workers=1 > "$LR/ctl"; echo workers=1 > "$LX/ctl"
echo "sh retries=1 test -e $WORKDIR/lr.ran && { echo again; exit 0; }; touch $WORKDIR/lr.ran; sleep 600" \
	> "$LR/submit"
echo "sh retries=1 test -e $WORKDIR/lx.ran && exec sleep 600; touch $WORKDIR/lx.ran; exit 1" \
	> "$LX/submit"
check "before: future lr/1 runs its first attempt" wait_until 1000 sh -c \
	"grep -qx running '$LR/futures/1/state' && grep -qx 'attempts: 1' '$LR/futures/1/status'"
check "before: future lx/1 failed once and runs its last attempt" wait_until 1000 sh -c \
	"grep -qx running '$LX/futures/1/state' && grep -qx 'attempts: 2' '$LX/futures/1/status'"

kill_pcfs() {
	kill -9 "$PCFS_PID"
	wait "$PCFS_PID" 2>/dev/null
	PCFS_PID=
}
kill_pcfs
# (ls, not stat: the kernel may answer a stat from its attribute cache)
check_fails "kill -9 with auto_unmount off leaves a stale mount" ls "$M/procs"
expect_match "ls says so" "$(ls "$M" 2>&1)" "Transport endpoint is not connected"

start_pcfs "$CONF"
expect_match "the new daemon cleared the stale mount" "$(cat "$WORKDIR/pcfs.stderr")" \
	"cleared a stale mount"
expect "one pcfs mount there, not two" "$(grep -c " $M fuse.pcfs " /proc/mounts)" 1

# finished: as it was
expect "exited task: state" "$(cat "$M/procs/$A/state")" exited
expect "exited task: exitcode" "$(cat "$M/procs/$A/exitcode")" 3
expect "exited task: wait" "$(cat "$M/procs/$A/wait")" 3
expect "exited task: stdout" "$(cat "$M/procs/$A/stdout")" out
expect "exited task: stderr" "$(cat "$M/procs/$A/stderr")" err
expect "exited task: cmd" "$(cat "$M/procs/$A/cmd")" 'sh echo out; echo err >&2; exit 3'
expect "exited task: status.json" "$(jq -c '[.state, .exitcode]' "$M/procs/$A/status.json")" \
	'["exited",3]'
check_fails "a forgotten task stays forgotten" test -e "$M/procs/$D"

# running: lost, said honestly
expect "running task: lost" "$(cat "$M/procs/$C/state")" lost
expect "lost: no exitcode" "$(cat "$M/procs/$C/exitcode")" ""
# (its process runs 10 minutes: 60 s is "at once" on any machine; the
# timeouts of this file only catch a hang)
expect "lost: wait answers at once" "$(timeout 60 cat "$M/procs/$C/wait")" lost
expect "lost: status.json" "$(jq -c '[.state, .exitcode, .alive]' "$M/procs/$C/status.json")" \
	'["lost",null,false]'
expect_match "lost: error says the process still runs, and where" "$(cat "$M/procs/$C/error")" \
	"lost: .*still runs.* as pid $CPID"
expect "lost: name kept" "$(cat "$M/procs/$C/name" 2>/dev/null || jq -r .name "$M/procs/$C/status.json")" left
expect "lost, its process still runs: ctl term reaches it" "$(write_err "$M/procs/$C/ctl" term)" ""
check "... and it ends" wait_until 1000 sh -c "! kill -0 $CPID 2>/dev/null"
expect "... it stays lost (its status is still unknown)" "$(cat "$M/procs/$C/state")" lost
expect "ctl on a lost task whose process has gone: ESRCH" "$(write_err "$M/procs/$C/ctl" kill)" \
	"No such process"
kill "$CPID" 2>/dev/null

N=$(echo 'exec /bin/true' > "$M/spawn"; ls "$M/procs" | sort -n | tail -1)
check "new ids go on after the old ones" test "$N" -gt "$C"

# the pool: same futures, same ids
expect "pools are back" "$(ls "$M/pools" | tr "\n" " ")" "lr lx p r "
expect "future 1: done, result kept" "$(cat "$P/futures/1/state") $(cat "$P/futures/1/result")" "done f1"
expect "future 2 (ran): failed" "$(cat "$P/futures/2/state")" failed
expect_match "future 2: error says lost" "$(cat "$P/futures/2/error")" "^lost: "
expect "future 3 (waited): runs now" "$(timeout 60 cat "$P/futures/3/wait"; cat "$P/futures/3/result")" \
	"$(printf 'done\nf3')"
expect "completion order kept" "$(head -3 "$P/completed" | tr '\n' ' ')" "1 2 3 "
expect "the pool goes on numbering" "$(echo 'sh echo f4' > "$P/submit"; ls "$P/futures" | sort -n | tail -1)" 4

# a running future with a retry left is not lost: the crash took one attempt,
# and it runs again, as after a failed run; on its last attempt it is lost
expect "a lost run with a retry left: it runs again, and ends as that run does" \
	"$(timeout 60 cat "$LR/futures/1/wait") $(sed -n 's/^attempts: //p' "$LR/futures/1/status") $(cat "$LR/futures/1/result")" \
	"done 2 again"
check "... /log says it runs again" grep -q "pool lr: future 1 was running when pcfs stopped: it runs again (attempt 2 of 2)" "$M/log"
expect "a lost run with no retry left: failed, lost" \
	"$(timeout 60 cat "$LX/futures/1/wait") $(sed -n 's/^attempts: //p' "$LX/futures/1/status")" \
	"failed 2"
expect_match "... its error says lost" "$(cat "$LX/futures/1/error")" "^lost: "

# the future that waited for a retry had not finished: it waits again, not lost
retry_state() { echo "$(cat "$R/futures/1/state") $(sed -n 's/^attempts: //p' "$R/futures/1/status")"; }
expect "a future waiting for its retry: pending again, its attempt counted" "$(retry_state)" "pending 1"
kill_pcfs
start_pcfs "$CONF"
expect "... and so from the compacted journal" "$(retry_state)" "pending 1"
echo resume > "$R/ctl"
expect "... resumed, it runs its two retries and fails as itself" \
	"$(timeout 60 cat "$R/futures/1/wait") $(sed -n 's/^attempts: //p' "$R/futures/1/status") $(cat "$R/futures/1/error")" \
	"failed 3 exit status 1"

# one daemon per state dir, one pcfs per mountpoint
M2=$(mktemp -d "$WORKDIR/mnt2.XXXX")
out=$("$PCFS" -f --config "$CFG" "$M2" 2>&1); rc=$?
expect "a second daemon on the same dir: refused (exit 2)" "$rc" 2
expect_match "...saying who has it" "$out" "in use by another pcfs, pid $PCFS_PID"
out=$("$PCFS" -f "$M" 2>&1); rc=$?
expect "a second pcfs on a live mount: refused (exit 2)" "$rc" 2
expect_match "...saying why" "$out" "already mounted"

# a clean stop and a start with a smaller history: the newest stay
pcfs_umount
check "journal has no forget records after compaction" bash -c "! grep -q '^F ' '$ST/journal'"
start_pcfs "$CONF
[tasks]
history = 2"
expect "history applies to what comes back" "$(ls "$M/procs" | sort -n | tr '\n' ' ')" "$C $N "
expect "lost stays lost" "$(cat "$M/procs/$C/state")" lost
check "outputs of forgotten tasks are swept" bash -c "! ls '$ST/out' | grep -qx '$A.1'"
# the newest id forgotten, then two restarts (the first compacts it away)
X=$(echo 'exec /bin/true' > "$M/spawn"; ls "$M/procs" | sort -n | tail -1)
cat "$M/procs/$X/wait" >/dev/null
rmdir "$M/procs/$X"
pcfs_umount
start_pcfs "$CONF"
pcfs_umount
start_pcfs "$CONF"
Y=$(echo 'exec /bin/true' > "$M/spawn"; ls "$M/procs" | sort -n | tail -1)
check "an id is never given twice, even one forgotten before two restarts ($X, then $Y)" \
	test "$Y" -gt "$X"
pcfs_umount

# restored pools run only once the restore is done: a future that ended
# while later pools were still coming back kept no output file (journaling
# is off during a restore), so after the next restart its result was empty
ST2=$WORKDIR/state2
mkdir -p "$ST2"
for i in $(seq 30); do
	printf 'P name=r%d\nC name=r%d line=workers=1\nS pool=r%d id=1 line=sh%%20echo%%20r%d\n' \
		"$i" "$i" "$i" "$i"
done > "$ST2/journal"
CONF2="[state]
dir = $ST2
[fuse]
auto_unmount = false"
start_pcfs "$CONF2"
for i in $(seq 30); do timeout 60 cat "$M/pools/r$i/futures/1/wait" >/dev/null; done
kill_pcfs
start_pcfs "$CONF2"
expect "futures queued in 30 restored pools ran and kept their output over a restart" \
	"$(for i in $(seq 30); do cat "$M/pools/r$i/futures/1/result"; done | tr '\n' ' ')" \
	"$(seq -f 'r%g' 30 | tr '\n' ' ')"
pcfs_umount

# --- work that waits (after=) survives a restart ------------------------------------
# It waits again, where and with what its writer had (directory, environment),
# and what it waited for decides by how that ended: a task lost in the crash
# ended, and not as a success.  One that waits through a restart is in the
# compacted journal and waits through the next one too.
ST3=$WORKDIR/state3
CONF3="[state]
dir = $ST3
[fuse]
auto_unmount = false"
start_pcfs "$CONF3"
R0=$(spawn 'exec /bin/sleep 600')
F0=$(spawn 'exec /bin/false')
timeout 60 cat "$M/procs/$F0/wait" >/dev/null
mkdir -p "$WORKDIR/proj"
W1=$(cd "$WORKDIR/proj" && FOO=bar sh -c "exec 3<>'$M/spawn'; echo 'sh after_any=$R0 name=w1 echo \$FOO \$(pwd)' >&3; read -r id <&3; echo \$id")
W2=$(spawn "sh after=$W1 echo second")
W3=$(spawn "exec after=$R0 /bin/true")
W4=$(spawn "exec after_fail=$R0 /bin/echo failed-branch")
S1=$(spawn "exec after=$F0 /bin/true")
Q=$(spawn "exec after_any=$R0 name=q /bin/sleep 600")
W6=$(spawn "sh after_any=$Q echo six")
states() { for i in "$@"; do cat "$M/procs/$i/state"; done | tr '\n' ' '; }
expect "before the crash: six wait, one is skipped" "$(states "$W1" "$W2" "$W3" "$W4" "$Q" "$W6" "$S1")" \
	"waiting waiting waiting waiting waiting waiting skipped "
# and futures that wait for futures of their pool
PD=$M/pools/pd
mkdir "$PD"
echo workers=1 > "$PD/ctl"
fsubmit() { local id; exec 3<>"$PD/submit"; printf '%s\n' "$1" >&3; read -r id <&3; exec 3>&-; echo "$id"; }
PA=$(fsubmit 'sh sleep 600')
PB=$(fsubmit "sh after_any=$PA echo pb")
PC=$(fsubmit "sh after=$PA echo never")
wait_until 1000 grep -qx running "$PD/futures/$PA/state"
expect "before the crash: futures wait" "$(cat "$PD/futures/$PB/state") $(cat "$PD/futures/$PC/state")" "waiting waiting"
RPID=$(cat "$M/procs/$R0/pid")
kill_pcfs
start_pcfs "$CONF3"
expect "a future that waited runs after a restart (after_any= of one lost)" \
	"$(timeout 60 cat "$PD/futures/$PB/wait") $(cat "$PD/futures/$PB/result")" "done pb"
expect "... after= of one lost is skipped" "$(timeout 60 cat "$PD/futures/$PC/wait") $(cat "$PD/futures/$PC/error")" \
	"skipped after=$PA: future $PA failed (lost: pcfs stopped while it ran; its result cannot be known)"
done_with() { timeout 60 cat "$M/procs/$1/wait"; }
expect "after_any= of a lost task: it runs, where its writer stood, with its environment" \
	"$(done_with "$W1") $(cat "$M/procs/$W1/stdout") $(jq -r .name "$M/procs/$W1/status.json")" "0 bar $WORKDIR/proj w1"
expect "after= of a restored waiting task: it runs after it" "$(done_with "$W2") $(cat "$M/procs/$W2/stdout")" \
	"0 second"
expect "after= of a lost task: skipped, saying so" "$(done_with "$W3") $(cat "$M/procs/$W3/error")" \
	"skipped after=$R0: task $R0 was lost"
expect "after_fail= of a lost task: it runs" "$(done_with "$W4") $(cat "$M/procs/$W4/stdout")" "0 failed-branch"
expect "a task skipped before the crash stays skipped" "$(cat "$M/procs/$S1/state") $(cat "$M/procs/$S1/error")" \
	"skipped after=$F0: task $F0 exited with code 1"
check "what waits for a task that runs after the restart waits still" wait_until 1000 sh -c \
	"grep -qx running '$M/procs/$Q/state' && grep -qx waiting '$M/procs/$W6/state'"
check "/log says waiting tasks were restored" grep -q "waiting tasks restored" "$M/log"
QPID=$(cat "$M/procs/$Q/pid")
kill_pcfs
start_pcfs "$CONF3"
expect "... and through a second restart (the compacted journal kept it)" \
	"$(done_with "$W6") $(cat "$M/procs/$W6/stdout")" "0 six"
expect "ids go on after the restored waiting ones" "$(test "$(spawn 'exec /bin/true')" -gt "$W6" && echo yes)" yes
kill "$RPID" "$QPID" 2>/dev/null
pcfs_umount

finish
