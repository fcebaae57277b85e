#!/usr/bin/env bash
# Access control (issue 6) through a real mount, with real users: the mount is
# the mounting user's alone until -o allow_other; then only allowed users come
# in, objects are their creators', control and captured output are the
# owner's (and root's), and a root daemon runs each user's work as that user.
#
# Needs root: it creates two system users if absent (pcfs-test2, allowed;
# pcfs-test3, not) and runs commands as them with setpriv.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (mounts for other users, runs commands as them)"
	exit 77
fi
for u in pcfs-test2 pcfs-test3; do
	id "$u" >/dev/null 2>&1 || useradd --system --no-create-home "$u" || {
		echo "SKIP: cannot create the test user $u"; exit 77; }
done
U2=$(id -u pcfs-test2); G2=$(id -g pcfs-test2); U3=$(id -u pcfs-test3)
as2() { setpriv --reuid=pcfs-test2 --regid=pcfs-test2 --init-groups "$@"; }
as3() { setpriv --reuid=pcfs-test3 --regid=pcfs-test3 --init-groups "$@"; }
# the other users must reach the mountpoint and run the build's programs
chmod 755 "$WORKDIR"
# and the directory their lines are written from (a line runs in its writer's)
cd "$WORKDIR"

# "Permission denied" from a command run as someone (and a non-zero status)
denied() {
	local what=$1; shift
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] && [[ $out == *"Permission denied"* ]]; then ok "$what"; else
		bad "$what"; printf '     | status %s: %s\n' "$rc" "$out" | head -5; fi
}
# rmdir of another's object: /procs, /pools and /channels are sticky (like
# /tmp), so the kernel refuses it first, with EPERM
sticky() {
	local what=$1; shift
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] && [[ $out == *"Operation not permitted"* ]]; then ok "$what"; else
		bad "$what"; printf '     | status %s: %s\n' "$rc" "$out" | head -5; fi
}
# The ids in /proc/PID/status: "UID GID GROUPS..." (real = effective = saved = fs)
ids_of() {
	local pid=$1
	awk '/^Uid:/ { u = ($2 == $3 && $3 == $4 && $4 == $5) ? $2 : "mixed:" $2 "," $3 "," $4 "," $5 }
	     /^Gid:/ { g = ($2 == $3 && $3 == $4 && $4 == $5) ? $2 : "mixed:" $2 "," $3 "," $4 "," $5 }
	     /^Groups:/ { $1 = ""; gs = $0 }
	     END { print u " " g gs }' "/proc/$pid/status"
}
groups2=$(as2 id -G | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//')
want2="$U2 $G2 $groups2"
sorted_ids() { read -r u g rest; echo "$u $g $(echo "$rest" | tr ' ' '\n' | sed '/^$/d' | sort -n | tr '\n' ' ' | sed 's/ $//')"; }

# --- without allow_other: the kernel keeps everyone else out -------------------
pcfs_mount
denied "no allow_other: another user gets EACCES from the kernel" as2 cat "$M/README"
denied "... even to list the root" as2 ls "$M"
expect "... and the daemon never saw it (no refusal in /log)" "$(grep -c 'access:' "$M/log")" "0"
pcfs_umount
expect "unmounted" "$?" "0"

# --- allow_other with allow_users = pcfs-test2 ---------------------------------
pcfs_mount "[access]
allow_other = true
allow_users = pcfs-test2
[tasks]
kill_grace = 300ms"
expect_match "/log says who may come in" "$(cat "$M/log")" 'other users may come in \(allow_other\)'
check "an allowed user reads the mount" as2 cat "$M/README"
check "... and lists it" as2 ls "$M/procs"

# the user not allowed: EACCES on everything, and the refusals are logged
denied "a user not allowed: ls / is refused" as3 ls "$M"
denied "... stat of a file" as3 stat "$M/stats"
denied "... cat /stats" as3 cat "$M/stats"
denied "... a spawn" as3 sh -c "echo noop > '$M/spawn'"
denied "... a mkdir in /pools" as3 mkdir "$M/pools/p3"
denied "... a mkdir in /channels" as3 mkdir "$M/channels/c3"
expect_match "refusals of the gate are in /log" "$(cat "$M/log")" "access: uid $U3 \\(pid [0-9]+\\) refused: not the mounting user"
check_fails "... and nothing was made" test -e "$M/pools/p3"

sleep 1   # the refusals above may have used this second's share of log lines
          # (a new second begins within it, however loaded the machine)
# (the tasks below are read and controlled for a while: they run 10 minutes)

# root's task, and one of pcfs-test2's
exec 3<>"$M/spawn"; echo 'sh echo secret; sleep 600' >&3; read -r R <&3; exec 3>&-
wait_until 1000 grep -q secret "$M/procs/$R/stdout"
out=$(as2 bash -c "exec 3<>'$M/spawn'; echo 'sh echo mine; exec sleep 600' >&3; read -r id <&3; echo \$id")
A=$out
expect_match "an allowed user spawns (id back on the descriptor)" "$A" '^[0-9]+$'
wait_until 1000 grep -q mine "$M/procs/$A/stdout"
pidA=$(cat "$M/procs/$A/pid")
expect "their task runs as them: /proc/PID/status Uid Gid Groups" "$(ids_of "$pidA" | sorted_ids)" "$want2"
expect "status shows its owner" "$(grep -E '^(uid|gid|owner):' "$M/procs/$A/status" | tr '\n' ' ')" \
	"uid: $U2 gid: $G2 owner: pcfs-test2 "
expect "status.json too" "$(jq -r '"\(.uid) \(.gid) \(.owner)"' "$M/procs/$A/status.json")" "$U2 $G2 pcfs-test2"
expect "root's task shows root" "$(jq -r '"\(.uid) \(.owner)"' "$M/procs/$R/status.json")" "0 root"
expect "its files belong to its owner (as in /proc)" "$(stat -c '%U %G' "$M/procs/$A" "$M/procs/$A/ctl" | sort -u)" "pcfs-test2 pcfs-test2"
expect "modes: control and output the owner's, status everyone's" \
	"$(stat -c '%n %a' "$M/procs/$A"/{ctl,stdout,stderr,status,state,wait} | sed "s|$M/procs/$A/||" | tr '\n' ' ')" \
	"ctl 600 stdout 400 stderr 400 status 444 state 444 wait 444 "
check "the owner reads their stdout" as2 grep -q mine "$M/procs/$A/stdout"

# root's task: readable status, but no control and no output for them
check "another's status is readable (as ps shows it)" as2 cat "$M/procs/$R/status"
denied "term on root's task: EACCES" as2 sh -c "echo term > '$M/procs/$R/ctl'"
denied "kill on root's task: EACCES" as2 sh -c "echo kill > '$M/procs/$R/ctl'"
denied "root's stdout: EACCES" as2 cat "$M/procs/$R/stdout"
denied "root's maps: EACCES" as2 cat "$M/procs/$R/maps"
sticky "rmdir of root's task: EPERM (a sticky directory)" as2 rmdir "$M/procs/$R"
# the daemon's own check holds where the kernel's does not look: a descriptor
# root opened, written by pcfs-test2 (the kernel checked root at open)
denied "a control descriptor passed to them: the daemon refuses the write" \
	as2 bash -c 'echo term >&5' 5>"$M/procs/$R/ctl"
denied "an output descriptor passed to them: the daemon refuses the read" \
	as2 bash -c 'cat <&5' 5<"$M/procs/$R/stdout"
expect "root's task still runs" "$(cat "$M/procs/$R/state")" "running"
expect_match "owner refusals are in /log" "$(cat "$M/log")" \
	"access: uid $U2 \\(pid [0-9]+\\) refused write of ctl \\(inode [0-9a-fx]+\\): it belongs to uid 0"

# root controls theirs
echo term > "$M/procs/$A/ctl"
expect "root may term their task" "$(cat "$M/procs/$A/wait")" "-15"
check "they may forget their own ended task" as2 rmdir "$M/procs/$A"

# their context (issue 17): their directory, their environment, their files
D2=$WORKDIR/home2; mkdir "$D2"; chown pcfs-test2: "$D2"
RO=$WORKDIR/rootonly; mkdir -m 700 "$RO"; echo secret > "$RO/secret"
C=$(as2 env FOO=theirs bash -c "cd '$D2' && exec 3<>'$M/spawn'; echo 'sh pwd; echo \$FOO; id -u; touch made' >&3; read -r id <&3; echo \$id")
expect "a root daemon runs their line in their directory, with their environment, as them" \
	"$(timeout 60 cat "$M/procs/$C/wait") $(cat "$M/procs/$C/stdout" | tr '\n' ' ')" "0 $D2 theirs $U2 "
expect "... what it makes is theirs" "$(stat -c %U "$D2/made")" "pcfs-test2"
C=$(as2 bash -c "cd '$D2' && exec 3<>'$M/spawn'; echo 'sh stdout=./out.txt echo hi' >&3; read -r id <&3; echo \$id")
timeout 60 cat "$M/procs/$C/wait" >/dev/null
expect "stdout= a file of theirs: made by them, in their directory" "$(stat -c %U "$D2/out.txt") $(cat "$D2/out.txt")" "pcfs-test2 hi"
denied "stdout= in a directory only root may write: refused" \
	as2 bash -c "cd '$D2' && echo 'sh stdout=$RO/x echo' > '$M/spawn'"
check_fails "... and nothing is made there" test -e "$RO/x"
denied "stdin= a file only root may read: refused" \
	as2 bash -c "cd '$D2' && echo 'sh stdin=$RO/secret cat' > '$M/spawn'"
denied "stdin=/etc/shadow: refused" as2 bash -c "echo 'sh stdin=/etc/shadow cat' > '$M/spawn'"
expect_match "... saying why in /log" "$(cat "$M/log")" "stdin=/etc/shadow: Permission denied"
denied "cwd= a directory only root may enter: the task fails entering it, as them" \
	as2 bash -c "echo 'sh cwd=$RO pwd' > '$M/spawn'; id=\$(ls '$M/procs' | sort -n | tail -1); cat '$M/procs/'\$id/wait >/dev/null; cat '$M/procs/'\$id/error; exit 1"
mkdir "$RO/hidden"
denied "cwd= below a directory they cannot search: refused, as them (not told whether it exists)" \
	as2 bash -c "echo 'sh cwd=$RO/hidden pwd' > '$M/spawn'"
expect_match "... the reason" "$(cat "$M/log")" "cwd=$RO/hidden: Permission denied"
check "a pool of theirs: lines run where they stand" as2 mkdir "$M/pools/ctx2"
as2 bash -c "cd '$D2' && printf 'sh pwd\nsh stdout=$RO/y echo\n' > '$M/pools/ctx2/submit'"
expect "... in their directory" "$(as2 timeout 60 cat "$M/pools/ctx2/futures/1/result")" "$D2"
denied "... a pool's cwd= is looked at as them too" \
	as2 bash -c "echo 'sh cwd=$RO/hidden pwd' > '$M/pools/ctx2/submit'"
expect_match "... and a file only root may write fails the future, as them" \
	"$(as2 timeout 60 cat "$M/pools/ctx2/futures/2/wait") $(as2 cat "$M/pools/ctx2/futures/2/stderr")" "^failed .*stdout=$RO/y: Permission denied"
check_fails "... nothing made there either" test -e "$RO/y"
echo shutdown > "$M/pools/ctx2/ctl"

running() { [ "$(cat "$M/procs/$1/state" 2>/dev/null)" = running ]; }
# every start method runs as the caller (and a thread in a host of theirs)
spawn2() { as2 bash -c "exec 3<>'$M/spawn'; echo '$1' >&3; read -r id <&3; echo \$id"; }
for line in 'sleep time=30' 'sleep time=30 method=clone' 'sleep time=30 method=spawn' \
	    'sleep time=30 method=vfork' 'exec sleep 30' 'exec method=vfork sleep 30' \
	    'exec method=clone sleep 30' 'exec method=fork sleep 30' 'sh sleep 30' \
	    'sleep as=thread time=30' 'cow size=4M write=50 time=30'; do
	id=$(spawn2 "$line")
	wait_until 1000 running "$id"
	pid=$(cat "$M/procs/$id/pid")
	expect "'$line' ($(cat "$M/procs/$id/method")) runs as them" "$(ids_of "$pid" | sorted_ids)" "$want2"
	# (the cow parent runs before it forks: killed only once its child is
	# there, which a loaded machine may take a while to make)
	case $line in cow*) wait_until 2000 as2 grep -q 'cow-child written=' "$M/procs/$id/stdout";; esac
	echo kill > "$M/procs/$id/ctl"
