#!/usr/bin/env bash
# Notice (issue 18) through a real mount: /events and pools/NAME/events under
# concurrent writers (every start and end once), a small ring that makes a
# reader miss events and says how many, poll() and O_NONBLOCK, Ctrl-C on a
# reader; on_end= hooks with the right values, where and as the task ran,
# one that hangs or fails hurting nothing; /joblog and pools/NAME/joblog in
# GNU parallel's format, read back by parallel itself.
. "$(dirname "$0")/lib.sh"
pcfs_mount "[tasks]
on_end_timeout = 3s"
cd "$WORKDIR" || exit 1

# Every id in the given ids file has exactly one `started` and one `ended`
# line of this kind in the events text, and nothing else is there of it.
once_each() {   # once_each EVENTS IDS KIND
	local want got
	want=$(sort -n "$2" | awk '{ print $1, "started"; print $1, "ended" }' | sort)
	got=$(awk -v k="$3" '$3 == k { print $2, $4 }' "$1" | sort)
	[ "$want" = "$got" ] || { diff <(echo "$want") <(echo "$got") | head; return 1; }
}

# --- 8 concurrent writers while `cat /events` follows ---
cat "$M/events" > ev.txt &
reader=$!
writers=()
for w in $(seq 8); do
	( for i in $(seq 25); do echo "sh name=w$w true" > "$M/spawn"; done ) &
	writers+=($!)
done
wait_writers() { wait "${writers[@]}"; writers=(); }
wait_writers
seq 1 200 > ids.txt
exec 3<>"$M/wait"; echo 1-200 >&3; timeout 30 awk 'NR == 200 { exit }' <&3; exec 3>&-
wait_until 100 test "$(grep -c ' ended ' ev.txt)" -ge 200
kill $reader 2>/dev/null; wait $reader 2>/dev/null
check "8 writers x 25 tasks: each start and end in /events exactly once" once_each ev.txt ids.txt task
expect_match "a line: time id kind event state code name" "$(grep -m1 ' 1 task ended' ev.txt)" \
	'^20[0-9-]+T[0-9:]+\.[0-9]{3}Z 1 task ended exited code=0 name=w[1-8]$'
expect "nothing missed with the default ring" "$(grep -c '^# missed' ev.txt)" "0"

# --- Ctrl-C ends a reader that waits; a new open starts from the oldest ---
cat > ctrlc.py <<'EOF'
import os, signal, sys, time
pid = os.fork()
if pid == 0:       # cat, with SIGINT as a terminal gives it (a script's jobs ignore it)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    fd = os.open("/dev/null", os.O_WRONLY); os.dup2(fd, 1)
    os.execvp("cat", ["cat", sys.argv[1] + "/events"])
time.sleep(1)      # it has read what is kept, and waits
os.kill(pid, signal.SIGINT)
for _ in range(100):
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("ended by", os.WTERMSIG(status) if os.WIFSIGNALED(status) else "exit")
        sys.exit(0)
    time.sleep(0.05)
os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)
print("still blocked")
EOF
expect "a blocked cat /events ends on SIGINT (Ctrl-C)" "$(python3 ctrlc.py "$M")" "ended by 2"
expect "each open reads from the oldest kept" "$(kept_now "$M/events" | head -n1 | cut -d' ' -f2-4)" \
	"1 task started"

# --- events.json: the same, as JSON lines ---
expect "events.json: one JSON object per event" \
	"$(kept_now "$M/events.json" | jq -c 'select(.id == 1) | [.kind, .event, .state, .code]' | tr '\n' ' ')" \
	'["task","started","running",null] ["task","ended","exited",0] '

# --- poll() and O_NONBLOCK ---
cat > poll.py <<'EOF'
import os, select, sys, time
m = sys.argv[1]
fd = os.open(m + "/events", os.O_RDONLY | os.O_NONBLOCK)
while True:                       # drain what is kept
    try:
        if not os.read(fd, 65536): break
    except BlockingIOError:
        break
try:
    os.read(fd, 4096); print("read did not give EAGAIN")
except BlockingIOError:
    print("EAGAIN")
p = select.poll(); p.register(fd, select.POLLIN)
print("idle", bool(p.poll(200)))
with open(m + "/spawn", "w") as s: s.write("sh name=polled true\n")
print("after", bool(p.poll(5000)))
print("line", b"name=polled" in os.read(fd, 65536))
EOF
expect "O_NONBLOCK EAGAIN; poll waits, then POLLIN for a new event" \
	"$(python3 poll.py "$M" | tr '\n' ' ')" "EAGAIN idle False after True line True "

