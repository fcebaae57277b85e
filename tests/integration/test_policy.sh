#!/usr/bin/env bash
# Priorities, names, halt= and retry (issue 18) through a real mount: the
# order futures start in, read from the pool's own completion order and the
# futures' records (never from sleeps); each halt mode on a pool of 20
# futures; `retry failed`; a halted pool and a priority across a restart.
. "$(dirname "$0")/lib.sh"
# depth = 1: nothing is handed to a worker ahead, so with workers=1 the
# order futures start in is exactly the queue's.
pcfs_mount "[pools]
depth = 1
[tasks]
kill_grace = 300ms"
P=$M/pools
GATE=$WORKDIR/gate

expect "/README says halt=, retry and priority=" \
	"$(grep -c -e 'ctl halt=now|soon' -e 'ctl retry failed|cancelled' -e 'futures/ID/ctl priority=N' "$M/README")" "3"

lines() { printf '%s\n' "$@" > "$WORKDIR/lines"; cat "$WORKDIR/lines"; }
field() { sed -n "s/^$2: //p" "$1"; }
# completed, without waiting at its end: the ids so far
done_ids() { timeout 2 cat "$1/completed" | tr '\n' ' '; }
wait_final() { for f in "${@:2}"; do cat "$1/futures/$f/wait" >/dev/null; done; }

# --- priorities: pending futures start highest first, then in submission order ---
mkdir "$P/pr"
echo workers=1 > "$P/pr/ctl"
# 1 holds the only worker until the gate opens; the rest wait in the queue
echo "sh while [ ! -e $GATE ]; do sleep 0.02; done" > "$P/pr/submit"
wait_until 100 grep -qx 'running' "$P/pr/futures/1/state"
lines 'sh echo a' 'sh priority=-5 echo b' 'sh priority=5 echo c' 'sh echo d' > "$P/pr/submit"
lines 'sh priority=5 name=urgent echo e' 'sh priority=100 echo f' 'sh priority=-1000 echo g' \
	> "$P/pr/submit"
expect "a future's status shows its priority" "$(field "$P/pr/futures/6/status" priority)" "5"
expect "... and its name" "$(field "$P/pr/futures/6/status" name)" "urgent"
expect_match "... null without one (json)" "$(cat "$P/pr/futures/2/status.json")" '"name": ?null'
check "ctl priority= moves a pending future (d to the front)" sh -c "echo priority=1000 > '$P/pr/futures/5/ctl'"
check "... and back down (a to the end of the 0s: it stays before b)" \
	sh -c "echo priority=0 > '$P/pr/futures/2/ctl'"
expect "its status says so" "$(field "$P/pr/futures/5/status" priority)" "1000"
expect "priority= on a running future: EBUSY" \
	"$(write_err "$P/pr/futures/1/ctl" 'priority=3')" "Device or resource busy"
expect "priority= out of range: EINVAL" "$(write_err "$P/pr/futures/3/ctl" 'priority=1001')" "Invalid argument"
expect "a line with priority= out of range: EINVAL" \
	"$(write_err "$P/pr/submit" 'sh priority=-1001 true')" "Invalid argument"
touch "$GATE"
wait_final "$P/pr" 1 2 3 4 5 6 7 8
expect "they started highest first, then in submission order" "$(done_ids "$P/pr")" \
	"1 5 7 4 6 2 3 8 "
expect "a done future's priority= is EBUSY" \
	"$(write_err "$P/pr/futures/3/ctl" 'priority=3')" "Device or resource busy"
expect "the reason is in /log" "$(grep -c 'future 3 is done: priority= applies to pending futures' "$M/log")" "1"
rm -f "$GATE"

# --- names: a future's status, the pool's status, /top ---
lines "sh name=build-x while [ ! -e $GATE ]; do sleep 0.02; done" > "$P/pr/submit"
wait_until 100 grep -qx 'running' "$P/pr/futures/9/state"
expect "pool status lists running futures with their names" \
	"$(field "$P/pr/status" running_futures)" "9:build-x"
