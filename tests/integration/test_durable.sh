#!/usr/bin/env bash
# test_durable.sh - nothing lost by default: with no [state] dir, results go
# to a dir of the mountpoint's own (/var/lib/pcfs/KEY for root, else under
# $XDG_STATE_HOME/pcfs or ~/.local/state/pcfs), so a daemon killed with -9
# and started again on the same mountpoint gives them back; two mountpoints
# get two dirs; `dir = none` (or -o state_dir=none) writes and restores
# nothing; a clean unmount leaves nothing behind unless `keep = yes`; the
# one-daemon-per-dir lock holds; `sync = always` fsyncs the journal before
# a wait returns, `none` never.
. "$(dirname "$0")/lib.sh"

# start_on MNT CONFIG_TEXT [ARG...]: a daemon on MNT in the background,
# ready once it says it mounted there; its pid in $PCFS_PID
start_on() {
	local cfg=$WORKDIR/c.$RANDOM.ini
	printf '%s\n' "$2" > "$cfg"
	pcfs_start_on "$1" "$cfg" "${@:3}"
}
stop_clean() {   # stop_clean MNT PID: unmount, the daemon exits 0
	fusermount3 -u "$1"
	wait "$2"
}
kill9() {        # kill9 MNT PID: the daemon dies; auto_unmount takes the mount
	kill -9 "$2"; wait "$2" 2>/dev/null
	wait_until 200 sh -c "! grep -q ' $1 fuse.pcfs ' /proc/mounts"
}
last_id() { ls "$1/procs" | sort -n | tail -1; }
# ended MNT LINE / running MNT LINE: spawn LINE on MNT, wait for its end (or
# until it runs), print its id
ended() { local id; echo "$2" > "$1/spawn"; id=$(last_id "$1"); cat "$1/procs/$id/wait" >/dev/null; echo "$id"; }
running() {
	local id; echo "$2" > "$1/spawn"; id=$(last_id "$1")
	wait_until 200 grep -qx running "$1/procs/$id/state"; echo "$id"
}
stat_of() { sed -n "s/^$2: //p" "$1/stats"; }

NOCONF='[fuse]
auto_unmount = true'

# --- the default dir: named after the mountpoint, restored after kill -9 ---
M=$(mktemp -d "$WORKDIR/mnt.XXXX")
D=$STATE_BASE/$(state_key "$M")
start_on "$M" "$NOCONF"
P1=$PCFS_PID
expect "/stats names the default dir" "$(stat_of "$M" state_dir)" "$D"
expect "the default sync is batch" "$(stat_of "$M" state_sync)" batch
if command -v systemd-escape >/dev/null; then
	se=$(systemd-escape --path "$M")
	expect "the key is systemd-escape --path's, +NN for \\xNN" "$(state_key "$M")" "${se//\\x/+}"
fi
echo 'sh echo out; echo err >&2; exit 3' > "$M/spawn"; A=$(last_id "$M")
expect "a task ends with 3" "$(cat "$M/procs/$A/wait")" 3
S=$(running "$M" 'exec /bin/sleep 600')
check "the journal is in the default dir" grep -q "^E id=$A " "$D/journal"
SPID=$(cat "$M/procs/$S/pid")
kill9 "$M" "$P1"
check "kill -9 leaves the journal" test -s "$D/journal"

start_on "$M" "$NOCONF"
P1=$PCFS_PID
expect "restored: exit code" "$(cat "$M/procs/$A/exitcode")" 3
expect "restored: stdout" "$(cat "$M/procs/$A/stdout")" out
expect "restored: stderr" "$(cat "$M/procs/$A/stderr")" err
expect "what ran is lost" "$(cat "$M/procs/$S/state")" lost
kill -9 "$SPID" 2>/dev/null
echo 'exec /bin/true' > "$M/spawn"
expect "ids go on after the old ones" "$(last_id "$M")" $((S + 1))