done
cow=$(ls "$M/procs" | sort -n | tail -1)   # the cow child is a task of its own
expect "the cow child (task $cow) is theirs too" "$(jq -r '"\(.parent != null) \(.uid)"' "$M/procs/$cow/status.json")" "true $U2"

# nice= below 0 needs privilege: theirs runs at the niceness it may have
for m in spawn fork; do
	id=$(spawn2 "sleep time=30 nice=-5 method=$m")
	wait_until 1000 running "$id"
	nice=$(awk '{ print $19 }' "/proc/$(cat "$M/procs/$id/pid")/stat")
	check "nice=-5 ($m) is not granted to them (nice $nice)" test "$nice" -ge 0
	echo kill > "$M/procs/$id/ctl"
done
# cwd= is entered as them: root's home is closed to them
id=$(spawn2 'exec cwd=/root ls')
expect "cwd=/root is entered as them: it fails (126, as a shell says)" "$(cat "$M/procs/$id/wait")" "126"
expect_match "... with the reason" "$(cat "$M/procs/$id/error")" 'Permission denied'

# --- pools ------------------------------------------------------------------
P=$M/pools
check "an allowed user makes a pool" as2 mkdir "$P/p2"
expect "it is theirs" "$(jq -r '"\(.uid) \(.owner)"' "$P/p2/status.json")" "$U2 pcfs-test2"
as2 sh -c "echo workers=2 > '$P/p2/ctl'"
f=$(as2 bash -c "exec 3<>'$P/p2/submit'; echo 'sh id -u; id -g' >&3; read -r id <&3; echo \$id")
expect "their pool's work runs as them" "$(as2 cat "$P/p2/futures/$f/result" | tr '\n' ' ')" "$U2 $G2 "
wpid=$(cat "$P/p2/workers/1/pid")
expect "... in workers of theirs" "$(ids_of "$wpid" | sorted_ids)" "$want2"
expect "... which are their tasks" "$(jq -r .uid "$P/p2/workers/1/status.json")" "$U2"
check "root may read their result" cat "$P/p2/futures/$f/result"
as2 mkdir "$P/t2"; as2 sh -c "echo type=thread > '$P/t2/ctl'; echo workers=2 > '$P/t2/ctl'"
f=$(as2 bash -c "exec 3<>'$P/t2/submit'; echo 'sh id -u' >&3; read -r id <&3; echo \$id")
expect "a thread pool of theirs too" "$(as2 cat "$P/t2/futures/$f/result")" "$U2"
mkdir "$P/pr"
echo workers=1 > "$P/pr/ctl"
echo 'sh echo rootsecret' > "$P/pr/submit"
cat "$P/pr/futures/1/wait" >/dev/null
denied "root's pool refuses their submit" as2 sh -c "echo noop > '$P/pr/submit'"
denied "... and their map" as2 sh -c "echo noop > '$P/pr/map'"
denied "... and their ctl" as2 sh -c "echo workers=8 > '$P/pr/ctl'"
denied "... its results are not theirs to read" as2 cat "$P/pr/futures/1/result"
denied "... nor its stdout" as2 cat "$P/pr/futures/1/stdout"
denied "... nor cancel" as2 sh -c "echo > '$P/pr/futures/1/cancel'"
expect "... nothing was submitted" "$(jq -r .submitted "$P/pr/status.json")" "1"
check "... its status is readable" as2 cat "$P/pr/status"
sticky "rmdir of root's pool: EPERM" as2 rmdir "$P/pr"