task=$(cat "$P/pr/futures/9/task")
expect_match "/top shows the worker running it by the future's name" \
	"$(grep -E "^ +$task " "$M/top")" ' build-x$'
touch "$GATE"; wait_final "$P/pr" 9
expect_match "... and by its own name once it is idle" "$(grep -E "^ +$task " "$M/top")" ' pr\.1$'
expect "no running futures: empty" "$(field "$P/pr/status" running_futures)" ""
rm -f "$GATE"

# --- halt= on pools of 20 futures, workers=2 ---
# Future ID fails at once when ID % 4 == 0 (4, 8, 12, 16, 20); the others
# sleep, so when one fails the other worker is in the middle of a sleeper.
twenty() { for _ in $(seq 20); do echo "sh [ \$((PCFS_ID % 4)) -ne 0 ] || exit 1; sleep $1"; done; }
final_all() { for i in $(seq 20); do cat "$P/$1/futures/$i/wait" >/dev/null; done; }

halt_pool() {   # halt_pool NAME RULE SLEEP: make it, submit the twenty, wait for all
	mkdir "$P/$1"
	echo "workers=2 halt=$2" > "$P/$1/ctl"
	twenty "$3" > "$WORKDIR/twenty"; cat "$WORKDIR/twenty" > "$P/$1/submit"
	final_all "$1"
}

expect "bad halt= values: EINVAL" "$(write_err "$P/pr/ctl" 'halt=later,fail=3')$(write_err "$P/pr/ctl" 'halt=now,fail=0')$(write_err "$P/pr/ctl" 'halt=now,fail=101%')$(write_err "$P/pr/ctl" 'halt=now,crash=1')" \
	"Invalid argumentInvalid argumentInvalid argumentInvalid argument"
expect "... nothing applied (all or none: workers=3 with a bad halt=)" \
	"$(write_err "$P/pr/ctl" 'workers=3 halt=soon'; field "$P/pr/status" workers)" "Invalid argument1"

halt_pool hn now,fail=3 0.5
expect "halt=now,fail=3: the pool is halted" "$(field "$P/hn/status" state)" "halted"
expect "... and says why" "$(field "$P/hn/status" halted)" "now,fail=3 reached (future 12 failed)"
expect "... ctl shows the setting" "$(cat "$P/hn/ctl")" "workers=2 type=process gil=0 halt=now,fail=3"
expect "... the sleeper beside 12 was stopped, with TERM as a timeout stops one" \
	"$(cat "$P"/hn/futures/{11,13}/error | grep -c '^killed by signal 15 (halt)$')" "1"
expect "... four failed (4 8 12 and that one), nothing after 13 ran" \
	"$(field "$P/hn/status" failed) $(for i in $(seq 14 20); do cat "$P/hn/futures/$i/state"; done | sort -u)" \
	"4 cancelled"
expect "... what waited is cancelled, with the reason" "$(cat "$P/hn/futures/20/error")" \
	"halted: now,fail=3 reached (future 12 failed)"
expect "... /log says it" "$(grep -c 'pool hn: halted: now,fail=3 reached (future 12 failed)' "$M/log")" "1"
expect "... submits are refused: ESHUTDOWN" "$(write_err "$P/hn/submit" 'sh true')" \
	"Cannot send after transport endpoint shutdown"
exec 3<>"$P/hn/submit"; echo 'sh true' >&3 2>/dev/null; reason=$(cat <&3); exec 3>&-
expect_match "... with the reason on the descriptor" "$reason" 'pool hn is halted \(now,fail=3 reached'

halt_pool hs soon,fail=3 0.5
expect "halt=soon,fail=3: halted" "$(field "$P/hs/status" halted)" "soon,fail=3 reached (future 12 failed)"
expect "... the sleeper beside 12 ran to its end, nothing after 13 started" \
	"$(field "$P/hs/status" failed) $(cat "$P"/hs/futures/{11,13}/state | sort -u | tr '\n' ' ')$(for i in $(seq 14 20); do cat "$P/hs/futures/$i/state"; done | sort -u)" \
	"3 cancelled done cancelled"
