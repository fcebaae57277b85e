#!/usr/bin/env bash
# Bad input through a real mount (issue 6): every control file, fed
# malformed, binary, oversized, empty or partial writes, answers with a clear
# errno and a readable reason, and changes nothing; bad names are refused
# everywhere; the daemon stops cleanly on SIGTERM, also with files held open.
. "$(dirname "$0")/lib.sh"
pcfs_mount "[limits]
max_write = 1M
max_pools = 4"

# The task and the pool's first future must outlive every refusal below,
# however long a loaded (or sanitized) machine takes over them: they run
# for an hour, and the SIGTERM at the end stops them.
echo 'sleep time=1h' > "$M/spawn"
mkdir "$M/pools/p"
echo workers=1 > "$M/pools/p/ctl"
echo 'sleep time=1h' > "$M/pools/p/submit"
echo 'noop' > "$M/pools/p/submit"
# steady state first: the worker starts and takes future 1 on its own
check "the pool's first future runs" wait_until 200 grep -qx running "$M/pools/p/futures/1/state"
CTL_FILES=(spawn procs/1/ctl pools/p/ctl pools/p/submit pools/p/map pools/p/as_completed
	   pools/p/futures/1/ctl)
snapshot() {   # what a refused write must leave unchanged
	cat "$M/stats" "$M/pools/p/status" "$M/procs/1/state" "$M/pools/p/futures/2/state" \
		| grep -v -e '^rate' -e '^elapsed' -e '^refused'
	ls "$M/procs" "$M/pools/p/futures"
}
# write_rc FILE -> the errno text of writing stdin to FILE in one write
WRITE_ONCE='
import os, sys
data = sys.stdin.buffer.read()
try:
    fd = os.open(sys.argv[1], os.O_WRONLY)
except OSError as e:
    print(os.strerror(e.errno)); sys.exit(0)
try:
    os.write(fd, data)
    os.close(fd)
    print("ok")
except OSError as e:
    print(os.strerror(e.errno))
'
write_rc() { python3 -c "$WRITE_ONCE" "$M/$1"; }

before=$(snapshot)
for f in "${CTL_FILES[@]}"; do
	expect "$f: malformed line -> EINVAL" "$(printf 'frobnicate the widgets\n' | write_rc "$f")" "Invalid argument"
	expect "$f: binary bytes -> EINVAL" "$(printf '\x00\xff\x01\xfe\n' | write_rc "$f")" "Invalid argument"
	expect "$f: only a newline -> EINVAL" "$(printf '\n' | write_rc "$f")" "Invalid argument"
	expect "$f: over max_write (1 MiB + 1) -> E2BIG" \
		"$(head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' 'x' | write_rc "$f")" "Argument list too long"
done
for f in spawn pools/p/submit pools/p/map; do
	expect "$f: a 100 KiB line -> E2BIG" \
		"$( (printf 'sleep name='; head -c 102400 /dev/zero | tr '\0' 'x'; echo) | write_rc "$f")" "Argument list too long"
done
expect "nothing changed after all those refusals" "$(snapshot)" "$before"
check "the reasons are in /log" grep -q "unknown workload 'frobnicate'" "$M/log"

# the reason is readable on the same descriptor, for each kind of file
for f in spawn procs/1/ctl pools/p/ctl pools/p/submit; do
	reply=$(python3 - "$M/$f" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    os.write(fd, b"frobnicate\n")
except OSError:
    pass
print(os.read(fd, 4096).decode().strip().splitlines()[-1])
PY
)
	expect_match "$f: the reason reads back as error: ..." "$reply" '^error: .+'
done

# a last line without a newline runs at close, and its error comes back from close()
out=$(python3 - "$M/spawn" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"bogus")
try:
    os.close(fd); print("closed")
except OSError as e:
    print(os.strerror(e.errno))
PY
)
expect "an unterminated bad line: close() fails with EINVAL" "$out" "Invalid argument"

# bad names are refused everywhere
for n in 'a b' $'a\tb' $'a\x01b' "$(printf 'x%.0s' $(seq 65))" 'ü' '*'; do
	check_fails "pools: name $(printf '%q' "$n") refused" mkdir "$M/pools/$n"
done
check "a 64-character name is fine" mkdir "$M/pools/$(printf 'y%.0s' $(seq 64))"
expect "bad task ids are not found" "$(ls "$M/procs/01" "$M/procs/-1" "$M/procs/99999999999999999999" 2>&1 | grep -c 'No such file')" "3"

# letting other users in is tested in test_access.sh; asking for it twice,
# two ways, is refused at startup
out=$("$PCFS" -f -o allow_other,allow_root "$WORKDIR" 2>&1); rc=$?
expect "-o allow_other,allow_root is refused (exit 2)" "$rc" "2"
expect_match "... saying why" "$out" 'allow_other and allow_root: give one of them'

# several settings on one ctl line apply together, as a task line's options
# do; one bad setting refuses the whole line, and nothing of it applies
mkdir "$M/pools/multi"
expect "workers=4 type=thread on one line: applied" \
	"$(write_err "$M/pools/multi/ctl" 'workers=4 type=thread')
