# lib.sh - shared by the integration tests: mount pcfs in a temporary
# directory, drive it with real shell commands, clean up whatever happens.
#
#   . "$(dirname "$0")/lib.sh"
#   pcfs_mount [CONFIG_TEXT [ARG...]]  # sets $M (the mountpoint), $PCFS_PID
#   check "what" CMD ARGS...      # CMD must succeed
#   expect "what" ACTUAL EXPECTED # strings must be equal
#   finish                        # prints "N passed, N failed", exits non-zero on failure
#
# Environment (set by meson): PCFS (the daemon), PCFS_WORKER, PCFS_SOURCE_DIR.

set -u
PASS=0
FAIL=0
M=
PCFS_PID=
WORKDIR=$(mktemp -d /tmp/pcfs-test.XXXXXX)
: "${PCFS:?PCFS must name the pcfs binary}"
: "${PCFS_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "SKIP: needs /dev/fuse and fusermount3"
	exit 77
fi

ok()   { PASS=$((PASS + 1)); printf 'ok   %s\n' "$1"; }
bad()  { FAIL=$((FAIL + 1)); printf 'FAIL %s\n' "$1"; }

check() {
	local what=$1; shift
	if "$@" >"$WORKDIR/check.out" 2>&1; then ok "$what"; else
		bad "$what"; sed 's/^/     | /' "$WORKDIR/check.out" | head -20; fi
}

check_fails() {
	local what=$1; shift
	if "$@" >"$WORKDIR/check.out" 2>&1; then bad "$what (unexpectedly succeeded)"; else ok "$what"; fi
}

expect() {
	if [ "$2" = "$3" ]; then ok "$1"; else
		bad "$1"; printf '     | got:      %q\n     | expected: %q\n' "$2" "$3"; fi
}

expect_match() {
	if [[ $2 =~ $3 ]]; then ok "$1"; else
		bad "$1"; printf '     | got:      %q\n     | pattern:  %s\n' "$2" "$3"; fi
}

# The errno text a write produced, e.g. "Invalid argument" (empty if it worked).
write_err() {
	local file=$1; shift
	local out
	out=$( { printf '%s\n' "$@" > "$file"; } 2>&1 ) && return 0
	printf '%s' "${out##*: }"
}

# Wait until a command succeeds (bounded); returns its status.
wait_until() {
	local tries=$1; shift
	for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.05; done
	return 1
}

# What a tail -f file (/events, a pool's events) holds now, without waiting
# for more: reads until the file would block (O_NONBLOCK gives EAGAIN), so
# no timeout guesses how long a loaded machine takes to read it.
# spawn LINE: start it through $M/spawn, print its id (the writer's context:
# this shell's directory and environment)
spawn() { local id; exec 3<>"$M/spawn"; printf '%s\n' "$1" >&3; read -r id <&3; exec 3>&-; echo "$id"; }
kept_now() { dd if="$1" iflag=nonblock bs=65536 status=none 2>/dev/null || true; }

is_mounted() { grep -q " $1 fuse.pcfs " /proc/mounts; }

