#!/usr/bin/env bash
# Synchronization as files (issue 20) through a real mount: locks and
# semaphores held by an open descriptor of NAME/hold, events and barriers
# waited on by reading NAME/wait, from shells and from tasks.  Orders and
# counts are checked from what the holders wrote themselves and from the
# objects' status, never from the wall clock around them.
. "$(dirname "$0")/lib.sh"

pcfs_mount ""
S=$M/sync
W=$WORKDIR
# spawn LINE -> its ids, one a line (read back on the descriptor)
spawn() { local id; exec 3<>"$M/spawn"; printf '%s\n' "$1" >&3; while read -r -t 5 id <&3; do echo "$id"; done; exec 3>&-; }
field() { sed -n "s/^$2: //p" "$S/$1/status"; }
lines() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
# conditions for wait_until: each looks again every time it is tried
field_is() { [ "$(field "$1" "$2")" = "$3" ]; }
lines_are() { [ "$(lines "$1")" = "$2" ]; }
mappers_are() { [ "$(sed -n 's/^mappers: //p' "$1/status")" = "$2" ]; }
# what a failed wait saw: the object's status and its tasks' states
diag() { sed 's/^/     | /' "$S/$1/status"; local id; for id in "${@:2}"; do
	echo "     | task $id: $(sed -n 's/^state: //p' "$M/procs/$id/status")"; done; }
ended() { local id; for id in "$@"; do [ "$(sed -n 's/^state: //p' "$M/procs/$id/status")" != running ] || return 1; done; }

# --- the namespace ---
expect "/sync starts with only ctl" "$(ls "$S" | tr '\n' ' ')" "ctl "
check "mkdir makes a lock" mkdir "$S/L"
expect "a lock shows hold and status" "$(ls "$S/L" | tr '\n' ' ')" "hold status status.json "
echo 'semaphore sem value=3' > "$S/ctl"
printf 'event ev\nbarrier bar parties=4\n' > "$S/ctl"
expect "the objects are listed" "$(ls "$S" | tr '\n' ' ')" "L bar ctl ev sem "
expect "a semaphore shows hold, ctl and status" "$(ls "$S/sem" | tr '\n' ' ')" "ctl hold status status.json "
expect "an event shows wait" "$(ls "$S/ev" | tr '\n' ' ')" "ctl status status.json wait "
expect "a barrier shows wait" "$(ls "$S/bar" | tr '\n' ' ')" "ctl status status.json wait "
expect "status: kind" "$(field sem kind)" "semaphore"
expect "status: value" "$(field sem value)" "3"
expect "status.json is JSON" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kind"])' "$S/L/status.json")" "lock"
expect "a duplicate name: EEXIST" "$(write_err "$S/ctl" 'lock L')" "File exists"
expect "an unknown kind: EINVAL" "$(write_err "$S/ctl" 'mutex m')" "Invalid argument"
expect "a barrier without parties: EINVAL" "$(write_err "$S/ctl" 'barrier b2')" "Invalid argument"
expect "a bad option: EINVAL" "$(write_err "$S/ctl" 'semaphore s2 value=x')" "Invalid argument"
check "... and /log says why" grep -q "value= takes 0 to" "$M/log"
check_fails "mkdir with a bad name fails" mkdir "$S/bad name"
expect "set is an event's: EINVAL on a semaphore" "$(write_err "$S/sem/ctl" 'set')" "Invalid argument"

# --- holding is an open descriptor ---
exec 9>"$S/L/hold"
expect "an open holds the lock" "$(field L state)" "held"
expect "... and status names the holder's pid" "$(field L holder_pid)" "$$"
expect "... which is no task" "$(field L holder_tasks)" "-"
expect "O_NONBLOCK on a held lock: EAGAIN" \
	"$(dd if=/dev/null of="$S/L/hold" oflag=nonblock 2>&1 | sed -n 's/.*: //p')" "Resource temporarily unavailable"