$(grep -E '^(type|workers):' "$M/pools/multi/status")" "
type: thread
workers: 4"
expect "workers=2 gil=2: EINVAL" "$(write_err "$M/pools/multi/ctl" 'workers=2 gil=2')" "Invalid argument"
expect "... and workers= did not apply either" "$(grep '^workers:' "$M/pools/multi/status")" "workers: 4"
check "... /log says why" grep -q "gil= is 0 or 1" "$M/log"
expect "a command among settings: EINVAL" "$(write_err "$M/pools/multi/ctl" 'workers=2 pause')" "Invalid argument"
check "... /log says so" grep -q "'pause' goes on a line of its own" "$M/log"
# the command table's limits: 255 bytes a line, 16 words
expect "a ctl line over 255 bytes: EINVAL" \
	"$(write_err "$M/pools/multi/ctl" "workers=$(printf '%0300d' 1)")" "Invalid argument"
check "... /log says why" grep -q "command too long" "$M/log"
expect "a ctl line of 17 words: refused" \
	"$(write_err "$M/pools/multi/ctl" "$(printf 'pause %.0s' $(seq 17))")" "Argument list too long"
check "... /log names the limit" grep -q "more than 16 words" "$M/log"
expect "... and nothing of them applied" "$(grep -E '^(workers|paused):' "$M/pools/multi/status")" "workers: 4
paused: 0"
# gil= holds only for threads: a pool made a process pool drops it, unless
# the line asks for it, which is refused
echo 'gil=1' > "$M/pools/multi/ctl"
expect "type=process gil=1: EINVAL" "$(write_err "$M/pools/multi/ctl" 'type=process gil=1')" "Invalid argument"
echo 'type=process' > "$M/pools/multi/ctl"
expect "type=process alone drops gil=1" "$(cat "$M/pools/multi/ctl")" "workers=4 type=process gil=0"
rmdir "$M/pools/multi"

# max_pools: pools up to the limit, then ENOSPC with the reason in /log
for i in $(seq $((4 - $(ls "$M/pools" | wc -l)))); do mkdir "$M/pools/fill$i"; done
expect "over max_pools: ENOSPC" "$(mkdir "$M/pools/over" 2>&1 | sed 's/.*: //')" \
	"No space left on device"
check "... and /log says which limit" grep -q "max_pools=4" "$M/log"

# SIGTERM to the daemon: a clean stop, tasks ended, the mount gone
pid=$(cat "$M/procs/1/pid")
kill -TERM "$PCFS_PID"
rc=0; wait "$PCFS_PID" || rc=$?
PCFS_PID=
expect "SIGTERM: the daemon exits 0" "$rc" "0"
check_fails "... the mount is gone" is_mounted "$M"
check_fails "... and its tasks too" kill -0 "$pid"

# SIGINT (Ctrl-C in a terminal): the same clean stop.  This daemon is a
# script's background job, started with SIGINT ignored: pcfs takes it back
# (libfuse alone would leave an ignored signal ignored, and kill -INT would
# do nothing).
pcfs_mount
exec 3<>"$M/spawn"; echo 'sleep time=60s' >&3; read -r id <&3; exec 3>&-
pid=$(cat "$M/procs/$id/pid")
kill -INT "$PCFS_PID"
# bounded: an ignored SIGINT must fail here, not hang the suite
stopped=yes
wait_until 600 sh -c "! kill -0 $PCFS_PID 2>/dev/null" || { stopped=no; kill -TERM "$PCFS_PID"; }
rc=0; wait "$PCFS_PID" || rc=$?
expect "SIGINT stops a daemon started as a background job (SIGINT ignored)" "$stopped" "yes"
PCFS_PID=
expect "SIGINT: the daemon exits 0" "$rc" "0"
check_fails "... the mount is gone" is_mounted "$M"
check_fails "... and its task too" kill -0 "$pid"

# Files still open at the unmount: a status snapshot, a directory, a control
# file with an unread reply, a get parked on an empty queue and a poll of
# another.  The kernel sends no release once the loop has ended: the daemon
# answers the parked get, releases every handle itself and exits 0 (under
# ASan, LeakSanitizer would otherwise report each handle and its buffers).
pcfs_mount
exec 3<>"$M/spawn"; echo 'sleep time=60s' >&3; read -r id <&3
echo 'noop' >&3                       # its id stays unread on the descriptor
exec 4<"$M/procs/$id/status" 5<"$M/procs"
mkdir "$M/channels/held" "$M/channels/polled"
cat "$M/channels/held/get" >/dev/null 2>&1 & getter=$!
python3 -c 'import os, select, sys
p = select.poll(); p.register(os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK), select.POLLIN)
p.poll(60000)' "$M/channels/polled/get" 2>/dev/null & poller=$!
check "a get is parked" wait_until 400 grep -qx "blocked_readers: 1" "$M/channels/held/stat"
# the poll reaches the daemon: the poller is in poll(2) (7) or ppoll (271)
wait_until 400 awk '{ exit !($1 == 7 || $1 == 271) }' "/proc/$poller/syscall"
kill -TERM "$PCFS_PID"
rc=0; wait "$PCFS_PID" || rc=$?
PCFS_PID=
expect "SIGTERM with files held open: the daemon exits 0" "$rc" "0"
check_fails "... no leak is reported" grep -q "LeakSanitizer" "$WORKDIR/pcfs.stderr"
check_fails "... nor any other sanitizer report" grep -qE "ERROR: [A-Za-z]*Sanitizer|runtime error:" \
	"$WORKDIR/pcfs.stderr"
