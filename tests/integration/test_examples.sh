#!/usr/bin/env bash
# Every example in examples/ runs against a real mount and prints what it
# promises (its key lines are checked here).
. "$(dirname "$0")/lib.sh"
pcfs_mount
EX=$PCFS_SOURCE_DIR/examples

run_example() {   # run_example NAME -> its output in $WORKDIR/NAME.out
	if timeout 120 bash "$EX/$1" "$M" >"$WORKDIR/$1.out" 2>&1; then ok "$1 runs"; else
		bad "$1 runs"; sed 's/^/     | /' "$WORKDIR/$1.out" | tail -20; fi
}
out() { cat "$WORKDIR/$1.out"; }

run_example quickstart.sh
expect_match "quickstart: 4 ids" "$(out quickstart.sh)" 'ids: 1 2 3 4'
expect_match "quickstart: wait gives 0" "$(out quickstart.sh)" 'task 4 wait -> 0'
expect_match "quickstart: cpu result line" "$(out quickstart.sh)" 'cpu ops=[0-9]+'
expect_match "quickstart: exec output" "$(out quickstart.sh)" 'stdout of task 5: Linux'

run_example process-lifecycle.sh
expect_match "lifecycle: alive while running" "$(out process-lifecycle.sh)" 'is_alive\(\): 1'
expect_match "lifecycle: exitcode 0 after join" "$(out process-lifecycle.sh)" 'exitcode = 0, is_alive\(\): 0'
expect_match "lifecycle: terminate gives -15" "$(out process-lifecycle.sh)" 'Second process exitcode: -15 \(state: killed\)'
expect_match "lifecycle: join(timeout) leaves it alive" "$(out process-lifecycle.sh)" 'is_alive\(\) = 1'
expect_match "lifecycle: worker output" "$(out process-lifecycle.sh)" 'worker: Worker finished'
# "as each ends" from the tasks' own end times: their sleeps are 0.3 s apart,
# an order a loaded machine may change
joined=$(out process-lifecycle.sh | sed -n 's/^  worker \([0-9]*\) ended: exitcode \([0-9]*\)$/\1 \2/p')
expect "lifecycle: joining many tells each of the three once" "$(echo "$joined" | awk '{ print $2 }' | sort | tr '\n' ' ')" "1 2 3 "
ends=$(for id in $(echo "$joined" | awk '{ print $1 }'); do sed -n 's/^end: //p' "$M/procs/$id/status"; done)
expect "lifecycle: ... in the order they ended ($(echo $ends))" "$ends" "$(echo "$ends" | sort)"

