#!/usr/bin/env bash
# Memory and scheduling introspection (issue 5) on a real mount: maps, smaps,
# mem, memlog, cow, sched, /top, /mem, /sys/meminfo.
#
# Every figure checked comes from what the check is about: a region's own
# line in maps or smaps, the cow region's own pages.  Whole-process totals
# (RSS, VSZ, Private_Dirty) also count what the allocator, libc or a
# sanitizer maps beside it (ASan's shadow of a touched 256 MiB region is 32
# MiB more RSS, touched on some machines and not on others), so they are only
# ever checked as lower bounds.
#
# Tolerances, and why:
#   - a region's RSS is within 5% of its touched part: the kernel may map a
#     page or two around, never much more.
#   - `cow` region figures are within 5 percentage points of 100-write% and
#     write%: pagemap is exact, and the region is the workload's alone.
#
# No check assumes an idle machine (a sanitizer build, a CPU-heavy job beside
# it): tasks that are read while they run hold for minutes and are killed;
# what a task must have done is waited for (its output, its memlog), not
# slept for; bounds on waits only catch a hang.
. "$(dirname "$0")/lib.sh"

pcfs_mount "[tasks]
default_time = 30s
[memory]
sample_period = 50ms"

P=$M/procs
KIB=1024
MIB64=$((64 * KIB))   # 64 MiB in KiB