expect "rmdir of a held lock: EBUSY" "$(rmdir "$S/L" 2>&1 | sed 's/.*: //')" "Device or resource busy"
# waiting opens are served first come, first served
k=0 kids=
for n in A B C; do
	( exec 9>&-; exec 8>"$S/L/hold"; echo "$n" >> "$W/order" ) &
	kids+=" $!"
	k=$((k + 1))
	check "waiter $n queued" wait_until 2400 field_is L waiters "$k"
done
exec 9>&-
wait $kids   # not the daemon's pid: pcfs_mount started it from this shell
expect "waiters got the lock in the order they came" "$(tr '\n' ' ' < "$W/order")" "A B C "
check "... and the lock is free again" wait_until 2400 field_is L state free
expect "acquisitions counted" "$(field L acquisitions)" "4"
expect "contended waits counted" "$(field L contended)" "3"

# --- Ctrl-C on a waiting open: EINTR at once, and it took nothing ---
exec 9>"$S/L/hold"
timeout -s INT 1 sh -c "exec 8>'$S/L/hold'; echo took >> '$W/intr'" 2>/dev/null; rc=$?
expect "SIGINT ends a waiting open" "$rc" "124"
check "... it took nothing" test ! -e "$W/intr"
check "... and waits no more" wait_until 2400 field_is L waiters 0
expect "... nor was counted as an acquisition" "$(field L acquisitions)" "5"
exec 9>&-
check "the lock is free after" wait_until 2400 field_is L state free

# --- the seed's race: 50 tasks x 100 increments, with and without the lock ---
echo 0 > "$W/locked"; echo 0 > "$W/racy"
# read is the shell's own: no process per step, so the race is the two lines'
body='read n < F; echo $((n + 1)) > F'
# a barrier starts the 50 together, so that they overlap however loaded the machine
printf 'barrier go1 parties=50\nbarrier go2 parties=50\n' > "$S/ctl"
ids=$(spawn "sh 50 cwd=$W cat $S/go1/wait > /dev/null; i=0; while [ \$i -lt 100 ]; do exec 9>$S/L/hold; ${body//F/locked}; exec 9>&-; i=\$((i + 1)); done")
expect "50 tasks started" "$(echo "$ids" | wc -l)" "50"
check "they end" wait_until 2400 ended $ids
expect "under the lock no update is lost" "$(cat "$W/locked")" "5000"
ids=$(spawn "sh 50 cwd=$W cat $S/go2/wait > /dev/null; i=0; while [ \$i -lt 100 ]; do ${body//F/racy}; i=\$((i + 1)); done")
check "the racy tasks end" wait_until 2400 ended $ids
racy=$(cat "$W/racy")
echo "     (without the lock: $racy of 5000)"
check "without it some are lost" test "${racy:-0}" -lt 5000
expect "every holder gave the lock back" "$(field L state)" "free"

# --- a holder is a task: status names it ---
id=$(spawn "sh exec 9>$S/L/hold; echo held > $W/held; exec sleep 600")
check "the task holds the lock" wait_until 2400 test -e "$W/held"
expect "status names the holder's task id" "$(field L holder)" "$id"
pid=$(field L holder_pid)
id2=$(spawn "sh exec 9>$S/L/hold; echo got > $W/got")
check "a second task waits" wait_until 2400 field_is L waiters 1
[ "$(field L waiters)" = 1 ] || diag L "$id" $id2
kill -9 "$pid"
check "kill -9 of the holder hands the lock to the waiter" wait_until 2400 test -e "$W/got"
check "... which ends, and the lock is free" wait_until 2400 field_is L state free

