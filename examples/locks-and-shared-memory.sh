#!/usr/bin/env bash
# locks-and-shared-memory.sh MOUNTPOINT - the seed's section 7: shared data
# needs a lock; processes share memory through a segment.
#
#   lock = Lock(); with lock: ...      ->  mkdir sync/L; ( ... ) 9>sync/L/hold
#   Semaphore(3), Event(), Barrier(4)  ->  echo 'semaphore s value=3' > sync/ctl, ...
#   shared_memory.SharedMemory(size=)  ->  echo 'segment seg size=4k' > shm/ctl;
#                                          mmap(open(shm/seg/data))
#   Value('i', 0) with its lock        ->  echo 'value n' > shm/ctl; echo 'add 1' > shm/n/ctl
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: locks-and-shared-memory.sh MOUNTPOINT}}
S=$M/sync
H=$M/shm
work=$(mktemp -d /tmp/pcfs-sync.XXXXXX)
trap 'rm -rf "$work"' EXIT
TASKS=10 TIMES=100

spawn() {   # spawn LINE -> its ids, one a line
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3
	while read -r -t 5 id <&3; do echo "$id"; done
	exec 3>&-
}
join() { local id; for id in "$@"; do cat "$M/procs/$id/wait" >/dev/null; done; }

echo "== The counter race: $TASKS tasks each add 1 to a counter file $TIMES times"
mkdir "$S/counter"
echo 0 > "$work/locked"; echo 0 > "$work/unlocked"
step='read n < FILE; echo $((n + 1)) > FILE'
# with the lock: the read and the write are one critical section (fd 9 held)
# (a barrier starts the tasks of each run together, so that they overlap)
printf 'barrier start1 parties=%s\nbarrier start2 parties=%s\n' "$TASKS" "$TASKS" > "$S/ctl"
join $(spawn "sh $TASKS cwd=$work cat $S/start1/wait >/dev/null; i=0; while [ \$i -lt $TIMES ]; do exec 9>$S/counter/hold; ${step//FILE/locked}; exec 9>&-; i=\$((i + 1)); done")
# without it: the same steps, and two tasks may read the same n
join $(spawn "sh $TASKS cwd=$work cat $S/start2/wait >/dev/null; i=0; while [ \$i -lt $TIMES ]; do ${step//FILE/unlocked}; i=\$((i + 1)); done")
want=$((TASKS * TIMES))
locked=$(cat "$work/locked") unlocked=$(cat "$work/unlocked")
printf '  %-10s %15s %15s\n' "" "with the lock" "without"
printf '  %-10s %15s %15s\n' expected "$want" "$want"
printf '  %-10s %15s %15s\n' counter "$locked" "$unlocked"
printf '  %-10s %15s %15s\n' lost "$((want - locked))" "$((want - unlocked))"
echo "  the lock: $(grep -E '^(acquisitions|contended|longest_hold):' "$S/counter/status" | tr '\n' ' ')"

echo
echo "== A semaphore of 2: at most two tasks inside at once"
echo 'semaphore two value=2' > "$S/ctl"
join $(spawn "sh 6 cwd=$work exec 9>$S/two/hold; echo \"in \$(date +%s%N)\" >> sem.log; sleep 0.1; echo \"out \$(date +%s%N)\" >> sem.log")
most=$(sort -k2 -n "$work/sem.log" | awk '$1 == "in" { n++ } $1 == "out" { n-- } n > m { m = n } END { print m }')
echo "  most holders at once (from their own timestamps): $most"

echo
echo "== An event starts 3 waiting tasks at once; a barrier lets 3 tasks through together"
echo 'event go' > "$S/ctl"
echo 'barrier meet parties=3' > "$S/ctl"
ids=$(spawn "sh 3 cat $S/go/wait >/dev/null; cat $S/meet/wait")
while [ "$(sed -n 's/^waiters: //p' "$S/go/status")" != 3 ]; do sleep 0.05; done
echo "  waiting on the event: 3"
echo set > "$S/go/ctl"
join $ids
echo "  arrival indexes at the barrier: $(for id in $ids; do cat "$M/procs/$id/stdout"; done | sort -n | tr '\n' ' ')"

echo
echo "== A shared memory segment: one task writes, another reads it by mmap"
echo 'segment seg size=4k' > "$H/ctl"
echo "  $H/seg/data -> $(readlink "$H/seg/data")"
cat > "$work/writer.py" <<'PY'
import mmap, os, sys, time
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    msg = "written by task %s (pid %d)" % (os.environ["PCFS_ID"], os.getpid())
    m[8:8 + len(msg)] = msg.encode()
    m[0:8] = len(msg).to_bytes(8, "little")
    while not os.path.exists("stop"):
        time.sleep(0.05)
PY
cat > "$work/reader.py" <<'PY'
import mmap, os, sys, time
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    while int.from_bytes(m[0:8], "little") == 0:
        time.sleep(0.01)
    print("task %s read: %s" % (os.environ["PCFS_ID"],
                                m[8:8 + int.from_bytes(m[0:8], "little")].decode()), flush=True)
    while not os.path.exists("stop"):
        time.sleep(0.05)
PY
w=$(spawn "sh cwd=$work exec python3 writer.py $H/seg/data")
r=$(spawn "sh cwd=$work exec python3 reader.py $H/seg/data")
until [ -s "$M/procs/$r/stdout" ]; do sleep 0.05; done
echo "  $(cat "$M/procs/$r/stdout")"
until [ "$(sed -n 's/^mappers: //p' "$H/seg/status")" = 2 ]; do sleep 0.05; done
echo "  who maps it (PID:TASK:RSS_KIB:PSS_KIB): $(sed -n 's/^mapped_by: //p' "$H/seg/status")"
echo "  writer task $w, reader task $r"
touch "$work/stop"
join "$w" "$r"
rmdir "$H/seg"

echo
echo "== A shared value: 4 tasks each add 1 a hundred times, atomically"
echo 'value hits' > "$H/ctl"
join $(spawn "sh 4 : ; i=0; while [ \$i -lt 100 ]; do echo 'add 1' > $H/hits/ctl; i=\$((i + 1)); done")
echo "  hits: $(cat "$H/hits/value") (of 400)"
if echo 'cas 1 2' > "$H/hits/ctl" 2>/dev/null; then echo "  cas 1 2: done"; else
	echo "  cas 1 2: refused (EAGAIN), the value is not 1"; fi
rmdir "$S/counter" "$S/start1" "$S/start2" "$S/two" "$S/go" "$S/meet" "$H/hits"