# a Slurm pool of theirs: sbatch runs as them, so the job does (root's sbatch
# would run it as root); only where a single-node cluster can be started
CLUSTER="$PCFS_SOURCE_DIR/tools/slurm-cluster.sh"
was_up=0
bash "$CLUSTER" status >/dev/null 2>&1 && was_up=1
if bash "$CLUSTER" start >"$WORKDIR/slurm.out" 2>&1; then
	as2 mkdir "$P/s2"
	as2 sh -c "echo 'executor=slurm workers=2' > '$P/s2/ctl'"
	f=$(as2 bash -c "exec 3<>'$P/s2/submit'; echo 'sh id -u; id -g' >&3; read -r id <&3; echo \$id")
	expect "a Slurm pool of theirs: the job runs as them" \
		"$(as2 timeout 90 cat "$P/s2/futures/$f/result" | tr '\n' ' ')" "$U2 $G2 "
	[ "$was_up" = 1 ] || bash "$CLUSTER" stop >/dev/null 2>&1
else
	echo "(Slurm cannot be started here; its part is not run:)"
	sed 's/^/     | /' "$WORKDIR/slurm.out" | tail -3
fi

# --- channels ---------------------------------------------------------------
C=$M/channels
check "an allowed user makes a channel" as2 mkdir "$C/c2"
expect "it is theirs" "$(jq -r .uid "$C/c2/stat.json")" "$U2"
as2 sh -c "echo hello > '$C/c2/put'"
expect "they use it" "$(as2 timeout 60 head -c 6 "$C/c2/get")" "hello"
denied "another user's fifo channel is refused (its FIFO would be in the daemon's run directory)" \
	as2 bash -c "echo 'fifo f2' > '$C/ctl'"