# --- a semaphore of 3 never has more than 3 holders (their own timestamps) ---
ids=$(spawn "sh 12 : ; i=0; while [ \$i -lt 4 ]; do exec 9>$S/sem/hold; echo \"\$(date +%s%N) 1\" >> $W/sem; sleep 0.02; echo \"\$(date +%s%N) -1\" >> $W/sem; exec 9>&-; i=\$((i + 1)); done")
check "the semaphore's tasks end" wait_until 2400 ended $ids
expect "every hold was logged" "$(lines "$W/sem")" "96"
most=$(sort -n "$W/sem" | awk '{ n += $2; if (n > m) m = n } END { print m }')
echo "     (most holders at once: $most)"
check "never more than 3 holders at once" test "$most" -le 3 -a "$most" -ge 1
expect "the semaphore is whole again" "$(field sem value)" "3"
expect "release on an unbounded semaphore adds a unit" "$(echo release > "$S/sem/ctl" && field sem value)" "4"
echo 'semaphore bs value=1 bounded' > "$S/ctl"
expect "a bounded semaphore refuses to go over value=" "$(write_err "$S/bs/ctl" 'release')" "Value too large for defined data type"

# --- events ---
ids=$(spawn "sh 20 cat $S/ev/wait >> $W/ev")
check "20 waiters wait on the event" wait_until 2400 field_is ev waiters 20
[ "$(field ev waiters)" = 20 ] || diag ev $ids
expect "... and none has passed" "$(lines "$W/ev")" "0"
echo set > "$S/ev/ctl"
check "set releases all 20" wait_until 2400 lines_are "$W/ev" 20
expect "... each read 'set'" "$(sort -u "$W/ev")" "set"
expect "a set event's wait returns at once" "$(timeout 5 cat "$S/ev/wait")" "set"
echo clear > "$S/ev/ctl"
expect "a cleared event's wait blocks (O_NONBLOCK: EAGAIN)" \
	"$(dd if="$S/ev/wait" iflag=nonblock status=none 2>&1 | sed -n 's/.*: //p')" "Resource temporarily unavailable"
check "poll: the wait file is readable only once set" python3 - "$S/ev" <<'PY'
import os, select, sys
fd = os.open(sys.argv[1] + "/wait", os.O_RDONLY)
p = select.poll(); p.register(fd, select.POLLIN)
if p.poll(200): sys.exit("readable before set")
with open(sys.argv[1] + "/ctl", "w") as c: c.write("set\n")
if not p.poll(5000): sys.exit("not readable after set")
sys.exit(0 if os.read(fd, 100) == b"set\n" else "wrong content")
PY

# --- barriers ---
ids=$(spawn "sh 4 cat $S/bar/wait >> $W/bar")
check "a barrier of 4 lets 4 tasks through together" wait_until 2400 lines_are "$W/bar" 4
[ "$(lines "$W/bar")" = 4 ] || diag bar $ids
expect "... each with its arrival index" "$(sort -n "$W/bar" | tr '\n' ' ')" "0 1 2 3 "
expect "... one round passed" "$(field bar passed)" "1"
echo 'barrier ab parties=3' > "$S/ctl"
ids=$(spawn "sh 2 cat $S/ab/wait 2>> $W/ab.err || echo broken >> $W/ab")
check "two of three arrive" wait_until 2400 field_is ab arrived 2
[ "$(field ab arrived)" = 2 ] || diag ab $ids
echo abort > "$S/ab/ctl"
check "abort breaks the waiters' reads" wait_until 2400 lines_are "$W/ab" 2
check "... with EPIPE" grep -q "Broken pipe" "$W/ab.err"
expect "a broken barrier's wait fails at once" "$(timeout 5 cat "$S/ab/wait" 2>&1 | sed 's/.*: //')" "Broken pipe"
echo reset > "$S/ab/ctl"
expect "reset mends it" "$(field ab broken)" "0"
echo 'barrier tb parties=2 timeout=300ms' > "$S/ctl"
expect "a wait longer than timeout= breaks the barrier" "$(timeout 10 cat "$S/tb/wait" 2>&1 | sed 's/.*: //')" "Broken pipe"

# --- removal ---
check "rmdir removes a free lock" rmdir "$S/L"
check "... and it is gone" test ! -e "$S/L"