run_example futures-map-vs-as-completed.sh
expect_match "map: submission order" "$(out futures-map-vs-as-completed.sh)" 'executor.map: \[9, 1, 16, 4\]'
expect "as_completed: each result once" "$(out futures-map-vs-as-completed.sh | sed -n 's/^as_completed result: \([0-9]*\) .*/\1/p' | sort -n | tr '\n' ' ')" "1 4 9 16 "
# (fut_times and span_sum: lib.sh)
ac_ids=$(out futures-map-vs-as-completed.sh | sed -n 's/^as_completed result: .*(future \([0-9]*\))$/\1/p')
map_ids=$(grep -l '^cmd: sh sleep' "$M"/pools/squares/futures/*/status | xargs -n1 dirname | xargs -n1 basename | sort -n | head -4)
read -r span sum < <(fut_times squares $map_ids | span_sum)
check "map ran them side by side: first start to last end ($span s) less than the sum ($sum s)" \
	awk "BEGIN { exit !($span < $sum) }"
ends=$(fut_times squares $ac_ids | awk '{ printf "%s ", $2 }')
check "as_completed: in the order they finished (ends at $ends s)" \
	awk -v e="$ends" 'BEGIN { n = split(e, a, " "); if (n != 4) exit 1; for (i = 2; i <= n; i++) if (a[i] + 0 < a[i - 1] + 0) exit 1 }'

run_example cpu-vs-io-bound.sh
# col FIELD LABEL: a column of the table (2 wall, 3 cpu, 4 parallelism)
col() { out cpu-vs-io-bound.sh | grep -F "$2" | head -1 | awk -v f="$1" '{ print $(NF - 4 + f) }'; }
pg=$(col 4 "threads, gil=1"); cg=$(col 3 "threads, gil=1"); ig=$(col 2 "io time=500ms, threads, gil=1")
# Load-independent: under a GIL only one thread computes at a time.
check "CPU-bound threads under a GIL never run in parallel (parallelism $pg)" \
	awk "BEGIN { exit !($pg <= 1.15 && $cg > 0) }"
# overlap from the futures' own times (not the wall clock, $ig s): their runs
# span less time than they add up to
read -r span sum < <(fut_times io-gil 1 2 3 4 | span_sum)
check "I/O-bound threads with a GIL still overlap (4 x 0.5 s on 2 workers: over $span s, $sum s of runs)" \
	awk "BEGIN { exit !($span < $sum) }"

run_example limits-and-oom.sh
lo() { out limits-and-oom.sh; }
if [[ $(lo) == *"limits are refused here"* ]]; then
	printf 'skip limits-and-oom: no cgroup on this host\n'
else
	expect_match "limits: touch=100% under mem_max is OOM-killed, and says so" "$(lo)" 'touch=100%: wait -> -9, state killed, oom_killed 1'
	expect_match "... the error" "$(lo)" 'error: killed by the OOM killer \(mem_max 128M\)'
	expect_match "... touch=10% lives" "$(lo)" 'touch=10% \(about 51 MiB resident\): wait -> 0, oom_killed 0'
	expect_match "limits: cpus=0 pins" "$(lo)" 'cpus=0: Cpus_allowed_list: 0'
	expect_match "limits: kill reaches the double-forked daemon" "$(lo)" 'left in its cgroup: 0'
fi

run_example memory-vsz-rss-cow.sh
mo() { out memory-vsz-rss-cow.sh; }
# (VSZ is not checked absolutely: a sanitizer build maps terabytes of shadow)
# (nor is the process's RSS: the region's own is, from its line in maps;
# the kernel may merge a small neighbouring mapping into the cow region)
expect_match "memory: untouched, VSZ without RSS" "$(mo)" 'mem size=256M touch=0%: +VSZ +[0-9]+ MiB +RSS +[0-9]+ MiB +the region: RSS +0 MiB'
expect_match "memory: touched, RSS follows" "$(mo)" 'mem size=256M touch=100%: +VSZ +[0-9]+ MiB +RSS +[0-9]+ MiB +the region: RSS +256 MiB'
expect_match "memory: the region in maps, untouched" "$(mo)" 'touch=0%: +[0-9a-f]+ +262144 +0 +0 rw--- \[anon\]'
expect_match "memory: the region in maps, touched" "$(mo)" 'touch=100%: +[0-9a-f]+ +262144 +262144 +262144 rw--- \[anon\]'
# RSS rises in several steps by ~96 MiB (a loaded machine may sample a step
# half done, or the region being unmapped at the very end)
read -r ups growth < <(mo | awk '/^  t= / { rss = $(NF - 1); if (!n) first = rss
	if (rss > peak) peak = rss; if (n && rss > prev) up++; prev = rss; n++ }
	END { print up + 0, peak - first }')
check "memory: memlog shows RSS rising in steps ($ups rises, +$growth MiB)" \
	test "$ups" -ge 3 -a "$growth" -ge 90
expect_match "memory: the heap grows" "$(mo)" 'a 400000-entry array: +\[heap\] +[0-9]{4,} KiB'
expect_match "memory: the stack grows" "$(mo)" 'stack depth=4000 .*\[stack\] +([4-9][0-9]{3}|[0-9]{5,}) KiB'
expect_match "memory: cow write=0% all shared" "$(mo)" 'write=  0%: child task [0-9]+: its 13(10[7-9][0-9]|1[1-9][0-9]{2}) KiB region: .*\((99|100)\.[0-9]% shared, method pagemap\)'
expect_match "memory: cow write=25% a quarter copied" "$(mo)" 'write= 25%: child task [0-9]+: its 13(10[7-9][0-9]|1[1-9][0-9]{2}) KiB region: .*\(7[0-9]\.[0-9]% shared, method pagemap\)'
expect_match "memory: cow write=100% all copied" "$(mo)" 'write=100%: child task [0-9]+: its 13(10[7-9][0-9]|1[1-9][0-9]{2}) KiB region: .*\([0-4]\.[0-9]% shared, method pagemap\)'
expect_match "memory: exec'd is n/a" "$(mo)" "An exec'd program: cow method n/a"

run_example processes-vs-threads.sh
pt() { out processes-vs-threads.sh; }
expect_match "threads share one address space" "$(pt)" 'threads: the same maps'
expect_match "processes each have their own" "$(pt)" 'processes: different maps'
vio=$(pt | awk '$1 == "io" { print $3 }'); vcpu=$(pt | awk '$1 == "cpu" { print $3 }')
check "io switches voluntarily more than cpu (${vio:-?} vs ${vcpu:-?})" test "${vio:-0}" -gt "${vcpu:-0}"
expect_match "creation cost is measured for all three" "$(pt)" \
	'threads \(pthread_create\): +50 tasks in .*'$'\n''processes \(fork server: fork\): +50 tasks.*'$'\n''processes \(posix_spawn \+ exec\): +50 tasks'

run_example start-methods.sh
sm() { out start-methods.sh; }
for m in fork clone; do
	expect_match "start-methods: method=$m: a forked pcfs-worker, the daemon its parent, pages shared COW" \
		"$(sm)" "sleep time=10m method=$m +$m +process +[0-9]+ +[0-9]+ +[0-9]+ pcfs +pcfs-worker +pagemap"
done
for m in spawn vfork; do
	expect_match "start-methods: method=$m: a fresh pcfs-worker program, the daemon its parent" \
		"$(sm)" "sleep time=10m method=$m +$m +process +[0-9]+ +[0-9]+ +[0-9]+ pcfs +pcfs-worker +n/a"
done
# columns from the end: ... METHOD KIND PID TID PPID PARENT PROGRAM COW
read -r npid ntid nthr < <(sm | awk 'NF >= 8 && $(NF - 7) == "pthread" && $(NF - 6) == "thread" {
	if (!($(NF - 5) in p)) { p[$(NF - 5)]; np++ }
	if (!($(NF - 4) in t)) { t[$(NF - 4)]; nt++ }
	n++ } END { print np + 0, nt + 0, n + 0 }')
expect "start-methods: as=thread: two threads, one pid, two tids" "$npid $ntid $nthr" "1 2 2"
for m in spawn fork vfork clone; do
	expect_match "start-methods: exec method=$m runs the program, child of the daemon" \
		"$(sm)" "exec method=$m sleep 600 +$m +process +[0-9]+ +[0-9]+ +[0-9]+ pcfs +sleep "
done

run_example user-vs-kernel-space.sh
uk() { out user-vs-kernel-space.sh | awk -v t="$1" 'index($0, t) == 1 { print $(NF - 4), $(NF - 3) }'; }
read -r cu cs < <(uk 'cpu ops='); read -r iu is < <(uk 'io ops='); read -r du ds < <(uk 'exec dd')
share() { awk -v u="$1" -v s="$2" 'BEGIN { print (u + s > 0) ? s / (u + s) : 0 }'; }
check "user vs kernel: the cpu task's utime dominates (utime $cu s, stime $cs s)" \
	awk "BEGIN { exit !($cu > 2 * $cs) }"
check "user vs kernel: the io task's stime is a larger share ($is of $iu + $is s vs cpu's $cs of $cu + $cs s)" \
	awk "BEGIN { exit !($(share "$iu" "$is") > $(share "$cu" "$cs")) }"
check "user vs kernel: dd from /dev/urandom spends most in the kernel (utime $du s, stime $ds s)" \
	awk "BEGIN { exit !($ds > $du) }"

PLOTS=$WORKDIR/plots
if command -v gnuplot >/dev/null; then
	if timeout 120 bash "$EX/plot-memory.sh" "$M" "$PLOTS" >"$WORKDIR/plot-memory.sh.out" 2>&1; then
		ok "plot-memory.sh runs"; else bad "plot-memory.sh runs"; tail -20 "$WORKDIR/plot-memory.sh.out"; fi
	for png in memory-growth.png cow-shared-copied.png; do
		f=$PLOTS/$png
		expect "plot-memory: $png is a PNG" "$(head -c 8 "$f" 2>/dev/null | od -An -tx1 | tr -d ' \n')" "89504e470d0a1a0a"
		check "plot-memory: $png is a 900x540 image of some substance ($(stat -c %s "$f" 2>/dev/null) bytes)" \
			bash -c "file '$f' | grep -q '900 x 540' && [ \$(stat -c %s '$f') -gt 10000 ]"
	done
	# the data behind the pictures: RSS climbs past 150 MiB; cow splits as written
	check "plot-memory: memlog RSS climbs from under 64 to over 150 MiB" \
		awk 'NR == 1 { first = $3 } $3 > max { max = $3 } END { exit !(first < 64 && max > 150) }' "$PLOTS/memory-growth.dat"
	expect "plot-memory: cow writes 0 25 50 75 100%" "$(awk '{ printf "%s ", $1 }' "$PLOTS/cow.dat")" "0 25 50 75 100 "
	check "plot-memory: copied MiB follow write% (within 4 of 64 MiB)" \
		awk '{ d = $3 - 64 * $1 / 100; if (d < -4 || d > 4) bad = 1 } END { exit bad }' "$PLOTS/cow.dat"
else
	echo "SKIP plot-memory.sh: no gnuplot (apt-get install gnuplot-nox)"
fi

run_example ipc-queue-pipe-socket.sh
expect_match "ipc: the queue carried the object" "$(out ipc-queue-pipe-socket.sh)" 'consumer says: Получено из очереди: \{"val": 123\}'
expect_match "ipc: the pipe, one way" "$(out ipc-queue-pipe-socket.sh)" 'parent received: Привет через Pipe'
expect_match "ipc: the pipe, the other way" "$(out ipc-queue-pipe-socket.sh)" "child's end received: reply"
expect_match "ipc: a socket client answered through files" "$(out ipc-queue-pipe-socket.sh)" 'client received: server got: hello over AF_UNIX'
expect_match "ipc: the farm computed every job" "$(out ipc-queue-pipe-socket.sh)" '12 squared is 144'
expect_match "ipc: ... exactly once" "$(out ipc-queue-pipe-socket.sh)" 'results: 12 of 12'
expect_match "ipc: ... and the jobs queue drained" "$(out ipc-queue-pipe-socket.sh)" 'puts: 12 gets: 12 closed: 1'

run_example run-where-you-are.sh
rw() { out run-where-you-are.sh; }
expect_match "where: a relative exec runs the project's script in its directory" "$(rw)" 'building demo in /[^ ]*/pcfs-proj\.'
expect_match "where: the writer's environment" "$(rw)" 'PROJECT is demo'
expect_match "where: a program on the writer's PATH" "$(rw)" 'exec square 12'$'\n''    144'
expect_match "where: env= edits it" "$(rw)" 'PROJECT=other HOME=unset'
expect_match "where: a relative cwd=" "$(rw)" 'cwd=data ls'$'\n''    numbers'
expect_match "where: stdin= and stdout= files" "$(rw)" 'data/sum \(stdout=./data/sum\): 15'
expect_match "where: a pool maps the project's command, in order" "$(rw)" 'squares: 1 4 9 16 25 '

run_example dependencies-and-events.sh
de() { out dependencies-and-events.sh; }
expect_match "pipeline: the test waits right after the write, with no process" "$(de)" "just written: test is waiting \(pid: ''\)"
expect_match "pipeline: all five succeed, the cleanup is skipped" "$(de)" 'test +task [0-9]+ +exited +0'$'\n''  cleanup +task [0-9]+ +skipped +after_fail=: every one of them succeeded'
# the order from the steps' own log: fetch first, the compiles either way, then link, test
expect_match "pipeline: fetch, the two compiles, link, test" "$(de)" 'order: fetch compile-[ab] compile-[ab] link test '
expect_match "failing: link and test skipped, naming why" "$(de)" 'link +task [0-9]+ +skipped +after=[0-9]+: task [0-9]+ exited with code 1'$'\n''  test +task [0-9]+ +skipped +after=[0-9]+: task [0-9]+ was skipped'
expect_match "failing: the cleanup runs, link and test never" "$(de)" 'order: fetch compile-[ab] compile-[ab] cleanup '$'\n'
expect_match "failing: /events tells the link skipped, with no code" "$(de)" ' [0-9]+ task ended skipped code=- '

run_example locks-and-shared-memory.sh
ls_() { out locks-and-shared-memory.sh; }
expect_match "locks: under the lock nothing is lost" "$(ls_)" 'counter +1000 +[0-9]+'$'\n''  lost +0 '
check "locks: without it some are" test "$(ls_ | awk '$1 == "lost" { print $3 }')" -gt 0
expect_match "locks: a semaphore of 2 never has 3 holders" "$(ls_)" 'most holders at once \(from their own timestamps\): [12]'$'\n'
expect_match "locks: a barrier's arrival indexes" "$(ls_)" 'arrival indexes at the barrier: 0 1 2 '
expect_match "shm: the reader task read the writer's bytes" "$(ls_)" 'task [0-9]+ read: written by task [0-9]+'
expect_match "shm: status names the two mappers" "$(ls_)" 'who maps it \(PID:TASK:RSS_KIB:PSS_KIB\): [0-9]+:[0-9]+:[0-9]+:[0-9]+ [0-9]+:[0-9]+:'
expect_match "shm: atomic adds sum exactly" "$(ls_)" 'hits: 400 \(of 400\)'

check "unmount" pcfs_umount
finish
