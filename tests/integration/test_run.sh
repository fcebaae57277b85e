#!/usr/bin/env bash
# /run (issue 21) through a real mount: spawn and wait on one descriptor.
# bash's `exec 3<>run; echo LINE >&3; read id code <&3`; exit codes (zero,
# nonzero, a signal), many lines and writes on one descriptor told in the
# order the tasks end (checked against /events, pcfs's own record), COUNT,
# a malformed line refused whole (EINVAL, the reason read back on the same
# descriptor, nothing started), O_NONBLOCK, poll(), a signal interrupting a
# blocked read (EINTR, the task still told afterwards), Ctrl-C, EOF once
# everything written has been told, and the writer's directory.
. "$(dirname "$0")/lib.sh"
pcfs_mount
cd "$WORKDIR" || exit 1

check "the root has run" test -f "$M/run" || { finish; exit 1; }

# --- one command, from bash ---
exec 3<>"$M/run"
echo 'exec /bin/true' >&3
read -r id code <&3
expect "exec /bin/true: its id and exit code 0" "$code" "0"
expect "... the id is the task's" "$(cat "$M/procs/$id/cmd")" "exec /bin/true"
echo "exec /bin/sh -c 'exit 7'" >&3
read -r id code <&3
expect "a nonzero exit code" "$code" "7"
echo 'sh kill -TERM $$' >&3
read -r id code <&3
expect "killed by a signal: -SIGNAL" "$code" "-15"
echo 'sh kill -KILL $$' >&3
read -r id code <&3
expect "... SIGKILL" "$code" "-9"

# --- COUNT, and many lines in one write: told in the order they end ---
echo 'exec 3 /bin/true' >&3
got=(); for _ in 1 2 3; do read -r id code <&3; got+=("$code"); done
expect "COUNT 3: three lines" "${got[*]}" "0 0 0"
env printf '%s\n' 'sleep time=900ms' 'sh exit 1' 'sleep time=300ms' 'noop' >&3
lines=(); for _ in 1 2 3 4; do read -r l <&3; lines+=("$l"); done
ids=$(printf '%s\n' "${lines[@]}" | cut -d' ' -f1)
first=$(echo "$ids" | sort -n | head -1)
ends=$(kept_now "$M/events" | awk -v lo="$first" '$3 == "task" && $4 == "ended" && $2 >= lo && $2 < lo + 4 { print $2 }')
expect "four lines of one write, each told once, in the order /events saw them end" "$ids" "$ends"
expect "... with their codes" "$(printf '%s\n' "${lines[@]}" | sort -n | cut -d' ' -f2 | tr '\n' ' ')" "0 1 0 0 "

# --- 100 writes on the descriptor, then 100 reads ---
for _ in $(seq 100); do echo 'exec /bin/true' >&3; done
n=0; bad_codes=0
for _ in $(seq 100); do read -r id code <&3 && n=$((n + 1)); [ "$code" = 0 ] || bad_codes=$((bad_codes + 1)); done
expect "100 writes, then 100 lines read, all 0" "$n $bad_codes" "100 0"

# --- a malformed line refuses the whole write (env printf: one write; bash's
# builtin writes a line at a time) ---
before=$(ls "$M/procs" | wc -l)
out=$( { env printf 'exec /bin/true\nbogus 1\n' >&3; } 2>&1 ); rc=$?
expect "a malformed line: the write fails" "$rc ${out##*: }" "1 Invalid argument"
read -r l <&3
expect_match "... the reason is read back on the same descriptor" "$l" "^error: line 2: unknown workload 'bogus'"
expect "... and nothing started (not even its good line)" "$(ls "$M/procs" | wc -l)" "$before"
echo 'noop' >&3
read -r id code <&3
expect "... the descriptor still works after it" "$code" "0"
exec 3>&-

# --- EOF: a read with nothing pending ---
exec 3<>"$M/run"; echo noop >&3
expect "cat ends once everything written has been told" "$(timeout 10 cat <&3 | cut -d' ' -f2)" "0"
exec 3>&-

# --- the writer's directory ---
mkdir -p here
exec 3<>"$M/run"; (cd here && echo 'sh pwd' >&3)
read -r id code <&3
expect "a line runs where its writer stands" "$(cat "$M/procs/$id/stdout")" "$WORKDIR/here"
exec 3>&-

# --- O_NONBLOCK, poll(), a signal while blocked ---
cat > nb.py <<'EOF'
import os, select, signal, sys
m = sys.argv[1]
fd = os.open(m + "/run", os.O_RDWR | os.O_NONBLOCK)
os.write(fd, b"sleep time=10m\n")
try:
    os.read(fd, 64); print("read")
except BlockingIOError:
    print("EAGAIN")
p = select.poll(); p.register(fd, select.POLLIN)
before = p.poll(0)
id = sorted(os.listdir(m + "/procs"), key=int)[-1]
with open(m + "/procs/%s/ctl" % id, "w") as f:
    f.write("kill\n")
after = p.poll(10000)
print(len(before), len(after), os.read(fd, 64).decode().split()[1])
EOF
expect "O_NONBLOCK: EAGAIN while it runs; poll(): readable once it ends; its line" \
	"$(timeout 30 python3 nb.py "$M" | tr '\n' ' ')" "EAGAIN 0 1 -9 "

cat > intr.py <<'EOF'
import os, signal, sys
m = sys.argv[1]
class Woken(Exception): pass
def on_alarm(sig, frame): raise Woken()
signal.signal(signal.SIGALRM, on_alarm)
fd = os.open(m + "/run", os.O_RDWR)
os.write(fd, b"sleep time=10m\n")
signal.setitimer(signal.ITIMER_REAL, 0.5)
try:
    os.read(fd, 64); print("read")
except Woken:
    print("EINTR")         # the handler ran with read() returned (PEP 475)
id = sorted(os.listdir(m + "/procs"), key=int)[-1]
with open(m + "/procs/%s/ctl" % id, "w") as f:
    f.write("kill\n")
l = os.read(fd, 64).decode().split()
print(l[0] == id, l[1])
EOF
expect "a signal ends a blocked read (EINTR); the task is still told after it" \
	"$(timeout 30 python3 intr.py "$M" | tr '\n' ' ')" "EINTR True -9 "

exec 3<>"$M/run"; echo 'sleep time=10m' >&3
id=$(ls "$M/procs" | sort -n | tail -1)
start=$(date +%s%N)
timeout -s INT 0.3 cat <&3; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect "Ctrl-C on a blocked reader ends it" "$rc" "124"
check "... at once ($ms ms; the task runs 10 minutes)" test "$ms" -lt 10000
exec 3>&-
check "closing the descriptor leaves its task running" test "$(cat "$M/procs/$id/state")" = running
echo kill > "$M/procs/$id/ctl"

check "unmounts cleanly" pcfs_umount
finish
