#!/usr/bin/env bash
# Work that waits for other work (issue 18): after=, after_any=, after_fail=
# on spawn lines; chains and fans in their order; a failure skipping the
# chain below it at once; cycles and unknown ids refused; ctl on waiting
# work; what a waiting line holds (its directory, its files); unmount.
. "$(dirname "$0")/lib.sh"

pcfs_mount "[tasks]
default_time = 30s"
cd "$WORKDIR"
LOG=$WORKDIR/order.log
: > "$LOG"
# spawn LINE -> its first id (read back on the descriptor)
state() { cat "$M/procs/$1/state"; }
done_with() { timeout 300 cat "$M/procs/$1/wait"; }

# --- a chain and a fan: A, then B and C, then D when both have ended --------------
# A runs until the test lets it finish, so the others are seen waiting first
A=$(spawn "sh while [ ! -e go.A ]; do sleep 0.05; done; echo A >> $LOG")
B=$(spawn "sh after=$A echo B >> $LOG")
C=$(spawn "sh after=$A echo C >> $LOG")
D=$(spawn "sh after=$B,$C echo D >> $LOG")
expect "B, C and D wait while A runs" "$(state "$B") $(state "$C") $(state "$D")" "waiting waiting waiting"
expect "... with no process" "$(cat "$M/procs/$D/pid") $(cat "$M/procs/$D/alive") $(stat -c %s "$M/procs/$D/exitcode")" " 0 0"
expect "/stats counts them" "$(sed -n 's/^waiting: //p' "$M/stats")" "3"
O_NONBLOCK_WAIT=$(dd if="$M/procs/$D/wait" iflag=nonblock 2>&1)
expect_match "wait on waiting work blocks (EAGAIN without blocking)" "$O_NONBLOCK_WAIT" 'Resource temporarily unavailable'
touch go.A
expect "D ends once B and C have" "$(done_with "$D")" "0"
expect "the order: A, then B and C (either way), then D" \
	"$(head -1 "$LOG") $(sed -n '2,3p' "$LOG" | sort | tr '\n' ' ')$(tail -1 "$LOG")" "A B C D"
expect "... each once" "$(wc -l < "$LOG")" "4"
expect "nothing waits any more" "$(sed -n 's/^waiting: //p' "$M/stats")" "0"
# the exact order from /events: each start after the ends it waited for
kept_now "$M/events" > events.txt
at() { grep -n " $1 task $2 " events.txt | head -1 | cut -d: -f1; }
check "/events: B and C start after A ends, D after both B and C end" test \
	"$(at "$A" ended)" -lt "$(at "$B" started)" -a "$(at "$A" ended)" -lt "$(at "$C" started)" -a \
	"$(at "$B" ended)" -lt "$(at "$D" started)" -a "$(at "$C" ended)" -lt "$(at "$D" started)"

# a task that waited stays in /procs while it starts (it was hidden for the
# moment between its wait's end and its process: ENOENT to a reader then)
miss=0
for _ in $(seq 40); do
	R=$(spawn "sh sleep 0.1")
	Q=$(spawn "exec after=$R /bin/true")
	until [ "$(cat "$M/procs/$Q/state" 2>/dev/null || echo MISSING)" = exited ]; do
		[ -e "$M/procs/$Q/state" ] || miss=$((miss + 1))
	done
done
expect "work that waited never leaves /procs as it starts (40 tries)" "$miss" 0

# --- after_any and after_fail, and a failure down a chain ---------------------------
F=$(spawn "sh exit 3")
done_with "$F" >/dev/null
S1=$(spawn "sh after=$F echo never")
S2=$(spawn "sh after=$S1 echo never")
S3=$(spawn "sh 2 after=$S2 echo never")
expect "after=: a failed dependency skips it" "$(done_with "$S1")" "skipped"
expect "... its error names the dependency and how it ended" "$(cat "$M/procs/$S1/error")" \
	"after=$F: task $F exited with code 3"
expect "... it never ran: no exit code, no pid" "$(stat -c %s "$M/procs/$S1/exitcode") $(cat "$M/procs/$S1/pid")" "0 "
expect "a chain below it is skipped at once, whole" "$(done_with "$S2") $(done_with "$S3") $(done_with $((S3 + 1)))" \
	"skipped skipped skipped"
expect "... each saying why" "$(cat "$M/procs/$S2/error")" "after=$S1: task $S1 was skipped"
expect "status and status.json say skipped" "$(sed -n 's/^state: //p' "$M/procs/$S2/status") $(jq -r '"\(.state) \(.exitcode)"' "$M/procs/$S2/status.json")" \
	"skipped skipped null"
