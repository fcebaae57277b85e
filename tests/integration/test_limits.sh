#!/usr/bin/env bash
# Resource control (issue 19) on a real mount and the machine's real cgroup
# hierarchy: mem_max= and the OOM verdict, pids_max= against a fork bomb,
# cpu_max= measured from the task's own CPU time, cpus= pinning, kill and
# stop/cont reaching the whole cgroup (a double-forked daemon dies), what
# cannot be enforced refused, and no cgroup left after a task is forgotten,
# the daemon unmounted, or killed (the next daemon cleans up).  A check is
# skipped, saying so, only where /stats says the host lacks the mechanism.
. "$(dirname "$0")/lib.sh"

pcfs_mount "[tasks]
default_time = 30s"
cd "$WORKDIR"
done_with() { timeout 120 cat "$M/procs/$1/wait"; }
field() { sed -n "s/^$2: //p" "$M/procs/$1/status"; }
skip() { printf 'skip %s\n' "$1"; }
MECH=$(sed -n 's/^cgroup: //p' "$M/stats")
echo "mechanisms: $MECH"
# have CONTROLLER: /stats says it is enforced (v1 or v2)
have() { [[ " $MECH " =~ \ $1=v[12]\  ]]; }
cg_dirs() { sed -n 's/^[a-z,]*: \(\/.*\)$/\1/p' "$M/procs/$1/cgroup"; }
procs_in() { sed -n 's/^procs://p' "$M/procs/$1/cgroup" | wc -w; }
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
all_gone() { local p; for p in "$@"; do gone "$p" || return 1; done; }
none_exist() { local d; for d in "$@"; do [ ! -e "$d" ] || return 1; done; }

if [[ $MECH == off* ]]; then
	skip "every limit: no cgroup can be made on this host ($MECH)"
	finish
	exit
fi
expect_match "/stats says which mechanisms are in use" "$MECH" 'memory=(v1|v2|none) pids=.* kill=.* freeze='

# --- mem_max: the seed's demand paging under a cap ------------------------------------
if have memory; then
	BIG=$(spawn "mem size=512M touch=100% mem_max=128M time=60s")
	SMALL=$(spawn "mem size=512M touch=10% mem_max=128M time=1s")
	expect "touch=100% under mem_max=128M: OOM-killed" "$(done_with "$BIG")" "-9"
	expect "... its state says killed, its error says why" \
		"$(cat "$M/procs/$BIG/state")|$(cat "$M/procs/$BIG/error")" \
		"killed|killed by the OOM killer (mem_max 128M)"
	expect "... status and status.json say oom_killed" \
		"$(field "$BIG" oom_killed) $(jq -r .oom_killed "$M/procs/$BIG/status.json")" "1 true"
	expect "touch=10% (RSS ~51 MiB) lives under the same cap" "$(done_with "$SMALL")" "0"
	expect "... and is not oom_killed" "$(field "$SMALL" oom_killed)" "0"
	expect "a limited task's cgroup is named in status" "$(field "$SMALL" cgroup)" "t$SMALL"
	mfield() { sed -n "s/^$2: //p" "$M/procs/$1/$3"; }
	expect "mem shows its limit and the OOM verdict" \
		"$(mfield "$BIG" mem_max mem) $(mfield "$BIG" oom_killed mem)" "131072 1"
	check "... and the peaks of its tree and cgroup, in KiB ($(mfield "$SMALL" rss_peak mem), $(mfield "$SMALL" cgroup_mem_peak mem))" \
		test "$(mfield "$SMALL" rss_peak mem)" -gt 40000 -a "$(mfield "$SMALL" cgroup_mem_peak mem)" -gt 40000
	expect "mem.json too" "$(jq -c '[.mem_max, .oom_killed]' "$M/procs/$BIG/mem.json")" "[131072,true]"
else
	skip "mem_max: no memory controller ($MECH)"
fi

N0=$(spawn "noop")
done_with "$N0" >/dev/null
expect "a task without limits has no cgroup" "$(field "$N0" cgroup)|$(cat "$M/procs/$N0/cgroup")" "|"