check "... saying why" grep -q "a fifo lives in the daemon's run directory" "$M/log"
mkdir "$C/cr"; echo rootmsg > "$C/cr/put"
denied "root's channel: put refused" as2 sh -c "echo x > '$C/cr/put'"
denied "... get refused (before it could park)" as2 timeout 60 cat "$C/cr/get"
denied "... ctl refused" as2 sh -c "echo close > '$C/cr/ctl'"
expect "... its message is still there" "$(jq -r .depth "$C/cr/stat.json")" "1"
sticky "... rmdir refused (EPERM)" as2 rmdir "$C/cr"
out=$(as2 bash -c "echo 'exec stdin=cr cat' > '$M/spawn'" 2>&1)
expect_match "a task of theirs cannot be wired to root's channel" "$out" 'Permission denied'
# the owner is checked when a queued future is wired, not only when its line
# was parsed: their channel removed and root's made under the same name, the
# future waiting for it fails instead of reading root's messages
as2 mkdir "$C/q2" "$P/q1"
as2 sh -c "echo workers=1 > '$P/q1/ctl'"
# (the sleep is killed below: the wired future waits behind it however long
# the steps between take; the state is read at each try, not once)
as2 sh -c "echo 'exec sleep 600' > '$P/q1/submit'; echo 'exec stdin=q2 cat' > '$P/q1/submit'"
wait_until 1000 grep -qx running "$P/q1/futures/1/state"
expect "their wired future waits behind the sleep" "$(cat "$P/q1/futures/2/state")" "pending"
as2 rmdir "$C/q2"
mkdir "$C/q2"; echo rootsecret > "$C/q2/put"; echo close > "$C/q2/ctl"
as2 sh -c "echo kill > '$P/q1/futures/1/ctl'"
expect "... it fails when it comes to run" "$(as2 timeout 60 cat "$P/q1/futures/2/wait")" "failed"
expect_match "... naming the channel's owner" "$(as2 cat "$P/q1/futures/2/error")" 'stdin=q2: the channel belongs to uid 0'
expect "... with exit status 1, as any future that fails without running" \
	"$(as2 cat "$P/q1/futures/2/exitcode")" "1"