expect "/wait tells a skipped task by its state" "$(exec 3<>"$M/wait"; echo "$S1" >&3; read -r l <&3; echo "$l")" "$S1 skipped"
X=$(spawn "sh while [ ! -e go.X ]; do sleep 0.05; done; exit 1")
Y=$(spawn "sh after=$X true")
Z=$(spawn "sh after=$Y true")
touch go.X
done_with "$Z" >/dev/null
kept_now "$M/events" > events.txt
check "/events: the cause first, then the chain it skips (X ended, then Y, then Z)" test \
	"$(at "$X" ended)" -lt "$(at "$Y" ended)" -a "$(at "$Y" ended)" -lt "$(at "$Z" ended)"
ANY=$(spawn "sh after_any=$F,$A echo any ran")
expect "after_any=: runs whatever they ended as" "$(done_with "$ANY") $(cat "$M/procs/$ANY/stdout")" "0 any ran"
NF=$(spawn "sh after_fail=$A,$F echo cleanup ran")
expect "after_fail=: runs when one of them failed" "$(done_with "$NF") $(cat "$M/procs/$NF/stdout")" "0 cleanup ran"
NO=$(spawn "sh after_fail=$A,$B echo never")
expect "... and is skipped when every one succeeded" "$(done_with "$NO") $(cat "$M/procs/$NO/error")" \
	"skipped after_fail=: every one of them succeeded"
kept_now "$M/events" > events.txt
expect "/events: skipped work ends skipped, with no code and no start" \
	"$(grep -c " $S2 task started " events.txt) $(grep " $S2 task ended " events.txt | cut -d' ' -f5-6)" "0 skipped code=-"
check_fails "/joblog has no line for work that never ran" grep -qP "^$S2\t" "$M/joblog"
expect "/stats counts the skipped (S1, S2, S3's two, Y, Z, the after_fail one)" "$(sed -n 's/^skipped: //p' "$M/stats")" "7"

# --- refused: unknown ids, cycles, bad values ------------------------------------------
next=$(( $(ls "$M/procs" | sort -n | tail -1) + 1 ))
expect "an id that does not exist: EINVAL" "$(write_err "$M/spawn" "sh after=999 true")" "Invalid argument"
check "... the reason" grep -q 'after=999: there is no task 999 (not started yet)' "$M/log"
expect "an id of the write itself (a cycle): EINVAL" "$(write_err "$M/spawn" "sh after=$next true")" "Invalid argument"
check "... the reason says cycle" grep -q "after=$next: task $next is one of this write's own.*(a cycle)" "$M/log"
printf 'sh true\nsh after=%s true\n' "$((next + 1))" > two
expect "a later line of the same write, even one that would come first: EINVAL" \
	"$( { cat two > "$M/spawn"; } 2>&1 | sed 's/.*: //')" "Invalid argument"
expect "... and nothing of that write started" "$(ls "$M/procs" | sort -n | tail -1)" "$((next - 1))"
expect "two kinds on one line: EINVAL" "$(write_err "$M/spawn" "sh after=$A after_any=$A true")" "Invalid argument"
expect "after=0: EINVAL" "$(write_err "$M/spawn" "sh after=0 true")" "Invalid argument"
expect "after=1,,2: EINVAL" "$(write_err "$M/spawn" "sh after=$A,,$A true")" "Invalid argument"

# --- ctl on waiting work -------------------------------------------------------------
L=$(spawn "sleep time=10m")
W1=$(spawn "sh after=$L echo never")
W2=$(spawn "sh after_any=$W1 echo after W1: ran")
expect "stop on waiting work: EINVAL (no process yet)" "$(write_err "$M/procs/$W1/ctl" stop)" "Invalid argument"
echo kill > "$M/procs/$W1/ctl"
expect "kill on waiting work: it never runs (skipped)" "$(done_with "$W1") $(cat "$M/procs/$W1/error")" \
	"skipped ended by ctl kill while it waited: it never ran"
expect "... what waited for it hears of that (after_any: runs)" "$(done_with "$W2") $(cat "$M/procs/$W2/stdout")" "0 after W1: ran"
check_fails "rmdir of waiting work: EBUSY" rmdir "$M/procs/$(spawn "sh after=$L true")"
echo kill > "$M/procs/$L/ctl"

# --- what a waiting line holds: its writer's directory, its files, COUNT, threads ------
mkdir -p proj
G=$(spawn "sh while [ ! -e go.G ]; do sleep 0.05; done")
H=$( (cd proj && FOO=held bash -c "exec 3<>'$M/spawn'; echo 'sh 2 after=$G stdout=./out.txt echo \$FOO in \$(pwd)' >&3; read -r id <&3; echo \$id") )
T=$(spawn "sleep as=thread time=100ms after=$G")
check "its stdout= file is there (opened at the write, as its writer)" test -e proj/out.txt
touch go.G
done_with "$H" >/dev/null; done_with $((H + 1)) >/dev/null
expect "COUNT tasks that waited run where their line was written, with its environment and file" \
	"$(cat proj/out.txt)" "held in $WORKDIR/proj