# --- pids_max: a fork bomb is contained -------------------------------------------------
if have pids; then
	# sh gives up once fork fails (it exits 2); the sleeps it made stay
	B=$(spawn "sh pids_max=20 for i in \$(seq 200); do sleep 300 & done; wait")
	done_with "$B" >/dev/null
	N=$(procs_in "$B")
	check "200 background sleeps under pids_max=20: at most 20 processes ($N)" test "$N" -le 20 -a "$N" -ge 10
	check "... the shell was told fork failed" grep -qi "fork" "$M/procs/$B/stderr"
	expect "status counts what still runs in its cgroup" "$(field "$B" cgroup_procs)" "$N"
	BPIDS=$(sed -n 's/^procs://p' "$M/procs/$B/cgroup")
	rmdir "$M/procs/$B"
	check "forgetting it kills what it left running" wait_until 200 all_gone $BPIDS
else
	skip "pids_max: no pids controller"
fi

# --- cpu_max: near half a CPU, from the task's own CPU time ----------------------------
if have cpu; then
	C=$(spawn "cpu cpu_max=50% time=3s")
	done_with "$C" >/dev/null
	SHARE=$(awk -v u="$(field "$C" utime)" -v s="$(field "$C" stime)" -v r="$(field "$C" runtime)" \
		'BEGIN { printf "%.2f", (u + s) / r }')
	# the quota is a ceiling: a machine loaded beyond its CPUs may give
	# it less, never more (the floor only says it ran)
	check "cpu_max=50%: its CPU time is at most about half its runtime ($SHARE)" \
		awk -v x="$SHARE" 'BEGIN { exit !(x >= 0.02 && x <= 0.62) }'
	expect "sched shows cpu_max and its cgroup's CPU time" \
		"$(jq -c '[.cpu_max, .cpus, (.cgroup_cpu > 0)]' "$M/procs/$C/sched.json")" "[50,null,true]"
else
	skip "cpu_max: no cpu controller"
fi

# --- cpus=0 pins (cpuset, or the affinity where there is none) ---------------------------
P=$(spawn "sh cpus=0 grep Cpus_allowed_list /proc/self/status")
done_with "$P" >/dev/null
expect "cpus=0: the task may run on CPU 0 only" "$(tr -d '\t' < "$M/procs/$P/stdout")" "Cpus_allowed_list:0"

# --- kill reaches the whole cgroup: a double-forked daemon dies ---------------------------
D=$(spawn "sh cgroup=1 (setsid sh -c 'sleep 300' >/dev/null 2>&1 &); sleep 300")
check "the daemon it started is in its cgroup" wait_until 200 sh -c "[ \$(sed -n 's/^procs://p' '$M/procs/$D/cgroup' | wc -w) -ge 3 ]"
SLEEPER=$(for p in $(sed -n 's/^procs://p' "$M/procs/$D/cgroup"); do
	[ "$(ps -o sid= -p "$p" | tr -d ' ')" = "$p" ] && echo "$p"; done | head -1)
check "... in a session of its own ($SLEEPER)" test -n "$SLEEPER"
check "status counts what is in the cgroup" test "$(field "$D" cgroup_procs)" -ge 3
echo kill > "$M/procs/$D/ctl"
expect "kill ends the task" "$(done_with "$D")" "-9"
check "... and the double-forked daemon with it" wait_until 200 gone "$SLEEPER"

# --- stop/cont freeze and thaw the whole tree ----------------------------------------------
if [[ $MECH == *freeze=cgroup.freeze* ]]; then
	F=$(spawn "sh cgroup=1 while :; do sleep 0.05; echo x >> '$WORKDIR/ticks'; done")
	wait_until 100 test -s ticks
	echo stop > "$M/procs/$F/ctl"
	expect "stop: the task is stopped" "$(cat "$M/procs/$F/state")" "stopped"
	U=$(grep '^unified: ' "$M/procs/$F/cgroup" | cut -d' ' -f2)
	check "... its cgroup frozen" wait_until 100 grep -qx 'frozen 1' "$U/cgroup.events"
	n1=$(wc -l < ticks); sleep 0.3; n2=$(wc -l < ticks)
	expect "... nothing in it runs" "$n2" "$n1"
	echo cont > "$M/procs/$F/ctl"
	expect "cont: running again" "$(cat "$M/procs/$F/state")" "running"
	check "... it runs" wait_until 100 sh -c "[ \$(wc -l < ticks) -gt $n2 ]"
	echo term > "$M/procs/$F/ctl"
	expect "term ends it" "$(done_with "$F")" "-15"
