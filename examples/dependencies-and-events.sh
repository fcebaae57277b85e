#!/usr/bin/env bash
# dependencies-and-events.sh MOUNTPOINT - a small build pipeline as files:
# fetch, two compiles side by side once it is done, a link that waits for
# both, a test that waits for the link (after=); then the same pipeline with
# a compile that fails, which stops the chain below it (skipped), and a
# cleanup that runs only because something failed (after_fail=).  /events
# tells each start and end as it happens, as `tail -f` would.
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: dependencies-and-events.sh MOUNTPOINT}}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pcfs-pipeline.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# each step notes when it ran: a line in steps.log
step() { echo "sh echo $1 >> steps.log; $2"; }

# pipeline FAIL: spawn the five steps through one descriptor (the ids come
# back on it) and print them as "NAME=ID"
pipeline() {
	local fetch a b link test
	exec 3<>"$M/spawn"
	step fetch 'sleep 0.2' >&3;                        read -r fetch <&3
	step compile-a 'sleep 0.2' | sed "s/^sh /sh after=$fetch /" >&3; read -r a <&3
	step compile-b "sleep 0.2; exit $1" | sed "s/^sh /sh after=$fetch /" >&3; read -r b <&3
	step link true | sed "s/^sh /sh after=$a,$b /" >&3;      read -r link <&3
	step test true | sed "s/^sh /sh after=$link /" >&3;      read -r test <&3
	echo "sh after_fail=$a,$b echo cleanup >> steps.log" >&3; read -r clean <&3
	exec 3>&-
	echo "fetch=$fetch compile-a=$a compile-b=$b link=$link test=$test cleanup=$clean"
}

show() {   # NAME=ID...: each step's state, exit code (or why it never ran)
	for kv in "$@"; do
		local id=${kv#*=}
		cat "$M/procs/$id/wait" >/dev/null
		printf '  %-10s task %-4s %-8s %s\n' "${kv%=*}" "$id" "$(cat "$M/procs/$id/state")" \
			"$(cat "$M/procs/$id/exitcode" "$M/procs/$id/error" 2>/dev/null | head -1)"
	done
}

echo "== a pipeline that succeeds"
ids=$(pipeline 0)
# right after the writes: the test waits (for the link, which waits for the
# compiles), with no process yet
t=$(echo "$ids" | sed 's/.*test=\([0-9]*\).*/\1/')
echo "just written: test is $(cat "$M/procs/$t/state") (pid: '$(cat "$M/procs/$t/pid")')"
show $ids
echo "steps ran in this order: $(tr '\n' ' ' < steps.log)"

: > steps.log
echo
echo "== the same with compile-b failing"
ids=$(pipeline 1)
show $ids
echo "steps ran in this order: $(tr '\n' ' ' < steps.log)"

echo
echo "what /events told of it (a monitor would follow it with: cat $M/events):"
first=$(echo "$ids" | sed 's/^fetch=\([0-9]*\).*/\1/')
# every event kept so far, then EOF where it would wait for the next
timeout 5 cat "$M/events" | awk -v f="$first" '$3 == "task" && $2 >= f { print "  " $0 }' || true