# The default [state] dir of a mountpoint, as pcfs picks it: its base, and
# state_key PATH, the path as `systemd-escape --path` writes it but with +NN
# for \xNN (in bash: systemd-escape need not be installed).
if [ "$(id -u)" = 0 ]; then STATE_BASE=/var/lib/pcfs
elif [[ ${XDG_STATE_HOME:-} == /* ]]; then STATE_BASE=$XDG_STATE_HOME/pcfs
else STATE_BASE=$HOME/.local/state/pcfs; fi
state_key() {
	local p=${1#/} out= c i
	for ((i = 0; i < ${#p}; i++)); do
		c=${p:i:1}
		if [ "$c" = / ]; then out+=-
		elif [[ $c == [A-Za-z0-9:_] || ($c == . && $i -gt 0) ]]; then out+=$c
		else out+=$(printf '+%02x' "'$c"); fi
	done
	printf '%s' "$out"
}

# Mount pcfs on a fresh directory; optional ini text becomes --config, and
# further arguments go to pcfs (e.g. -o allow_other).
pcfs_mount() {
	# the last daemon's stderr is kept for finish()'s sanitizer check
	[ -f "$WORKDIR/pcfs.stderr" ] && cat "$WORKDIR/pcfs.stderr" >> "$WORKDIR/pcfs.stderr.earlier"
	M=$(mktemp -d "$WORKDIR/mnt.XXXX")
	local cfg=$WORKDIR/pcfs.ini
	printf '[fuse]\nauto_unmount = true\n%s\n' "${1:-}" > "$cfg"
	"$PCFS" -f --config "$cfg" "${@:2}" "$M" 2>"$WORKDIR/pcfs.stderr" &
	PCFS_PID=$!
	for _ in $(seq 100); do
		is_mounted "$M" && return 0
		kill -0 "$PCFS_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "pcfs did not mount:"; cat "$WORKDIR/pcfs.stderr"
	exit 1
}

# pcfs_start_on MNT CFGFILE [ARG...]: a daemon in the background on a given
# (reused) mountpoint, ready once its stderr says it mounted there anew and
# procs lists; its pid in $PCFS_PID.  For restarts on the same mountpoint.
pcfs_start_on() {
	local mnt=$1 cfg=$2 before
	before=$(grep -c "mounted on $mnt " "$WORKDIR/pcfs.stderr" 2>/dev/null)
	"$PCFS" -f --config "$cfg" "${@:3}" "$mnt" 2>>"$WORKDIR/pcfs.stderr" &
	PCFS_PID=$!
	for _ in $(seq 200); do
		[ "$(grep -c "mounted on $mnt " "$WORKDIR/pcfs.stderr" 2>/dev/null)" -gt "${before:-0}" ] &&
			ls "$mnt/procs" >/dev/null 2>&1 && return 0
		kill -0 "$PCFS_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "pcfs did not mount on $mnt:"; cat "$WORKDIR/pcfs.stderr"
	exit 1
}

# Unmount and check that the daemon exited cleanly; echoes its status.
pcfs_umount() {
	fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null
	local rc=0
	wait "$PCFS_PID" || rc=$?
	PCFS_PID=
	return $rc
}

# Pids of processes that carry our mountpoint in their environment: our tasks.
our_tasks() {
	local pid
	for pid in $(ls /proc | grep -E '^[0-9]+$'); do
		[ "$pid" = "$$" ] && continue
		{ tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null | grep -qx "PCFS_MOUNT=$M" && echo "$pid"
	done
}
tasks_left() { our_tasks | wc -l; }

cleanup() {
	if [ -n "$M" ] && is_mounted "$M"; then fusermount3 -uz "$M" 2>/dev/null; fi
	if [ -n "$PCFS_PID" ]; then
		kill "$PCFS_PID" 2>/dev/null
		sleep 0.2
		kill -9 "$PCFS_PID" 2>/dev/null
	fi
	# tasks are in process groups of their own; take any that outlived us
	if [ -n "$M" ]; then
		for pid in $(our_tasks); do kill -9 "$pid" 2>/dev/null; done
	fi
	# default state dirs of our mountpoints that a killed daemon left (a
	# clean unmount removes its own): said, then removed
	local d key
	key=$(state_key "$WORKDIR")
	for d in "$STATE_BASE/$key" "$STATE_BASE/$key"-*; do
		[ -d "$d" ] || continue
		echo "cleanup: removing $d, a killed daemon's default state dir"
		rm -rf "$d"
	done
	[ -n "${KEEP:-}" ] && echo "kept $WORKDIR" || rm -rf "$WORKDIR"
}
trap cleanup EXIT

# Every daemon of the test file, not only the last: a sanitizer report fails it.
# Futures' times from their own records, not the wall clock around them (a
# loaded machine stretches that): futures of one write share their
# submission, so queued_for is a start and queued_for + runtime an end.
fut_times() {   # fut_times POOL ID... -> "START END RUNTIME" per future, in seconds
	local f
	for f in "${@:2}"; do
		awk '/^queued_for: / { q = $2 } /^runtime: / { r = $2 } END { print q, q + r, r }' \
			"$M/pools/$1/futures/$f/status"
	done
}
# fut_times lines in -> "SPAN SUM": first start to last end, and the runtimes' sum
span_sum() { awk 'NR == 1 || $1 < lo { lo = $1 } $2 > hi { hi = $2 } { sum += $3 }
	END { printf "%.3f %.3f\n", hi - lo, sum }'; }

finish() {
	local logs=("$WORKDIR/pcfs.stderr")
	[ -f "$WORKDIR/pcfs.stderr.earlier" ] && logs+=("$WORKDIR/pcfs.stderr.earlier")
	if grep -qE 'ERROR: (Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error:|double free|corruption' "${logs[@]}" 2>/dev/null; then
		bad "daemon stderr is clean"
		grep -hE -A25 'ERROR: [A-Za-z]*Sanitizer|runtime error:|double free|corruption' "${logs[@]}" 2>/dev/null | head -30
	fi
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}
