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
spawn() { local id; exec 3<>"$M/spawn"; printf '%s\n' "$1" >&3; read -r id <&3; exec 3>&-; echo "$id"; }
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
mkdir "$M/pools/lp"
expect "a future's line with a limit: refused" "$(write_err "$M/pools/lp/submit" "sleep mem_max=64M")" "Invalid argument"
expect "a pool's ctl takes no mem_max= (yet)" "$(write_err "$M/pools/lp/ctl" "mem_max=64M")" "Invalid argument"
rmdir "$M/pools/lp"

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
DIRS=$(cg_dirs "$L")
SUBS=$(for d in $DIRS; do dirname "$d"; done)
OLD=$PCFS_PID
kill -9 "$OLD"; wait "$OLD" 2>/dev/null
fusermount3 -uz "$M" 2>/dev/null
check "a killed daemon leaves its subtree" test -d "$(echo "$SUBS" | head -1)"
pcfs_mount ""
check "the next daemon removes it" wait_until 200 none_exist $SUBS
check "... and what ran in it" wait_until 100 gone "$LPID"

# --- [cgroup] where = off: limits refused, cpus= still pins -----------------------------------
pcfs_umount
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