else
	skip "stop/cont as freeze: no cgroup.freeze"
fi

# --- accounting: children's work counted --------------------------------------------------
BUSY='i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'
W=$(spawn "sh for i in 1 2; do ($BUSY) & done; wait")
done_with "$W" >/dev/null
check "a task whose waited-for children did the work: their CPU in its utime ($(field "$W" utime))" \
	awk -v u="$(field "$W" utime)" 'BEGIN { exit !(u >= 0.05) }'
check "... minor faults counted ($(field "$W" minflt)), peak RSS ($(field "$W" rss_peak_kib) KiB)" \
	test "$(field "$W" minflt)" -gt 0 -a "$(field "$W" rss_peak_kib)" -gt 0
G=$(spawn "sh cgroup=1 (setsid sh -c '$BUSY' >/dev/null 2>&1 &)")
done_with "$G" >/dev/null
wait_until 400 sh -c "[ \$(sed -n 's/^procs://p' '$M/procs/$G/cgroup' | wc -w) -eq 0 ]"
check "a daemonized child's CPU is counted by the task's cgroup ($(field "$G" cgroup_cpu) s, its own $(field "$G" utime) s)" \
	awk -v c="$(field "$G" cgroup_cpu)" -v u="$(field "$G" utime)" 'BEGIN { exit !(c >= 0.05 && c > u) }'
IO=$(spawn "io ops=20 size=64k")
done_with "$IO" >/dev/null
expect "io: the bytes it wrote (wait4's blocks) and that it has ended" \
	"$(jq -r '"\(.write_bytes > 0) \(.live)"' "$M/procs/$IO/io.json")" "true false"
MEM=$(spawn "mem size=64M touch=100% time=5m")
wait_until 200 sh -c "[ \$(sed -n 's/^minflt: //p' '$M/procs/$MEM/io') -gt 10000 ]"
check "io while it runs: /proc/PID/io, and the seed's demand paging as minor faults ($(sed -n 's/^minflt: //p' "$M/procs/$MEM/io"))" \
	grep -qx 'live: 1' "$M/procs/$MEM/io"
echo kill > "$M/procs/$MEM/ctl"

# --- what cannot be enforced is refused, saying why -----------------------------------------
expect "method=fork with a limit: refused" "$(write_err "$M/spawn" "sleep method=fork mem_max=64M")" "Invalid argument"
check "... saying why" grep -q "method=fork: the fork server starts it" "$M/log"
expect "as=thread with a limit: refused" "$(write_err "$M/spawn" "sleep as=thread pids_max=5")" "Invalid argument"
expect "cpus= beyond this host's CPUs: refused" "$(write_err "$M/spawn" "sleep cpus=1000")" "Invalid argument"
mkdir "$M/pools/tp"
echo "type=thread workers=1" > "$M/pools/tp/ctl"
expect "a thread pool's future with a limit: refused" "$(write_err "$M/pools/tp/submit" "sleep mem_max=64M")" "Invalid argument"
check "... saying why" grep -q "a thread pool's futures share one process" "$M/log"
expect "a pool's cpus= beyond this host's CPUs: refused" "$(write_err "$M/pools/tp/ctl" "cpus=1000")" "Invalid argument"
rmdir "$M/pools/tp"

# --- pools: the pool's limits bound its workers together; a future's, its run ---------------
submit() { local id; exec 3<>"$M/pools/$1/submit"; printf '%s\n' "$2" >&3; read -r id <&3; exec 3>&-; echo "$id"; }
fwait() { timeout 120 cat "$M/pools/$1/futures/$2/wait"; }
ffield() { sed -n "s/^$3: //p" "$M/pools/$1/futures/$2/status"; }
pfield() { sed -n "s/^$2: //p" "$M/pools/$1/status"; }
# a worker's cgroup directory in hierarchy $2 (memory, pids, ...), from /proc
worker_cg() { awk -F: -v h="$2" '$2 ~ "(^|,)"h"(,|$)" { print $3 }' "/proc/$1/cgroup"; }
mkdir "$M/pools/pl"
echo "workers=2 mem_max=200M" > "$M/pools/pl/ctl"
echo "pids_max=64" > "$M/pools/pl/ctl"   # a line changes only what it names
expect "a pool's ctl takes limits, line by line, and shows them" "$(cat "$M/pools/pl/ctl")" \
	"workers=2 type=process gil=0 mem_max=200M pids_max=64"