expect "... and root's message was not read" "$(as2 cat "$P/q1/futures/2/result") $(jq -r .depth "$C/q2/stat.json")" " 1"

# --- the end: a clean unmount, nothing left ------------------------------------
pcfs_umount
expect "unmount: the daemon exits 0" "$?" "0"
expect "no task is left" "$(tasks_left)" "0"

# --- [state] dir: owners survive the daemon -----------------------------------
ACC_STATE="[access]
allow_other = true
allow_users = pcfs-test2
[state]
dir = $WORKDIR/state"
pcfs_mount "$ACC_STATE"
out=$(as2 bash -c "exec 3<>'$M/spawn'; echo 'sh echo kept' >&3; read -r id <&3; echo \$id")
as2 timeout 60 cat "$M/procs/$out/wait" >/dev/null
as2 mkdir "$M/pools/sp2"
as2 sh -c "echo 'sh id -u' > '$M/pools/sp2/submit'"
as2 timeout 60 cat "$M/pools/sp2/futures/1/wait" >/dev/null
kill -9 "$PCFS_PID"; wait "$PCFS_PID" 2>/dev/null; PCFS_PID=
pcfs_mount "$ACC_STATE"
expect "restarted: their task is still theirs" "$(jq -r .uid "$M/procs/$out/status.json")" "$U2"
expect "... they read its output" "$(as2 cat "$M/procs/$out/stdout")" "kept"
exec 3<>"$M/spawn"; echo 'sh echo r' >&3; read -r R2 <&3; exec 3>&-
timeout 60 cat "$M/procs/$R2/wait" >/dev/null
denied "... and root's new task's output is still not theirs" as2 cat "$M/procs/$R2/stdout"
as2 sh -c "echo 'sh id -u' > '$M/pools/sp2/submit'"
expect "their pool came back as theirs: its work runs as them" \
	"$(as2 timeout 60 cat "$M/pools/sp2/futures/2/wait") $(as2 cat "$M/pools/sp2/futures/1/result") $(as2 cat "$M/pools/sp2/futures/2/result")" \
	"done $U2 $U2"