# --- two mountpoints, two dirs; the lock keeps a second daemon off one ---
M2=$(mktemp -d "$WORKDIR/mnt.XXXX")
start_on "$M2" "$NOCONF"
P2=$PCFS_PID
D2=$(stat_of "$M2" state_dir)
expect "a second mountpoint has a dir of its own" "$D2" "$STATE_BASE/$(state_key "$M2")"
check "the two differ" test "$D" != "$D2"
B=$(ended "$M2" 'sh echo two')
check "its journal is in its own dir" grep -q "^E id=$B " "$D2/journal"
expect "and not in the other's" "$(grep -c 'cmd=sh%20echo%20two' "$D/journal")" 0
M3=$(mktemp -d "$WORKDIR/mnt.XXXX")
printf '[state]\ndir = %s\n' "$D" > "$WORKDIR/taken.ini"
rc=0; timeout 60 "$PCFS" -f --config "$WORKDIR/taken.ini" "$M3" 2>"$WORKDIR/taken.err" || rc=$?
expect "a daemon on another's dir is refused" "$rc" 2
check "... saying it is in use" grep -q "in use by another pcfs, pid $P1" "$WORKDIR/taken.err"

# --- a clean unmount leaves nothing behind ---
stop_clean "$M" "$P1"
check "a clean unmount removes the default dir" test ! -e "$D"
stop_clean "$M2" "$P2"
check "... the second one's too" test ! -e "$D2"
start_on "$M" "$NOCONF"
P1=$PCFS_PID
check "so a new daemon there starts empty" test -z "$(ls "$M/procs")"
stop_clean "$M" "$P1"

# --- keep = yes keeps it, for the next daemon ---
KEEPCONF='[fuse]
auto_unmount = true
[state]
keep = yes'
start_on "$M" "$KEEPCONF"
P1=$PCFS_PID
K=$(ended "$M" 'sh echo kept')
stop_clean "$M" "$P1"
check "keep = yes: the journal stays" grep -q "^E id=$K " "$D/journal"
start_on "$M" "$NOCONF"
P1=$PCFS_PID
expect "keep = yes: the next daemon restores it" "$(cat "$M/procs/$K/stdout")" kept
stop_clean "$M" "$P1"
check "and without keep its clean unmount removes it" test ! -e "$D"

# --- a dir of one's own stays at a clean unmount, unless keep = no ---
OWN=$WORKDIR/own-state
start_on "$M" "[fuse]
auto_unmount = true
[state]
dir = $OWN"
P1=$PCFS_PID
stop_clean "$M" "$P1"
check "a named dir stays after a clean unmount (keep = auto)" test -e "$OWN/journal"
start_on "$M" "[fuse]
auto_unmount = true
[state]
dir = $OWN
keep = no"
P1=$PCFS_PID
stop_clean "$M" "$P1"
check "keep = no: even a named dir is removed at a clean unmount" test ! -e "$OWN"

# --- [unmount] policy = leave keeps the default dir: the work that runs on
# is the next daemon's to find ---
LEAVECONF='[fuse]
auto_unmount = true
[unmount]
policy = leave'
start_on "$M" "$LEAVECONF"
P1=$PCFS_PID
L1=$(ended "$M" 'sh echo before; exit 5')
L2=$(running "$M" 'exec /bin/sleep 600')
LPID=$(cat "$M/procs/$L2/pid")
check "policy = leave: a clean unmount, the daemon exits 0" timeout 60 bash -c \
	"fusermount3 -u '$M' && while kill -0 $P1 2>/dev/null; do sleep 0.05; done"