held in $WORKDIR/proj"
expect "a thread that waited runs too" "$(done_with "$T") $(cat "$M/procs/$T/kind")" "0 thread"

# --- pools: futures that wait for futures of their pool ------------------------------
P=$M/pools/dp
mkdir "$P"
echo workers=2 > "$P/ctl"
# submit LINE -> its future's id (read back on the descriptor)
submit() { local id; exec 3<>"$P/submit"; printf '%s\n' "$1" >&3; read -r id <&3; exec 3>&-; echo "$id"; }
fstate() { cat "$P/futures/$1/state"; }
fdone() { timeout 300 cat "$P/futures/$1/wait"; }
FLOG=$WORKDIR/forder.log
: > "$FLOG"
FA=$(submit "sh while [ ! -e go.FA ]; do sleep 0.05; done; echo A >> $FLOG")
FB=$(submit "sh after=$FA echo B >> $FLOG")
FC=$(submit "sh after=$FA echo C >> $FLOG")
FD=$(submit "sh after=$FB,$FC echo D >> $FLOG; echo D")
expect "futures B, C and D wait while A runs" "$(fstate "$FB") $(fstate "$FC") $(fstate "$FD")" "waiting waiting waiting"
expect "... the pool's status counts them, none queued" \
	"$(sed -n 's/^waiting: //p' "$P/status") $(sed -n 's/^queued: //p' "$P/status") $(jq .waiting "$P/status.json")" "3 0 3"
expect "... a waiting future's result blocks (EAGAIN without blocking)" \
	"$(dd if="$P/futures/$FD/result" iflag=nonblock 2>&1 | grep -o 'Resource temporarily unavailable')" \
	"Resource temporarily unavailable"
touch go.FA
expect "D ends once B and C have, with its result" "$(fdone "$FD") $(cat "$P/futures/$FD/result")" "done D"
expect "the order: A, then B and C, then D" \
	"$(head -1 "$FLOG") $(sed -n '2,3p' "$FLOG" | sort | tr '\n' ' ')$(tail -1 "$FLOG")" "A B C D"
kept_now "$P/events" > pevents.txt
fat() { grep -n " $2 future $3 " pevents.txt | head -1 | cut -d: -f1; }
check "pools/dp/events: B and C start after A ends, D after both" test \
	"$(fat x "$FA" ended)" -lt "$(fat x "$FB" started)" -a "$(fat x "$FA" ended)" -lt "$(fat x "$FC" started)" -a \
	"$(fat x "$FB" ended)" -lt "$(fat x "$FD" started)" -a "$(fat x "$FC" ended)" -lt "$(fat x "$FD" started)"

FF=$(submit "sh exit 3")
FS1=$(submit "sh after=$FF echo never")
FS2=$(submit "sh after=$FS1 echo never")
FANY=$(submit "sh after_any=$FF echo any")
FFAIL=$(submit "sh after_fail=$FF,$FA echo cleanup")
FNO=$(submit "sh after_fail=$FA echo never")
expect "after= of a failed future: skipped, and the chain below it" "$(fdone "$FS1") $(fdone "$FS2")" "skipped skipped"
expect "... its error names the dependency and how it ended" "$(cat "$P/futures/$FS1/error")" \
	"after=$FF: future $FF failed (exit status 3)"
expect "... it never ran: no exit code; result and map say ECANCELED" \
	"$(stat -c %s "$P/futures/$FS1/exitcode") $(cat "$P/futures/$FS1/result" 2>&1 | sed 's/.*: //')" \
	"0 Operation canceled"
expect "after_any= runs whatever it ended as" "$(fdone "$FANY") $(cat "$P/futures/$FANY/result")" "done any"
expect "after_fail= runs when one failed" "$(fdone "$FFAIL") $(cat "$P/futures/$FFAIL/result")" "done cleanup"
expect "after_fail= is skipped when all succeeded" "$(fdone "$FNO") $(cat "$P/futures/$FNO/error")" \
	"skipped after_fail=: every one of them succeeded"
expect "status counts the skipped" "$(sed -n 's/^skipped: //p' "$P/status")" "3"
check "completed lists each skipped future once" sh -c \
	"kept_now() { dd if=\"\$1\" iflag=nonblock bs=65536 status=none 2>/dev/null; }; kept_now '$P/completed' | sort -n | uniq -d | grep -q . && exit 1; kept_now '$P/completed' | grep -qx $FS2"