denied "... and pcfs-test3 cannot read it" as3 cat "$M/pools/sp2/futures/1/result"
pcfs_umount

# --- -o allow_other on the command line, allow_groups -----------------------------
# the config says nothing of allow_other: the command line's -o lets others
# in; only members of pcfs-testg (besides root) get in, as a primary or a
# supplementary group; pcfs-test2 is not in allow_users this time
getent group pcfs-testg >/dev/null || groupadd --system pcfs-testg || {
	echo "SKIP: cannot create the test group pcfs-testg"; exit 77; }
GT=$(getent group pcfs-testg | cut -d: -f3)
pcfs_mount "[access]
allow_groups = pcfs-testg" -o allow_other
expect_match "-o allow_other: /log says who may come in" "$(cat "$M/log")" 'other users may come in \(allow_other\)'
as3sup() { setpriv --reuid=pcfs-test3 --regid=pcfs-test3 --groups="$GT" "$@"; }
as3pri() { setpriv --reuid=pcfs-test3 --regid="$GT" --clear-groups "$@"; }
check "a member by a supplementary group reads the mount" as3sup cat "$M/README"
check "... and lists it" as3sup ls "$M/procs"
id=$(as3sup bash -c "exec 3<>'$M/spawn'; echo 'sh id -u; id -G' >&3; read -r id <&3; echo \$id")
expect_match "... and starts work (id back on the descriptor)" "$id" '^[0-9]+$'
expect "... which runs as them, with that group" "$(as3sup timeout 60 cat "$M/procs/$id/wait") $(as3sup cat "$M/procs/$id/stdout" | tr '\n' ' ')" "0 $U3 $(id -g pcfs-test3) $GT "
check "a member by the primary group reads the mount" as3pri cat "$M/README"
denied "pcfs-test3 without the group: EACCES" as3 cat "$M/README"
denied "pcfs-test2 (in allow_users before, not now): EACCES" as2 ls "$M"
expect_match "... logged" "$(cat "$M/log")" "access: uid $U2 \\(pid [0-9]+\\) refused"
check "unmount: the daemon exits 0" pcfs_umount

# (A daemon that is not root refusing other users' work needs user_allow_other
# in /etc/fuse.conf to be tried here; tests/unit/test_access.c checks the rule.)
finish