# --- on_end: its values, its directory ---
mkdir -p sub/dir
(cd sub/dir && echo "sh on_end='echo \$PCFS_ID \$PCFS_STATE \$PCFS_EXITCODE \${PCFS_POOL-none} \$(pwd) > hook.out' exit 3" > "$M/spawn")
id=$(ls "$M/procs" | sort -n | tail -1)
check "the hook ran" wait_until 100 test -s sub/dir/hook.out
expect "on_end: PCFS_ID STATE EXITCODE, no PCFS_POOL, in the task's directory" \
	"$(cat sub/dir/hook.out)" "$id exited 3 none $WORKDIR/sub/dir"
echo "sh on_end='echo \$PCFS_STATE \$PCFS_EXITCODE > killed.out' kill -TERM \$\$" > "$M/spawn"
check "a killed task's hook" wait_until 100 test -s killed.out
expect "a killed task: killed, -15" "$(cat killed.out)" "killed -15"

# --- a hook that hangs delays no other hook, no /wait; one that fails is logged ---
echo "sh on_end='sleep 600' true" > "$M/spawn"
hung=$(ls "$M/procs" | sort -n | tail -1)
t0=$(date +%s.%N)
echo "sh on_end='echo fine > fine.out' true" > "$M/spawn"
check "the next hook runs while one hangs" wait_until 40 test -s fine.out
id=$(echo "sleep time=100ms" > "$M/spawn"; ls "$M/procs" | sort -n | tail -1)
expect "procs/ID/wait answers while a hook hangs" "$(timeout 5 cat "$M/procs/$id/wait")" "0"
expect "both within 2 s" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print (b - a < 2) }')" "1"
echo "sh on_end='echo oops; exit 7' true" > "$M/spawn"
failid=$(ls "$M/procs" | sort -n | tail -1)
check "a failing hook's exit code and output in /log" \
	wait_until 100 grep -q "on_end of task $failid: exit 7: oops" "$M/log"
check "the hung hook is killed after on_end_timeout, and logged" \
	wait_until 120 grep -q "on_end of task $hung: killed after on_end_timeout" "$M/log"
check_fails "no hook is left running" pgrep -f "^sleep 600$"
expect "on_end= empty is refused (EINVAL)" "$(write_err "$M/spawn" "sh on_end= true")" "Invalid argument"

# --- a pool: events, on_end with PCFS_POOL, 2 writers ---
P=$M/pools/p
mkdir "$P"
echo "workers=3 on_end='echo \$PCFS_POOL \$PCFS_ID \$PCFS_STATE >> \"$WORKDIR/pool_hooks\"'" > "$P/ctl"
expect_match "ctl shows on_end, quoted" "$(cat "$P/ctl")" "on_end='echo"
cat "$P/events" > pev.txt &
preader=$!
for w in 1 2; do ( for i in $(seq 20); do echo "sh true" > "$P/submit"; done ) & writers+=($!); done
wait_writers
seq 1 40 > fids.txt
echo shutdown > "$P/ctl"
check "pools/p/events ends once the pool is closed" wait_until 200 bash -c "! kill -0 $preader 2>/dev/null"
check "2 writers x 20 futures: each start and end in pools/p/events once" once_each pev.txt fids.txt future
expect "no worker events in the pool's file" "$(grep -c ' worker ' pev.txt)" "0"
check "pool workers are in /events, with pool=p" \
	bash -c "dd if='$M/events' iflag=nonblock bs=65536 status=none 2>/dev/null | grep -q ' worker started running code=- name=p.1 pool=p$'"
check "a hook per future" wait_until 100 test "$(wc -l < pool_hooks 2>/dev/null)" -eq 40
expect "PCFS_POOL PCFS_ID PCFS_STATE" "$(sort -n -k2 pool_hooks | head -2 | tr '\n' ' ')" "p 1 done p 2 done "

# --- /joblog, field by field, and parallel --retry-failed on it ---
: > trace
for l in "sh echo ok1 >> trace" "sh echo bad2 >> trace; exit 3" "sh echo bad3 >> trace; kill -TERM \$\$" \
	"exec /bin/sh -c 'echo bad4 >> trace; exit 4' x"; do
	echo "$l" > "$M/spawn"