# refused: unknown ids, cycles; a future cannot wait for a task
n=$(ls "$P/futures" | wc -l)
expect "a future id that does not exist: EINVAL" "$(write_err "$P/submit" "sh after=999 true")" "Invalid argument"
check "... the reason" grep -q "after=999: pool dp has no future 999" "$M/log"
expect "an id of the write itself (a cycle): EINVAL" "$(write_err "$P/submit" "sh after=$((n + 1)) true")" "Invalid argument"
check "... the reason says cycle" grep -q "after=$((n + 1)): future $((n + 1)) is one of this write's own.*(a cycle)" "$M/log"
expect "... nothing of those writes was submitted" "$(ls "$P/futures" | wc -l)" "$n"

# ctl on waiting futures: priority= while it waits, cancel (what waits for it hears)
FL=$(submit "sh while [ ! -e go.FL ]; do sleep 0.05; done")
FW=$(submit "sh after=$FL echo never")
FW2=$(submit "sh after_any=$FW echo after cancel")
FW3=$(submit "sh after=$FW echo never")
echo priority=5 > "$P/futures/$FW2/ctl"
expect "priority= on a waiting future" "$(jq .priority "$P/futures/$FW2/status.json") $(fstate "$FW2")" "5 waiting"
echo > "$P/futures/$FW/cancel"
expect "cancel of a waiting future: cancelled; after_any= of it runs, after= of it is skipped" \
	"$(fdone "$FW") $(fdone "$FW2") $(cat "$P/futures/$FW2/result") $(fdone "$FW3")" "cancelled done after cancel skipped"
touch go.FL
fdone "$FL" >/dev/null

# retry failed: the failed run again, and what they skipped waits for them again
: > "$FLOG"
R1=$(submit "sh test -e $WORKDIR/retry.ok || exit 1; echo R1 >> $FLOG")
R2=$(submit "sh after=$R1 echo R2 >> $FLOG")
expect "before the retry: failed, skipped" "$(fdone "$R1") $(fdone "$R2")" "failed skipped"
touch "$WORKDIR/retry.ok"
echo retry failed > "$P/ctl"
expect "retry failed: the skipped one waited for the failed one again, and ran after it" \
	"$(fdone "$R1") $(fdone "$R2") $(cat "$FLOG" | tr '\n' ' ')" "done done R1 R2 "

# a chain of 1000 futures is skipped at once, whole, when its head fails
CH=$(submit "sh while [ ! -e go.CH ]; do sleep 0.05; done; exit 1")
exec 4<>"$P/submit"
prev=$CH
for i in $(seq 1000); do printf 'sh after=%s true\n' "$prev" >&4; read -r prev <&4; done
exec 4>&-
touch go.CH
expect "a chain of 1000 waiting futures below a failure: the last is skipped" "$(fdone "$prev")" "skipped"
expect "... every one of them" "$(sed -n 's/^skipped: //p' "$P/status")" "$((3 + 1 + 1000))"

# halt=now cancels what waits, as it cancels what is queued
H=$M/pools/dh
mkdir "$H"
printf 'workers=1\nhalt=now,fail=1\n' > "$H/ctl"
P=$H
HF=$(submit "sh while [ ! -e go.HF ]; do sleep 0.05; done; exit 1")
HW=$(submit "sh after_any=$HF echo never")
touch go.HF
expect "halt=now: a future waiting for the one that halted it is cancelled, not run" \
	"$(fdone "$HF") $(fdone "$HW") $(cat "$H/futures/$HW/error")" "failed cancelled halted: now,fail=1 reached (future $HF failed)"
expect "... the pool halted" "$(sed -n 's/^state: //p' "$H/status")" "halted"

# shutdown waits for waiting futures to run before the pool closes
S=$M/pools/ds
mkdir "$S"
P=$S
SA=$(submit "sh while [ ! -e go.SA ]; do sleep 0.05; done")
SB=$(submit "sh after=$SA echo sb")
echo shutdown > "$S/ctl"
expect "shutdown with a future waiting: the pool is not closed yet" "$(sed -n 's/^state: //p' "$S/status")" "shutdown"
touch go.SA
expect "... it runs when its wait is over, then the pool closes" \
	"$(fdone "$SB") $(cat "$S/futures/$SB/result")" "done sb"
check "... closed" wait_until 1000 grep -qx "state: closed" "$S/status"

# --- unmount with work still waiting --------------------------------------------------
L=$(spawn "sleep time=10m")
spawn "sh after=$L true" >/dev/null
check "unmount with work waiting: the daemon exits 0" pcfs_umount
finish