expect_match "... its status names them and its cgroup" "$(pfield pl limits)|$(pfield pl cgroup)" \
	'^mem_max=200M pids_max=64\|p[0-9]+$'
if have memory; then
	# two futures of 150M at once, on the pool's two workers: 300M is
	# more than the pool's 200M, so the OOM killer takes one of them
	A=$(submit pl "mem size=150M touch=100% time=20s")
	B=$(submit pl "mem size=150M touch=100% time=20s")
	fwait pl "$A" >/dev/null; fwait pl "$B" >/dev/null
	# (the kernel may take both before the first one's memory is back:
	# then each is told)
	told() { if [ "$(ffield pl "$1" state)" = done ]; then echo done; else
		echo "$(ffield pl "$1" error)|$(ffield pl "$1" oom_killed)"; fi; }
	OOM='killed by the OOM killer (pool mem_max 200M)|1'
	check "pool mem_max=200M, two 150M futures at once: the OOM killer takes one ($(told "$A"); $(told "$B"))" \
		test "$(ffield pl "$A" state)" = failed -o "$(ffield pl "$B" state)" = failed
	check "... each it took says so in error and oom_killed, the other is done" \
		sh -c "for t in '$(told "$A")' '$(told "$B")'; do [ \"\$t\" = done ] || [ \"\$t\" = '$OOM' ] || exit 1; done"
	check "... the pool starts a worker in its place" wait_until 200 test "$(pfield pl ready)" = 2
	check "the pool's cgroup counted its peak ($(pfield pl cgroup_mem_peak_kib) KiB)" \
		test "$(pfield pl cgroup_mem_peak_kib)" -gt 150000
	# a future's own mem_max: its run alone is bounded
	BIG=$(submit pl "mem size=512M touch=100% mem_max=128M")
	SMALL=$(submit pl "mem size=512M touch=10% mem_max=128M time=1s")
	expect "a future's mem_max=128M with touch=100%: it fails" "$(fwait pl "$BIG")" "failed"
	expect "... killed by the OOM killer, its own limit named" \
		"$(ffield pl "$BIG" error)|$(ffield pl "$BIG" oom_killed)|$(ffield pl "$BIG" limits)" \
		"killed by the OOM killer (mem_max 128M)|1|mem_max=128M"
	expect "touch=10% lives under the same limit" "$(fwait pl "$SMALL")|$(ffield pl "$SMALL" oom_killed)" "done|0"
else
	skip "pool and future mem_max: no memory controller"
fi
WPID=$(pgrep -P "$PCFS_PID" -f "pcfs-worker pool" | head -1)
in_pool_cg() { worker_cg "$1" pids | grep -q '/p[0-9]*$'; }
check "a worker of the pool runs in the pool's cgroup ($WPID)" in_pool_cg "$WPID"
PCG=$(worker_cg "$WPID" pids)
PDIR=$(findmnt -n -t cgroup -o TARGET,OPTIONS | awk '$2 ~ /(^|,)pids(,|$)/ { print $1 }' | head -1)$PCG
check "... whose pids.max is the pool's pids_max=64" grep -qx 64 "$PDIR/pids.max"
if have pids; then
	# the future's cgroup holds what its run started: a daemonized
	# grandchild goes with it when the run ends
	D=$(submit pl "sh pids_max=10 setsid sleep 300 >/dev/null 2>&1 & echo \$!")
	fwait pl "$D" >/dev/null
	DPID=$(tail -1 "$M/pools/pl/futures/$D/result")
	expect "a future with pids_max=10 is done" "$(ffield pl "$D" state)" "done"
	check "... the daemon its run left ($DPID) went with its cgroup" wait_until 200 gone "$DPID"
	check "... and the cgroup is removed" wait_until 200 sh -c "[ -z \"\$(ls -d '$PDIR'/f* 2>/dev/null)\" ]"
	check "... its worker is back in the pool's cgroup" test "$(worker_cg "$WPID" pids)" = "$PCG"