wait "$P1"; expect "... its exit status" "$?" 0
check "... the task runs on" kill -0 "$LPID"
check "... the default dir stays" grep -q "^E id=$L1 " "$D/journal"
start_on "$M" "$NOCONF"
P1=$PCFS_PID
expect "the next daemon restores what ended" "$(cat "$M/procs/$L1/exitcode") $(cat "$M/procs/$L1/stdout")" "5 before"
expect "... and says what ran on is lost" "$(cat "$M/procs/$L2/state")" lost
# (the left task is killed after this daemon has gone: it still holds the
# first daemon's auto_unmount socket, a descriptor leaked into tasks, and
# its end makes that daemon's fusermount3 unmount the mountpoint, racing
# the unmount below: EBUSY, and a hang.  The leak is an open bug.)
stop_clean "$M" "$P1"
check "... whose own clean unmount removes the dir" test ! -e "$D"
kill -9 "$LPID"

# --- dir = none, and -o state_dir=none: nothing written, nothing restored ---
NONE='[fuse]
auto_unmount = true
[state]
dir = none'
start_on "$M" "$NONE"
P1=$PCFS_PID
expect "dir = none: /stats says none" "$(stat_of "$M" state_dir)" none
N=$(ended "$M" 'sh echo gone')
check "dir = none: no dir made" test ! -e "$D"
kill9 "$M" "$P1"
start_on "$M" "$NONE"
P1=$PCFS_PID
check "dir = none: nothing restored after kill -9" test -z "$(ls "$M/procs")"
stop_clean "$M" "$P1"
start_on "$M" "$NOCONF" -o state_dir=none
P1=$PCFS_PID
expect "-o state_dir=none over the config" "$(stat_of "$M" state_dir)" none
echo 'sh echo gone' > "$M/spawn"; cat "$M/procs/1/wait" >/dev/null
check "-o state_dir=none: no dir made" test ! -e "$D"
stop_clean "$M" "$P1"
rc=0; timeout 60 "$PCFS" -f -o state_dir=rel "$M3" 2>"$WORKDIR/rel.err" || rc=$?
expect "-o state_dir= must be absolute" "$rc" 2
check "... saying so" grep -q "state_dir: \[state\] dir: 'rel' is not an absolute path" "$WORKDIR/rel.err"

# --- sync: fsync'd before the wait returns (always), never (none) ---
# (strace follows the daemon's threads; -f would follow its tasks too)
if command -v strace >/dev/null; then
	for mode in always none; do
		printf '[fuse]\nauto_unmount = true\n[state]\nsync = %s\n' "$mode" > "$WORKDIR/sync.ini"
		strace -qq -f -e trace=fsync,fdatasync,syncfs -o "$WORKDIR/strace.$mode" \
			"$PCFS" -f --config "$WORKDIR/sync.ini" "$M" 2>>"$WORKDIR/pcfs.stderr" &
		SP=$!
		wait_until 400 grep -q " $M fuse.pcfs " /proc/mounts
		wait_until 200 test -d "$M/procs"
		for _ in 1 2 3 4 5; do
			echo 'sh echo s' > "$M/spawn"; cat "$M/procs/$(last_id "$M")/wait" >/dev/null
		done
		n=$(grep -cE 'f(data)?sync\(' "$WORKDIR/strace.$mode")
		if [ "$mode" = always ]; then
			check "sync = always: an fsync per ended task (5 tasks, $n fsyncs)" test "$n" -ge 5
		else
			expect "sync = none: no fsync" "$n" 0
		fi
		fusermount3 -u "$M"; wait "$SP"
	done
	check "the sync runs left nothing behind" test ! -e "$D"
fi

# sync = always, across kill -9 (what a wait said is in the journal)
start_on "$M" "$(printf '%s\n[state]\nsync = always' "$NOCONF")"
P1=$PCFS_PID
Y=$(ended "$M" 'sh echo synced; exit 4')
kill9 "$M" "$P1"
start_on "$M" "$NOCONF"
P1=$PCFS_PID
expect "sync = always: restored after kill -9" "$(cat "$M/procs/$Y/exitcode") $(cat "$M/procs/$Y/stdout")" "4 synced"
stop_clean "$M" "$P1"
check "nothing left in the default dir" test ! -e "$D"
finish