expect "... no future was stopped" "$(cat "$P"/hs/futures/*/error | grep -c '(halt)')" "0"

halt_pool hp now,fail=20% 0.2
expect "halt=now,fail=20%: 4 of the 20 failed" "$(field "$P/hp/status" halted)" \
	"now,fail=20% reached: 4 of 20 futures failed (future 16 failed)"
expect "... nothing after 17 ran" "$(for i in 18 19 20; do cat "$P/hp/futures/$i/state"; done | tr '\n' ' ')" \
	"cancelled cancelled cancelled "

halt_pool hk soon,success=5 0.2
expect_match "halt=soon,success=5: halted at the fifth success" "$(field "$P/hk/status" halted)" \
	'^soon,success=5 reached \(future [0-9]+ done\)$'
ok_n=$(field "$P/hk/status" done)
check "... five succeeded, and at most the one running beside it after ($ok_n)" test "$ok_n" -ge 5 -a "$ok_n" -le 6
expect "... the rest were cancelled" "$(field "$P/hk/status" cancelled)" "$((20 - ok_n - $(field "$P/hk/status" failed)))"

halt_pool hx now,success=50% 0.05
expect_match "halt=now,success=50% (the cross product)" "$(field "$P/hx/status" halted)" \
	'^now,success=50% reached: 10 of 20 futures succeeded'

check "halt=never runs a halted pool again" sh -c "echo halt=never > '$P/hs/ctl'"
expect "... its state" "$(field "$P/hs/status" state) $(field "$P/hs/status" halt)" "running "
echo 'sh echo again' > "$P/hs/submit"
expect "... and it takes submits" "$(cat "$P/hs/futures/21/result")" "again"

# --- retry failed / cancelled ---
mkdir "$P/rt"
echo 'workers=2 halt=soon,fail=3' > "$P/rt/ctl"
FIX=$WORKDIR/fixed
for _ in $(seq 20); do echo "sh [ \$((PCFS_ID % 2)) -ne 0 ] || [ -e $FIX ] || exit 1; echo ok \$PCFS_ID"; done > "$WORKDIR/rt"
cat "$WORKDIR/rt" > "$P/rt/submit"
final_all rt
expect "retry: the pool halted on its third failure" "$(field "$P/rt/status" state)" "halted"
nf=$(field "$P/rt/status" failed); nc=$(field "$P/rt/status" cancelled)
expect "retry with a bad state: EINVAL" "$(write_err "$P/rt/ctl" 'retry done')" "Invalid argument"
touch "$FIX"
check "retry failed" sh -c "echo 'retry failed' > '$P/rt/ctl'"
expect "... runs the pool again" "$(field "$P/rt/status" state)" "running"
wait_final "$P/rt" 2 4 6
expect "... a failed future ran again: done now" "$(cat "$P/rt/futures/2/state") $(cat "$P/rt/futures/2/result")" "done ok 2"
expect "... counted as its second attempt" "$(field "$P/rt/futures/2/status" attempts)" "2"
expect "... the cancelled ones stay cancelled" "$(field "$P/rt/status" cancelled)" "$nc"
check "retry cancelled" sh -c "echo 'retry cancelled' > '$P/rt/ctl'"
final_all rt
expect "... every future is done" "$(field "$P/rt/status" done) $(field "$P/rt/status" failed) $(field "$P/rt/status" cancelled)" "20 0 0"
expect "... one attempt for those that never ran" "$(field "$P/rt/futures/20/status" attempts)" "1"
expect "completed lists each future once, at its last end" \
	"$(done_ids "$P/rt" | tr ' ' '\n' | sed '/^$/d' | sort -n | uniq | wc -l) $(done_ids "$P/rt" | wc -w)" "20 20"
expect "retry with nothing to retry is fine" "$(write_err "$P/rt/ctl" 'retry failed cancelled')" ""
check "$nf futures had failed" test "$nf" -ge 3

