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

run_example ipc-queue-pipe-socket.sh
expect_match "ipc: the queue carried the object" "$(out ipc-queue-pipe-socket.sh)" 'consumer says: Получено из очереди: \{"val": 123\}'
expect_match "ipc: the pipe, one way" "$(out ipc-queue-pipe-socket.sh)" 'parent received: Привет через Pipe'
expect_match "ipc: the pipe, the other way" "$(out ipc-queue-pipe-socket.sh)" "child's end received: reply"
expect_match "ipc: a socket client answered through files" "$(out ipc-queue-pipe-socket.sh)" 'client received: server got: hello over AF_UNIX'
expect_match "ipc: the farm computed every job" "$(out ipc-queue-pipe-socket.sh)" '12 squared is 144'
expect_match "ipc: ... exactly once" "$(out ipc-queue-pipe-socket.sh)" 'results: 12 of 12'
expect_match "ipc: ... and the jobs queue drained" "$(out ipc-queue-pipe-socket.sh)" 'puts: 12 gets: 12 closed: 1'

check "unmount" pcfs_umount
finish
