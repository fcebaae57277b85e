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

run_example futures-map-vs-as-completed.sh
expect_match "map: submission order" "$(out futures-map-vs-as-completed.sh)" 'executor.map: \[9, 1, 16, 4\]'
expect "as_completed: finishing order" "$(out futures-map-vs-as-completed.sh | sed -n 's/^as_completed result: \([0-9]*\) .*/\1/p' | tr '\n' ' ')" "1 4 9 16 "
t=$(out futures-map-vs-as-completed.sh | sed -n 's/^executor.map: .*(\([0-9.]*\) s)$/\1/p')
check "map took about the longest task ($t s), less than the sum (1.0 s)" awk "BEGIN { exit !($t < 1.0) }"

run_example cpu-vs-io-bound.sh
wall() { out cpu-vs-io-bound.sh | grep -F "$1" | awk '{ print $NF }'; }
cp=$(wall "processes" | head -1); cg=$(wall "threads, gil=1" | head -1); ig=$(wall "io time=500ms, threads, gil=1")
check "CPU-bound: threads with a GIL are slower than processes ($cg s vs $cp s)" awk "BEGIN { exit !($cg > 1.5 * $cp) }"
check "I/O-bound: threads with a GIL still overlap ($ig s for 4 x 0.5 s on 2 workers)" awk "BEGIN { exit !($ig < 1.6) }"

check "unmount" pcfs_umount
finish