# as_completed tells each of its futures once, even one that ran again
mkdir "$P/ac"
echo workers=2 > "$P/ac/ctl"
rm -f "$FIX"
exec 3<>"$P/ac/as_completed"
lines "sh [ -e $FIX ] || exit 1" "sh while [ ! -e $GATE ]; do sleep 0.02; done; echo two" >&3
read -r first <&3
expect "as_completed tells the failure" "$first" "1 failed: exit status 1"
touch "$FIX"; echo 'retry failed' > "$P/ac/ctl"; cat "$P/ac/futures/1/wait" >/dev/null
touch "$GATE"
got=$(timeout 10 cat <&3 | cut -d' ' -f1 | tr '\n' ' ')
exec 3>&-
expect "... not future 1 again once it ran again; then 2, then EOF" "$got" "2 "
rm -f "$GATE"
pcfs_umount

# --- handed ahead: a priority does not wait behind a pipeline of lower ones ---
pcfs_mount "[pools]
ahead = 10s"
P=$M/pools
mkdir "$P/pl"
echo workers=1 > "$P/pl/ctl"
echo noop > "$P/pl/submit"; cat "$P/pl/futures/1/wait" >/dev/null   # its pace is measured
{ echo "sh while [ ! -e $GATE ]; do sleep 0.02; done"; for i in $(seq 10); do echo "sh echo low$i"; done; } \
	> "$WORKDIR/pl"
cat "$WORKDIR/pl" > "$P/pl/submit"
wait_until 100 grep -qx 'running' "$P/pl/futures/2/state"
pf=$(field "$P/pl/status" prefetched)
check "lower futures were handed to the worker ahead ($pf)" test "$pf" -ge 5
echo 'sh priority=1 echo high' > "$P/pl/submit"
touch "$GATE"
wait_final "$P/pl" 2 3 4 5 6 7 8 9 10 11 12 13
expect "the high one ran right after what was running" "$(done_ids "$P/pl" | cut -d' ' -f1-3)" "1 2 13"
rm -f "$GATE"
pcfs_umount

# --- across a restart ([state] dir): a halted pool, a priority ---
SD=$WORKDIR/state; mkdir -p "$SD"
pcfs_mount "[state]
dir = $SD
[pools]
depth = 1"
P=$M/pools
mkdir "$P/st"
echo 'workers=1 halt=now,fail=1' > "$P/st/ctl"
echo pause > "$P/st/ctl"
lines 'sh echo a' 'sh echo b' 'sh echo c' > "$P/st/submit"
echo priority=7 > "$P/st/futures/3/ctl"
pcfs_umount
pcfs_mount "[state]
dir = $SD
[pools]
depth = 1"
P=$M/pools
expect "a priority= survives a restart" "$(field "$P/st/futures/3/status" priority)" "7"
echo resume > "$P/st/ctl"
echo 'sh exit 1' > "$P/st/submit"
for i in 1 2 3 4; do cat "$P/st/futures/$i/wait" > /dev/null; done
expect "the restored pool ran 3 first, then halted at 4's failure" \
	"$(done_ids "$P/st") $(field "$P/st/status" state)" "3 1 2 4  halted"
pcfs_umount
pcfs_mount "[state]
dir = $SD"
P=$M/pools
expect "a halted pool is halted after a restart" "$(field "$P/st/status" state): $(field "$P/st/status" halted)" \
	"halted: now,fail=1 reached (future 4 failed)"
echo 'retry failed' > "$P/st/ctl"
expect "... retry runs it again" "$(cat "$P/st/futures/4/wait") $(field "$P/st/futures/4/status" attempts)" "failed 2"
pcfs_umount
pcfs_mount "[state]
dir = $SD"
P=$M/pools
expect "... and after a restart the retried future has its second attempt's end" \
	"$(field "$P/st/futures/4/status" attempts) $(done_ids "$P/st" | wc -w)" "2 4"
finish