fi
# a limited future waits for an idle worker, and runs there alone
L1=$(submit pl "sleep time=1s")
L2=$(submit pl "sleep time=1s")
L3=$(submit pl "sh cpus=0 grep Cpus_allowed_list /proc/self/status")
expect "a future with cpus=0 runs pinned to CPU 0" "$(fwait pl "$L3")|$(tr -d '\t' < "$M/pools/pl/futures/$L3/result")" \
	"done|Cpus_allowed_list:0"
L4=$(submit pl "sh grep Cpus_allowed_list /proc/self/status")
fwait pl "$L4" >/dev/null
check "... and the next future on that worker is not ($(tr -d '\t' < "$M/pools/pl/futures/$L4/result"))" \
	test "$(tr -d '\t' < "$M/pools/pl/futures/$L4/result")" != "Cpus_allowed_list:0"
echo shutdown > "$M/pools/pl/ctl"
wait_until 200 test "$(pfield pl state)" = closed
rmdir "$M/pools/pl"
check "removing the pool removes its cgroup" wait_until 200 test ! -e "$PDIR"

# --- no cgroup left behind ---------------------------------------------------------------------
K=$(spawn "sh cgroup=1 pids_max=50 sleep 300 & sleep 300")
wait_until 100 sh -c "[ \$(sed -n 's/^procs://p' '$M/procs/$K/cgroup' | wc -w) -ge 2 ]"
DIRS=$(cg_dirs "$K")
SUBS=$(for d in $DIRS; do dirname "$d"; done)
echo term > "$M/procs/$K/ctl"
done_with "$K" >/dev/null
rmdir "$M/procs/$K"
check "forgetting a task removes its cgroups" wait_until 200 none_exist $DIRS
check "unmount: the daemon exits 0" pcfs_umount
check "... and removes its subtree in every hierarchy" none_exist $SUBS

# A daemon killed outright leaves its subtree and a limited task; the next one
# started in the same cgroup kills what is left and removes it.  (Its results
# are not this test's: no state dir to leave behind.)
pcfs_mount "[tasks]
default_time = 30s
[state]
dir = none"
L=$(spawn "sleep cgroup=1 time=5m")
LPID=$(cat "$M/procs/$L/pid")
# ... and a pool with limits, a limited future running in it (pN/fM)
mkdir "$M/pools/kp"
echo "workers=1 pids_max=32" > "$M/pools/kp/ctl"
KF=$(submit kp "sleep pids_max=8 time=5m")
wait_until 200 test "$(ffield kp "$KF" state)" = running
KW=$(pgrep -P "$PCFS_PID" -f "pcfs-worker pool" | head -1)
KDIR=$(findmnt -n -t cgroup -o TARGET,OPTIONS | awk '$2 ~ /(^|,)pids(,|$)/ { print $1 }' | head -1)$(worker_cg "$KW" pids)
check "a limited future's worker is in the future's cgroup, below the pool's" \
	grep -q "/p[0-9]*/f$KF\$" <<<"$KDIR"
DIRS=$(cg_dirs "$L")
SUBS=$(for d in $DIRS; do dirname "$d"; done)
OLD=$PCFS_PID
kill -9 "$OLD"; wait "$OLD" 2>/dev/null
fusermount3 -uz "$M" 2>/dev/null
check "a killed daemon leaves its subtree" test -d "$(echo "$SUBS" | head -1)"
pcfs_mount ""
check "the next daemon removes it" wait_until 200 none_exist $SUBS
check "... and what ran in it" wait_until 100 gone "$LPID"
check "... the pool's and its future's cgroups too ($KDIR)" none_exist "$KDIR" "$(dirname "$KDIR")"

# --- OOM verdicts survive a restart ([state] dir) ---------------------------------------------
pcfs_umount
if have memory; then
	pcfs_mount "[state]