# --- /shm: a segment two tasks share by mmap ---
H=$M/shm
expect "/shm starts with only ctl" "$(ls "$H" | tr '\n' ' ')" "ctl "
echo 'segment seg size=64k' > "$H/ctl"
expect "a segment shows data, ctl and status" "$(ls "$H/seg" | tr '\n' ' ')" "ctl data status status.json "
check "data is a link to the backing file" test -L "$H/seg/data"
path=$(readlink "$H/seg/data")
expect "... in /dev/shm" "${path%%/pcfs.*}" "/dev/shm"
expect "status: size" "$(sed -n 's/^size: //p' "$H/seg/status")" "65536"
cat > "$W/writer.py" <<'PY'
import mmap, os, sys, time
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    msg = b"hello through shared memory"
    m[8:8 + len(msg)] = msg
    m[0:8] = len(msg).to_bytes(8, "little")
    while not os.path.exists("stop"):
        time.sleep(0.05)
PY
cat > "$W/reader.py" <<'PY'
import mmap, os, sys, time
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    while int.from_bytes(m[0:8], "little") == 0:
        time.sleep(0.01)
    n = int.from_bytes(m[0:8], "little")
    open("got.tmp", "wb").write(m[8:8 + n]); os.rename("got.tmp", "got.txt")
    while not os.path.exists("stop"):
        time.sleep(0.05)
PY
wid=$(spawn "sh cwd=$W exec python3 writer.py $H/seg/data")
rid=$(spawn "sh cwd=$W exec python3 reader.py $H/seg/data")
check "the reader task read what the writer task wrote" wait_until 2400 test -e "$W/got.txt"
expect "... byte for byte" "$(cat "$W/got.txt")" "hello through shared memory"
expect "status names both tasks as mappers" \
	"$(sed -n 's/^mapper_tasks: //p' "$H/seg/status" | tr ' ' '\n' | sort -n | tr '\n' ' ')" \
	"$(printf '%s\n' "$wid" "$rid" | sort -n | tr '\n' ' ')"
check "... with their Rss and Pss of it" grep -Eq "^mapped_by: [0-9]+:$wid:[0-9]+:[0-9]+" "$H/seg/status"
check "resident pages are counted" test "$(sed -n 's/^resident_kib: //p' "$H/seg/status")" -ge 4
touch "$W/stop"
check "the two tasks end" wait_until 2400 ended "$wid" "$rid"
check "... and map it no more" wait_until 2400 mappers_are "$H/seg" 0
echo size=1M > "$H/seg/ctl"
expect "ctl size= resizes it" "$(stat -L -c %s "$H/seg/data")" "1048576"
check "rmdir removes it" rmdir "$H/seg"
check "... and its backing file" test ! -e "$path"

# --- /shm: a value, atomic adds from 8 writers ---
echo 'value cnt' > "$H/ctl"
expect "a value starts at 0" "$(cat "$H/cnt/value")" "0"
ids=$(spawn "sh 8 : ; i=0; while [ \$i -lt 100 ]; do echo 'add 1' > $H/cnt/ctl; i=\$((i + 1)); done")
check "the 8 writers end" wait_until 1200 ended $ids
expect "800 adds sum exactly" "$(cat "$H/cnt/value")" "800"
expect "cas with the wrong old value: EAGAIN" "$(write_err "$H/cnt/ctl" 'cas 1 5')" "Resource temporarily unavailable"
echo 'cas 800 5' > "$H/cnt/ctl"
expect "cas with the right one sets it" "$(cat "$H/cnt/value")" "5"
echo 'set -7' > "$H/cnt/ctl"
expect "set" "$(cat "$H/cnt/value")" "-7"
expect "status counts the failed cas" "$(sed -n 's/^cas_failed: //p' "$H/cnt/status")" "1"
expect "an add that overflows: EOVERFLOW" "$(echo 'set 9223372036854775807' > "$H/cnt/ctl"; write_err "$H/cnt/ctl" 'add 1')" "Value too large for defined data type"

finish