check "... the parked get was answered" wait_until 400 sh -c "! kill -0 $getter 2>/dev/null"
check_fails "... the mount is gone" is_mounted "$M"
exec 3>&- 4<&- 5<&-
kill "$poller" 2>/dev/null; wait "$getter" "$poller" 2>/dev/null

# [unmount] policy = kill: SIGKILL at once, so a TERM trap never runs
pcfs_mount "[unmount]
policy = kill
grace = 30s"
mark=$WORKDIR/termed
exec 3<>"$M/spawn"
echo "sh trap 'echo termed > $mark' TERM; while :; do sleep 0.1; done" >&3; read -r id <&3
echo 'sleep as=thread time=60s' >&3; read -r tid <&3
exec 3>&-
check "the tasks run" wait_until 400 sh -c "grep -qx running '$M/procs/$id/state' && grep -qx running '$M/procs/$tid/state'"
pid=$(cat "$M/procs/$id/pid"); host=$(cat "$M/procs/$tid/pid")
check "policy = kill: unmount, the daemon exits 0" pcfs_umount
check_fails "... the process task is gone" kill -0 "$pid"
check_fails "... it got no SIGTERM first (its trap did not run)" test -e "$mark"
check_fails "... the thread host is gone" kill -0 "$host"
expect "... no task is left" "$(tasks_left)" "0"

# [unmount] policy = leave: process tasks run on; thread hosts end with the daemon
pcfs_mount "[unmount]
policy = leave"
exec 3<>"$M/spawn"
echo 'exec sleep 600' >&3; read -r id <&3
echo 'sleep time=10m' >&3; read -r id2 <&3
echo 'sleep as=thread time=10m' >&3; read -r tid <&3
exec 3>&-
check "the tasks run" wait_until 400 sh -c "grep -qx running '$M/procs/$id2/state' && grep -qx running '$M/procs/$tid/state'"
pid=$(cat "$M/procs/$id/pid"); pid2=$(cat "$M/procs/$id2/pid"); host=$(cat "$M/procs/$tid/pid")
check "policy = leave: unmount, the daemon exits 0" pcfs_umount
check "... a program task runs on" kill -0 "$pid"
check "... a built-in process task too" kill -0 "$pid2"
check "... the thread host ended with the daemon" wait_until 400 sh -c "! kill -0 $host 2>/dev/null"
kill -9 "$pid" "$pid2"

# SIGTERM while tasks are forgotten ([tasks] history = 1: as shutdown ends
# them) and /procs is being looked up: the daemon still exits.  Dropping a
# forgotten task's entry waits for the kernel's lock of /procs, which a
# LOOKUP nobody will read any more holds; the invalidation thread stops
# before the engine.  Several rounds: the lookups race the shutdown.  (Only
# lookups, of names that are not cached: each stat is a LOOKUP.)
for round in 1 2 3 4 5; do
	pcfs_mount "[tasks]
history = 1
kill_grace = 100ms"
	for i in $(seq 40); do echo 'exec sleep 60' > "$M/spawn"; done
	lookers=()
	for j in 1 2 3 4; do
		( while :; do stat "$M/procs/$((RANDOM % 40 + 1))" "$M/procs/none$RANDOM"; done ) \
			>/dev/null 2>&1 &
		lookers+=($!)
	done
	sleep 0.3
	kill -TERM "$PCFS_PID"
	gone=0   # (a bound for a hang: a loaded, sanitized daemon takes its time over 40 tasks)
	for i in $(seq 600); do kill -0 "$PCFS_PID" 2>/dev/null || { gone=1; break; }; sleep 0.05; done
	check "round $round: SIGTERM during lookups in /procs: the daemon exits" test "$gone" = 1
	# hung: umount -f aborts the connection (a kill alone cannot end a
	# thread stuck on the kernel's lock)
	[ "$gone" = 1 ] || { umount -f "$M"; kill -9 "$PCFS_PID"; }
	wait "$PCFS_PID" 2>/dev/null
	PCFS_PID=
	kill -9 "${lookers[@]}" 2>/dev/null; wait "${lookers[@]}" 2>/dev/null
	is_mounted "$M" && fusermount3 -uz "$M"
	for pid in $(our_tasks); do kill -9 "$pid" 2>/dev/null; done
done
finish