start() {   # start LINE -> the first new id
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3; read -r id <&3; exec 3>&-
	echo "$id"
}
field() { jq -r ".$2" "$P/$1/$3.json"; }          # field ID KEY FILE
# region ID KIB COLUMN: a column (2 Kbytes, 3 RSS, 4 Dirty) of the task's
# KIB-sized anonymous mapping in maps (pmap -x), or nothing
region() { awk -v k="$2" -v c="$3" '$2 == k && $6 == "[anon]" { v = $c } END { print v }' "$P/$1/maps"; }
# smaps_field ID ADDR KEY: KEY's KiB in the smaps entry of the mapping at ADDR (hex)
smaps_field() {
	awk -v a="$2" -v k="$3:" '/^[0-9a-f]+-/ { split($1, r, "-"); this = (r[1] == a) }
		this && $1 == k { print $2; exit }' "$P/$1/smaps"
}
within() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }   # within N LO HI
all_say() {   # all_say WORD FILE... : every file contains WORD
	local f
	for f in "${@:2}"; do grep -q "$1" "$f" || return 1; done
}
# the task whose status says parent: $1
child_of() {
	local d
	for d in "$P"/*; do
		[ "$(jq -r .parent "$d/status.json" 2>/dev/null)" = "$1" ] && { basename "$d"; return 0; }
	done
	return 1
}

# --- the namespace ---
check "root has top and sys/" test -f "$M/top" -a -d "$M/sys"
expect "/sys lists meminfo" "$(ls "$M/sys" | tr '\n' ' ')" "meminfo meminfo.json "
s=$(start 'sleep time=10m')   # read live until the end of this mount
expect "a task directory lists the memory files" \
	"$(ls "$P/$s" | grep -E '^(maps|smaps|mem|memlog|cow|sched)' | tr '\n' ' ')" \
	"cow cow.json maps mem mem.json memlog sched sched.json smaps "

# --- demand paging: VSZ at once, RSS as touched ---
z=$(start 'mem size=256M touch=0%')
f=$(start 'mem size=256M touch=100%')
q=$(start 'mem size=256M touch=25%')
check "the touches are done" wait_until 2000 all_say touched= "$P/$f/stdout" "$P/$q/stdout" "$P/$z/stdout"
vz=$(field "$z" vsz mem); vf=$(field "$f" vsz mem)
rz=$(region "$z" 262144 3); rf=$(region "$f" 262144 3); rq=$(region "$q" 262144 3)
check "VSZ includes the whole 256 MiB at once (touch=0%: $vz KiB)" test "$vz" -ge $((256 * KIB))
check "... the region is mapped whole, untouched (${rz:-none} KiB resident)" test -n "$rz"
check "... while the region's RSS stays small ($rz KiB)" test "${rz:-0}" -lt $((1 * KIB))
check "the region is as large whether touched or not" test -n "$rf" -a -n "$rq"
check "touch=100%: the region's RSS is 256 MiB +-5% ($rf KiB)" \
	within "${rf:-0}" $((256 * KIB * 95 / 100)) $((256 * KIB * 105 / 100))
check "touch=25%: the region's RSS is 64 MiB +-5% of 256 MiB ($rq KiB)" \
	within "${rq:-0}" $((MIB64 - 256 * KIB / 20)) $((MIB64 + 256 * KIB / 20))
check "VSZ counts the region whether touched or not ($vz, $vf KiB)" test "$vf" -ge $((256 * KIB))
check "uss = private_clean + private_dirty" test "$(field "$f" uss mem)" -eq \
	"$(( $(field "$f" private_clean mem) + $(field "$f" private_dirty mem) ))"
check "anon counts the touched region" test "$(field "$f" anon mem)" -ge $((256 * KIB * 95 / 100))
expect "mem.json: numbers are numbers" "$(jq -r '[.vsz,.rss,.pss,.uss,.heap,.stack]|map(type)|unique|join(",")' "$P/$f/mem.json")" "number"
expect_match "mem text has the keys in KiB" "$(cat "$P/$f/mem")" $'vsz: [0-9]+\nrss: [0-9]+\npss: [0-9]+\nuss: [0-9]+'
mp=$(cat "$P/$f/maps")
expect_match "maps is a pmap -x table" "$mp" '^Address +Kbytes +RSS +Dirty +Mode +Mapping'
expect_match "maps shows the 256 MiB region, resident and dirty" "$mp" $'\n[0-9a-f]{16} +262144 +26[0-9]{4} +26[0-9]{4} rw--- \\[anon\\]'
expect_match "maps names [stack]" "$mp" ' \[stack\]'
# (a sanitizer build's allocator takes no brk heap)
grep -q libasan <<<"$mp" || expect_match "maps names [heap]" "$mp" ' \[heap\]'
expect_match "maps names files by base name" "$mp" ' pcfs-worker'
expect_match "maps has a total line" "$mp" $'\ntotal kB +[0-9]+ +[0-9]+ +[0-9]+$'
pid=$(cat "$P/$f/pid")
# mem reads maps only as far as the [heap] line: it must be the same mapping
range=$(grep -m1 ' \[heap\]$' "/proc/$pid/maps" | cut -d' ' -f1)
heap=0; [ -n "$range" ] && heap=$(( (16#${range#*-} - 16#${range%-*}) / 1024 ))
expect "mem's heap is the [heap] mapping's size" "$(field "$f" heap mem)" "$heap"
expect "smaps is the kernel's, verbatim (same mappings)" \
	"$(grep -cE '^[0-9a-f]+-' "$P/$f/smaps")" "$(grep -cE '^[0-9a-f]+-' "/proc/$pid/smaps")"
for id in $z $f $q; do echo kill > "$P/$id/ctl"; done

# --- memlog: growth over time ---
# It holds until killed once its steps are done and sampled: with time= a
# loaded machine, slow to touch the pages, could cut the last steps short.
# A second between steps: a loaded machine touches 16 MiB over several
# samples, and the steps must still stand apart.
g=$(start 'mem size=64M step=16M rate=1s time=10m')
wait_until 2000 grep -q touched= "$P/$g/stdout"
n=$(wc -l < "$P/$g/memlog")
wait_until 2000 sh -c "[ \$(wc -l < '$P/$g/memlog') -ge $((n + 2)) ] && [ \$(wc -l < '$P/$g/memlog') -ge 20 ]"
echo kill > "$P/$g/ctl"
cat "$P/$g/wait" >/dev/null
log=$(cat "$P/$g/memlog")
n=$(wc -l <<<"$log")
check "memlog has samples while it ran ($n)" test "$n" -ge 20
check "memlog lines are t_ms vsz_kib rss_kib" bash -c '! grep -vE "^[0-9]+ [0-9]+ [0-9]+$" <<<"$1"' _ "$log"
# the first 16 MiB step is touched at once, before the first sample; the
# last sample may catch the region being unmapped at the end: take the peak
first=$(head -1 <<<"$log" | cut -d' ' -f3)
peak=$(cut -d' ' -f3 <<<"$log" | sort -n | tail -1)
check "RSS grew by the 48 MiB stepped in later ($first -> $peak KiB)" test $((peak - first)) -ge $((MIB64 * 3 / 4 * 95 / 100))
# a step is a run of rising samples (a slow machine touches it over several)
# that adds up to more than 4 MiB, with flat samples between the runs
steps=$(cut -d' ' -f3 <<<"$log" | awk 'NR > 1 && $1 > prev { run += $1 - prev }
	NR > 1 && $1 <= prev { if (run > 4096) n++; run = 0 } { prev = $1 }
	END { if (run > 4096) n++; print n + 0 }')
check "... in steps, not at once ($steps rises of > 4 MiB)" test "$steps" -ge 3
check "t_ms increases" bash -c 'cut -d" " -f1 <<<"$1" | sort -n -c' _ "$log"

# --- figures remain readable after exit ---
expect "after exit: mem is the last sample" "$(field "$g" live mem)" "false"
expect "after exit: mem's VSZ and RSS are the last memlog sample's" \
	"$(field "$g" vsz mem) $(field "$g" rss mem)" "$(tail -1 <<<"$log" | cut -d' ' -f2,3)"
expect_match "after exit: maps is the last snapshot" "$(cat "$P/$g/maps")" $' pcfs-worker\n.*\ntotal kB +[0-9]+'
check "after exit: smaps is readable" grep -q '^Rss:' "$P/$g/smaps"
expect "after exit: sched says ended" "$(field "$g" state sched)" "ended"
# the rollup's figures of an ended task come from the last smaps snapshot
# (taken at most once a second): they still show what it held.  The task
# holds until a sample a second after the touch (a snapshot since), then is
# killed: with time= a loaded machine could end it before any snapshot.
t0=$EPOCHREALTIME
h=$(start 'mem size=32M touch=100% time=10m')
wait_until 2000 grep -q touched= "$P/$h/stdout"
n=$(wc -l < "$P/$h/memlog")
wait_until 2000 sh -c "[ \$(wc -l < '$P/$h/memlog') -gt $n ]"
after=$(sed -n "$((n + 1))p" "$P/$h/memlog" | cut -d' ' -f1)
wait_until 2000 sh -c "[ \$(tail -1 '$P/$h/memlog' | cut -d' ' -f1) -ge $((${after:-0} + 1100)) ]"
echo kill > "$P/$h/ctl"
cat "$P/$h/wait" >/dev/null
for k in pss uss private_dirty; do
	check "after exit: mem's $k holds the touched 32 MiB ($(field "$h" $k mem) KiB)" \
		test "$(field "$h" $k mem)" -ge $((32 * KIB * 95 / 100))
done
check "after exit: uss = private_clean + private_dirty" test "$(field "$h" uss mem)" -eq \
	"$(( $(field "$h" private_clean mem) + $(field "$h" private_dirty mem) ))"
# its snapshot was taken while it ran: the age lies between the time since
# it ended and the time since this test spawned it (not a bound of the
# clock, which a loaded machine stretches); 50 ms for the ms-rounded end
epoch() { date -d "$1" +%s.%N; }
t1=$EPOCHREALTIME; age=$(field "$h" age mem); t2=$EPOCHREALTIME
end=$(epoch "$(field "$h" end status)")
check "after exit: mem's age is that of its oldest figure ($age s: after the end, before the spawn)" \
	awk -v a="$age" -v lo="$(awk -v t="${t1/,/.}" -v e="$end" 'BEGIN { print t - e - 0.05 }')" \
		-v hi="$(awk -v t="${t2/,/.}" -v s="${t0/,/.}" 'BEGIN { print t - s }')" \
		'BEGIN { exit !(a > 0 && a >= lo && a <= hi) }'

# --- a live task's mem is read afresh at each open, through its /proc files
# kept open from its first read to its end ---
kp=$(start 'mem size=256M step=16M rate=2s time=10m')   # 32 s of steps
wait_until 400 grep -qx running "$P/$kp/state"
kpid=$(cat "$P/$kp/pid")
# the files the daemon holds, each counted once: the sampler opens status
# for a moment every sample_period
kept() { ls -l "/proc/$PCFS_PID/fd" 2>/dev/null | grep -oE " /proc/$kpid/(smaps_rollup|status|maps)\$" | sort -u | wc -l; }
r1=$(field "$kp" rss mem)
expect "mem: the first read keeps the task's smaps_rollup, status and maps open" "$(kept)" 3
check "mem: a later read sees the RSS grow by a 16 MiB step ($r1 KiB, then more)" \
	wait_until 2000 sh -c "[ \$(jq .rss '$P/$kp/mem.json') -ge $((r1 + 16 * KIB * 95 / 100)) ]"
expect "mem: ... a live figure (age 0)" "$(field "$kp" age mem)" "0"
expect "mem: ... through the same three files" "$(kept)" 3
echo kill > "$P/$kp/ctl"; cat "$P/$kp/wait" >/dev/null
expect "mem: the task's end closes them" "$(kept)" 0

# --- stack growth ---
s1=$(start 'stack depth=10')
s2=$(start 'stack depth=6000')
check "the recursions are at depth" wait_until 1000 all_say 'stack depth=' "$P/$s1/stdout" "$P/$s2/stdout"
k1=$(field "$s1" stack mem); k2=$(field "$s2" stack mem)
check "mem stack grew by the ~6 MiB of frames ($k1 -> $k2 KiB)" test $((k2 - k1)) -ge $((5 * KIB))
sk=$(awk '/\[stack\]/ { print $2 }' "$P/$s2/maps")
check "maps shows the grown [stack] ($sk KiB)" test "$sk" -ge $((6 * KIB))
echo kill > "$P/$s1/ctl"; echo kill > "$P/$s2/ctl"

# --- copy-on-write ---
declare -A want=( [0]=100 [25]=75 [100]=0 )
for w in 0 25 100; do
	c=$(start "cow size=64M write=$w% time=10m")
	check "cow write=$w%: the child is announced" wait_until 2000 grep -q "cow-child written=" "$P/$c/stdout"
	ch=$(child_of "$c") || { bad "cow write=$w%: no task with parent: $c"; continue; }
	expect "cow write=$w%: the child's status has parent: $c" "$(grep '^parent:' "$P/$ch/status")" "parent: $c"
	expect "cow write=$w%: the child's pid is what the parent printed" \
		"$(sed -n 's/.*child=\([0-9]*\).*/\1/p' "$P/$c/stdout")" "$(cat "$P/$ch/pid")"
	expect "cow write=$w%: measured exactly" "$(field "$ch" method cow)" "pagemap"
	# (the kernel may merge a small neighbouring anonymous mapping into it)
	rk=$(field "$ch" region_kib cow)
	check "cow write=$w%: the region is the 64 MiB one ($rk KiB)" within "$rk" "$MIB64" $((MIB64 + 1024))
	pct=$(field "$ch" region_shared_pct cow | cut -d. -f1)
	check "cow write=$w%: the region is ${pct}% shared: ${want[$w]}% +-5" within "$pct" $((want[$w] - 5)) $((want[$w] + 5))
	cp=$(( $(field "$ch" region_copied cow) * $(getconf PAGESIZE) / 1024 ))
	check "cow write=$w%: copied $cp KiB of it is $w% of 64 MiB +-5%" \
		within "$cp" $((MIB64 * w / 100 - MIB64 / 20)) $((MIB64 * w / 100 + MIB64 / 20))
	check "cow write=$w%: the whole child copied at least that ($(field "$ch" copied_kib cow) KiB)" \
		test "$(field "$ch" copied_kib cow)" -ge "$cp"
	pd=$(smaps_field "$ch" "$(field "$ch" region cow)" Private_Dirty)
	check "cow write=$w%: the region's Private_Dirty in smaps is that much (${pd:-none} KiB)" \
		within "${pd:-0}" $((MIB64 * w / 100 - MIB64 / 20)) $((MIB64 * w / 100 + MIB64 / 20))
	expect "cow write=$w%: the parent was forked by the fork server" "$(field "$c" parent cow)" "fork-server"
	echo term > "$P/$c/ctl"
	expect "cow write=$w%: the child ends with its parent's group" "$(cat "$P/$ch/wait")" "-15"
done
expect_match "after exit the child's cow stays readable" "$(cat "$P/$ch/cow")" 'method: pagemap'
e=$(start 'sh sleep 600')
expect "cow of an exec'd process: n/a" "$(field "$e" method cow)" "n/a"
expect_match "... with the reason" "$(field "$e" reason cow)" "exec'd"
echo kill > "$P/$e/ctl"

# --- threads share one address space; processes do not ---
t1=$(start 'sleep 2 as=thread time=10m'); t2=$((t1 + 1))
cols() { awk '{ print $1, $2, $5, $6 }' "$P/$1/maps"; }   # without RSS and Dirty
expect "threads of one host: same pid" "$(cat "$P/$t1/pid")" "$(cat "$P/$t2/pid")"
expect "threads of one host: the same maps" "$(cols "$t1")" "$(cols "$t2")"
check "threads of one host: different tids in sched" test "$(field "$t1" tid sched)" != "$(field "$t2" tid sched)"
expect_match "a thread's cow is n/a" "$(field "$t1" reason cow)" 'shares its host'
p1=$(start 'sleep 2 method=spawn time=10m'); p2=$((p1 + 1))
check "processes: different pids" test "$(cat "$P/$p1/pid")" != "$(cat "$P/$p2/pid")"
check "processes: each its own maps (ASLR places them apart)" test "$(cols "$p1")" != "$(cols "$p2")"
for id in $t1 $t2 $p1 $p2; do echo kill > "$P/$id/ctl"; done

# --- scheduling: I/O-bound tasks block, CPU-bound ones do not ---
io=$(start 'io time=1s'); cpu=$(start 'cpu time=1s')
cat "$P/$io/wait" "$P/$cpu/wait" >/dev/null
vio=$(field "$io" voluntary_ctxt_switches sched); vcpu=$(field "$cpu" voluntary_ctxt_switches sched)
check "io's voluntary context switches ($vio) exceed cpu's ($vcpu)" test "$vio" -gt $((vcpu * 2 + 10))
check "cpu spent more time in user mode than io ($(field "$cpu" utime sched) s vs $(field "$io" utime sched) s)" \
	awk -v c="$(field "$cpu" utime sched)" -v i="$(field "$io" utime sched)" 'BEGIN { exit !(c > i) }'
expect "sched.json: numbers are numbers" \
	"$(jq -r '[.voluntary_ctxt_switches,.nonvoluntary_ctxt_switches,.utime,.stime,.threads,.last_cpu]|map(type)|unique|join(",")' "$P/$io/sched.json")" "number"
expect_match "sched of a live task names the kernel state" "$(field "$s" state sched)" '^(sleeping|running)$'

# --- /top and /sys/meminfo ---
# (a live task's line has its figures once it was sampled)
live_line() { grep -qE "^ +$s process +[0-9]+ running +[0-9.]+ +[0-9]+ +[0-9]+ -" "$M/top"; }
wait_until 400 live_line
top=$(cat "$M/top")
expect_match "top has a header" "$top" '^ +ID KIND +PID STATE +CPU% +RSS +VSZ NAME'
expect_match "top lists a live task with its figures" "$top" $'\n +'"$s"' process +[0-9]+ running +[0-9.]+ +[0-9]+ +[0-9]+ -'
check "top lists live tasks only" bash -c '! grep -qE "^ +$1 " <<<"$2"' _ "$g" "$top"
mt=$(jq -r .total "$M/sys/meminfo.json")
expect "meminfo total is /proc/meminfo's" "$mt" "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
check "meminfo available <= total" test "$(jq -r .available "$M/sys/meminfo.json")" -le "$mt"
expect_match "meminfo text" "$(cat "$M/sys/meminfo")" $'^total: [0-9]+\nfree: [0-9]+\navailable: [0-9]+'

# --- /mem: every live task's figures in one read ---
mm=$(start 'mem size=64M touch=100% time=10m')
wait_until 2000 grep -q touched= "$P/$mm/stdout"
m1=$(start 'sleep 2 as=thread time=10m'); m2=$((m1 + 1))
gone=$(start noop); cat "$P/$gone/wait" >/dev/null
wait_until 400 grep -qE "^ +$m2 +[1-9]" "$M/mem"   # the thread has its host
mem=$(cat "$M/mem")
row_of() { awk -v id="$1" '$1 == id' <<<"$mem"; }   # ID PID VSZ RSS PSS USS SWAP AGE NAME
expect_match "mem has a header" "$mem" '^ +ID +PID +VSZ +RSS +PSS +USS +SWAP +AGE NAME'
read -r _ mpid mvsz mrss mpss muss _ mage _ <<<"$(row_of "$mm")"
expect "mem: a task's row has its pid" "$mpid" "$(cat "$P/$mm/pid")"
check "mem: its RSS ($mrss) and USS ($muss) hold the 64 MiB it touched" \
	test "$mrss" -ge $((MIB64 * 95 / 100)) -a "$muss" -ge $((MIB64 * 95 / 100))
check "mem: USS <= PSS <= RSS <= VSZ ($muss $mpss $mrss $mvsz)" \
	test "$muss" -le "$mpss" -a "$mpss" -le "$mrss" -a "$mrss" -le "$mvsz"
expect "mem: read now (age 0)" "$mage" "0.000"
expect "mem: VSZ is procs/ID/mem's" "$mvsz" "$(field "$mm" vsz mem)"
expect "mem: threads of one host show its pid" "$(row_of "$m1" | awk '{ print $2 }') $(row_of "$m2" | awk '{ print $2 }')" \
	"$(cat "$P/$m1/pid") $(cat "$P/$m1/pid")"
check "mem: live tasks only (not $gone, which ended)" test -z "$(row_of "$gone")"
check "mem: the long-lived ones all there" test -n "$(row_of "$s")" -a -n "$(row_of "$m1")"
mj=$(cat "$M/mem.json")
expect "mem.json: one JSON array, numbers are numbers" \
	"$(jq -r --argjson id "$mm" '.[] | select(.id == $id) | [.pid, .vsz, .rss, .pss, .uss, .swap, .age] | map(type) | unique | join(",")' <<<"$mj")" "number"
expect "mem.json: the same task's pid and VSZ" \
	"$(jq -r --argjson id "$mm" '.[] | select(.id == $id) | "\(.pid) \(.vsz) \(.kind)"' <<<"$mj")" "$mpid $mvsz process"
expect "mem.json: a thread task says so" "$(jq -r --argjson id "$m1" '.[] | select(.id == $id) | .kind' <<<"$mj")" "thread"
for id in $mm $m1 $m2; do echo kill > "$P/$id/ctl"; done

echo kill > "$P/$s/ctl"
check "unmount" pcfs_umount

# --- [memory] memlog_max, on a mount of its own ---
pcfs_mount "[memory]
sample_period = 20ms
memlog_max = 10"
P=$M/procs
# once ten samples are kept, the first of them must go as more come: the
# task holds until it has, whatever the pace of a loaded machine's sampler
id=$(start 'sleep time=10m')
wait_until 2000 sh -c "[ \$(wc -l < '$P/$id/memlog') -ge 10 ]"
first0=$(head -1 "$P/$id/memlog" | cut -d' ' -f1)
wait_until 2000 sh -c "[ \$(head -1 '$P/$id/memlog' | cut -d' ' -f1) -gt ${first0:-0} ]"
echo kill > "$P/$id/ctl"
cat "$P/$id/wait" >/dev/null
log=$(cat "$P/$id/memlog")
expect "memlog keeps memlog_max samples" "$(echo "$log" | wc -l)" "10"
first=$(echo "$log" | head -1 | cut -d' ' -f1)
check "... the newest: the oldest were dropped (first t_ms $first, once ${first0:-none})" test "$first" -gt "${first0:-0}"
check "... in order" bash -c 'cut -d" " -f1 <<<"$1" | sort -n -c' _ "$log"
check "unmount: the daemon exits 0" pcfs_umount

# --- a task gone before any sample, on a mount that samples once an hour ---
# (on a mount that samples often, a loaded machine may keep even a noop
# alive long enough to be sampled)
pcfs_mount "[memory]
sample_period = 1h"
P=$M/procs
n0=$(start noop)
cat "$P/$n0/wait" >/dev/null
err=$(cat "$P/$n0/mem" 2>&1)
expect_match "a task gone before any sample: a clear error, not garbage" "$err" 'No such process'
check "... with its reason in /log" grep -q "task $n0: no memory figures" "$M/log"
expect "... and memlog is simply empty" "$(wc -c < "$P/$n0/memlog")" "0"
check "unmount: the daemon exits 0" pcfs_umount
finish