done
first=$(( $(ls "$M/procs" | sort -n | tail -1) - 3 ))
exec 3<>"$M/wait"; echo "$first-$((first + 3))" >&3; timeout 10 awk 'NR == 4 { exit }' <&3; exec 3>&-
cp "$M/joblog" jl
expect "joblog header" "$(head -1 jl | cat -A)" 'Seq^IHost^IStarttime^IJobRuntime^ISend^IReceive^IExitval^ISignal^ICommand$'
awk -F'\t' -v f="$first" 'NR > 1 && $1 + 0 >= f' jl | sort -n > mine   # they end in any order
expect "one line per task, 9 fields each" "$(awk -F'\t' '{ print NF }' mine | sort -u)" "9"
expect "Seq = the task ids" "$(cut -f1 mine | tr '\n' ' ')" "$first $((first + 1)) $((first + 2)) $((first + 3)) "
expect "Host : Send 0 Receive 0" "$(cut -f2,5,6 mine | sort -u | cat -A)" ':^I0^I0$'
check "Starttime: epoch seconds, 3 decimals, about now" \
	awk -F'\t' -v now="$(date +%s)" '{ if ($3 !~ /^[0-9]+\.[0-9][0-9][0-9]$/ || $3 < now - 60 || $3 > now + 1) exit 1 }' mine
check "JobRuntime: %10.3f" awk -F'\t' '{ if ($4 !~ /^ *[0-9]+\.[0-9][0-9][0-9]$/ || length($4) != 10) exit 1 }' mine
expect "Exitval and Signal as parallel writes them (a signal: 0 and N)" \
	"$(cut -f7,8 mine | tr '\t\n' ', ')" "0,0 3,0 0,15 4,0 "
expect "Command: sh's command line, exec's words quoted for sh" "$(cut -f9 mine)" \
	"echo ok1 >> trace
echo bad2 >> trace; exit 3
echo bad3 >> trace; kill -TERM \$\$
/bin/sh -c 'echo bad4 >> trace; exit 4' x"
: > trace
printf 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n' > jlr
cat mine >> jlr
parallel --joblog jlr --retry-failed > /dev/null 2>&1
expect "parallel --retry-failed on pcfs's joblog reruns exactly the failed commands" \
	"$(sort trace | tr '\n' ' ')" "bad2 bad3 bad4 "

# --- pools/NAME/joblog and parallel --resume-failed ---
Q=$M/pools/q
mkdir "$Q"
echo "workers=3 template='sh case {} in 3|6) exit 1;; 8) kill -TERM \$\$;; esac'" > "$Q/ctl"
seq 9 > "$Q/submit"
echo shutdown > "$Q/ctl"
check "pool q drains" wait_until 200 grep -qx "state: closed" "$Q/status"
cp "$Q/joblog" qjl
expect "a line per future, Seq = its number ({#})" "$(tail -n +2 qjl | cut -f1 | sort -n | tr '\n' ' ')" \
	"1 2 3 4 5 6 7 8 9 "
expect "the failed: 3 and 6 exit 1, 8 signal 15" \
	"$(awk -F'\t' 'NR > 1 && ($7 != 0 || $8 != 0) { print $1 ":" $7 ":" $8 }' qjl | sort -n | tr '\n' ' ')" \
	"3:1:0 6:1:0 8:0:15 "
expect "Command is the line as it ran" "$(awk -F'\t' '$1 == 8 { print $9 }' qjl)" \
	"case 8 in 3|6) exit 1;; 8) kill -TERM \$\$;; esac"
: > rerun
parallel --joblog qjl --resume-failed 'echo {} >> rerun' ::: $(seq 9) > /dev/null 2>&1
expect "parallel --resume-failed with the same inputs reruns exactly the failed ones" \
	"$(sort -n rerun | tr '\n' ' ')" "3 6 8 "

check "unmounts cleanly" pcfs_umount

# --- a small ring: a reader that falls behind is told how many it missed ---
pcfs_mount "[log]
events = 16"
cat > behind.py <<'EOF'
import os, re, sys, subprocess
m = sys.argv[1]
def spawn(n):
    with open(m + "/spawn", "w") as s: s.write("noop\n" * n)
def wait_all(last):
    with open(m + "/procs/%d/wait" % last) as w: w.read()
fd = os.open(m + "/events", os.O_RDONLY | os.O_NONBLOCK)
seen, missed = 0, 0
def drain():
    global seen, missed
    buf = b""
    while True:
        try:
            b = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not b: break
        buf += b
    for l in buf.decode().splitlines():
        mm = re.match(r"# missed (\d+) events?$", l)
        if mm: missed += int(mm.group(1))
        else: seen += 1
spawn(3); wait_all(3); drain()                 # 6 events, all kept
print("first", seen, missed)
spawn(40); wait_all(43); drain()               # 80 more: only 16 kept
print("total", seen + missed, "missed>0", missed > 0, "seen", seen)
EOF
expect "a reader 80 events behind a ring of 16: seen + missed = every event" \
	"$(python3 behind.py "$M" | tr '\n' ' ')" "first 6 0 total 86 missed>0 True seen 22 "
check "unmounts cleanly" pcfs_umount
finish