dir = $WORKDIR/state"
	O=$(spawn "mem size=512M touch=100% mem_max=64M")
	mkdir "$M/pools/sp"
	echo "mem_max=300M pids_max=100" > "$M/pools/sp/ctl"
	OF=$(submit sp "mem size=512M touch=100% mem_max=64M")
	done_with "$O" >/dev/null; fwait sp "$OF" >/dev/null
	pcfs_umount
	pcfs_mount "[state]
dir = $WORKDIR/state"
	expect "after a restart: the task's OOM verdict" \
		"$(field "$O" oom_killed)|$(cat "$M/procs/$O/error")" "1|killed by the OOM killer (mem_max 64M)"
	check "... and the peak RSS of its tree ($(field "$O" rss_peak_kib) KiB)" test "$(field "$O" rss_peak_kib)" -gt 1000
	expect "... the future's" "$(ffield sp "$OF" oom_killed)|$(ffield sp "$OF" error)" \
		"1|killed by the OOM killer (mem_max 64M)"
	expect "... and the pool's limits, on a cgroup made again" "$(pfield sp limits)|$(pfield sp cgroup)" \
		"mem_max=300M pids_max=100|p1"
	pcfs_umount
fi

# --- [cgroup] default limits: every spawned process task without its own -------------------
if have memory && have pids && have cpu; then
	pcfs_mount "[cgroup]
mem_max = 64M
pids_max = 50
cpu_max = 150"
	D1=$(spawn "mem size=256M touch=100%")
	expect "[cgroup] mem_max = 64M bounds a line that gives none" \
		"$(done_with "$D1")|$(cat "$M/procs/$D1/error")" "-9|killed by the OOM killer (mem_max 64M)"
	D2=$(spawn "mem size=256M touch=100% mem_max=512M time=1s")
	expect "... a line's own mem_max= wins" "$(done_with "$D2")|$(field "$D2" oom_killed)" "0|0"
	D4=$(spawn "sleep time=30s")
	PIDS_DIR=$(sed -n 's/^pids: //p' "$M/procs/$D4/cgroup")
	expect "... pids_max = 50 and cpu_max = 150 bound it too (pids.max, sched)" \
		"$(cat "$PIDS_DIR/pids.max")|$(jq -c '[.cpu_max, .cpus]' "$M/procs/$D4/sched.json")" "50|[150,null]"
	echo kill > "$M/procs/$D4/ctl"
	D3=$(spawn "sleep method=fork time=1s")
	expect "... a line that cannot be bounded (method=fork) runs without them" \
		"$(done_with "$D3")|$(field "$D3" cgroup)" "0|"
	expect "/config shows them" "$(grep -E '^(mem_max|pids_max|cpu_max) = ' "$M/config" | tr '\n' ' ')" \
		"mem_max = 64M pids_max = 50 cpu_max = 150 "
	pcfs_umount
	# a default that could never hold stops the daemon at start, saying why
	OFFDIR=$(mktemp -d "$WORKDIR/off.XXXX")
	printf '[cgroup]\nwhere = off\nmem_max = 64M\n' > "$WORKDIR/off.ini"
	rc=0; out=$(timeout 60 "$PCFS" -f --config "$WORKDIR/off.ini" "$OFFDIR" 2>&1) || rc=$?
	check "[cgroup] mem_max with no cgroup to be had: the daemon does not start ($rc)" test "$rc" -ne 0
	check "... saying why" grep -q "default limits: no cgroup can be made here" <<<"$out"
fi

# --- [cgroup] where = off: limits refused, cpus= still pins -----------------------------------
pcfs_mount "[cgroup]
where = off"
expect_match "/stats says it is off" "$(sed -n 's/^cgroup: //p' "$M/stats")" '^off'
expect "mem_max= is refused, never silently unenforced" "$(write_err "$M/spawn" "sleep mem_max=64M")" "Invalid argument"
check "... saying why" grep -q "no cgroup can be made here" "$M/log"
P=$(spawn "sh cpus=0 grep Cpus_allowed_list /proc/self/status")
done_with "$P" >/dev/null
expect "cpus=0 pins by affinity" "$(tr -d '\t' < "$M/procs/$P/stdout")" "Cpus_allowed_list:0"
check "unmount: the daemon exits 0" pcfs_umount
finish
