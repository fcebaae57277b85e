#!/usr/bin/env bash
# Run where the user is (issue 17): a line runs in its writer's directory
# with its writer's environment (PATH lookup included), env= edits it,
# stdin=/stdout=/stderr= take files, and a writer that exits at once still
# had its context taken at its write.  Spawned tasks and pool futures alike,
# from real shells standing in a project directory.
. "$(dirname "$0")/lib.sh"

pcfs_mount "[tasks]
default_time = 30s"

PROJ=$WORKDIR/proj
mkdir -p "$PROJ/sub" "$PROJ/bin"
printf '#!/bin/sh\necho "run.sh in $(pwd) with FOO=$FOO"\n' > "$PROJ/run.sh"
printf '#!/bin/sh\necho "tool from bin/ on the writer'"'"'s PATH"\n' > "$PROJ/bin/pcfs-test-tool"
chmod +x "$PROJ/run.sh" "$PROJ/bin/pcfs-test-tool"
out() { timeout 60 cat "$M/procs/$1/wait" >/dev/null; cat "$M/procs/$1/stdout"; }
# A line written by a fresh shell standing in $PROJ, with FOO=bar exported to
# it (a shell's own `export` after its start is not in /proc: see the README).
spawn_in() {   # DIR LINE -> the new id
	(cd "$1" && FOO=bar bash -c 'exec 3<>"$1/spawn"; printf "%s\n" "$2" >&3; read -r id <&3; echo "$id"' _ "$M" "$2")
}

# --- the writer's directory -------------------------------------------------------
id=$(spawn_in "$PROJ" 'exec ./run.sh')
expect "exec ./x runs the project's program, in the writer's directory" "$(out "$id")" \
	"run.sh in $PROJ with FOO=bar"
id=$(spawn_in "$PROJ" 'sh ./run.sh')
expect "sh ./x.sh too" "$(out "$id")" "run.sh in $PROJ with FOO=bar"
id=$(spawn_in "$PROJ/sub" 'sh pwd')
expect "each write runs where its own writer stands" "$(out "$id")" "$PROJ/sub"
id=$(spawn_in "$PROJ" 'sh cwd=sub pwd')
expect "cwd= may be relative: to the writer's directory" "$(out "$id")" "$PROJ/sub"
id=$(spawn_in "$PROJ/sub" 'sh cwd=/tmp pwd')
expect "... an absolute cwd= is itself" "$(out "$id")" "/tmp"
for m in fork vfork clone spawn; do
	id=$(spawn_in "$PROJ" "exec method=$m ./run.sh")
	expect "method=$m: the same directory and environment" "$(out "$id")" \
		"run.sh in $PROJ with FOO=bar"
done
# (it runs for minutes, not for a time a loaded machine could use up first)
id=$(spawn_in "$PROJ/sub" 'sleep as=thread time=10m')
expect "a thread's host process runs there too" \
	"$(readlink "/proc/$(cat "$M/procs/$id/pid")/cwd")" "$PROJ/sub"
echo kill > "$M/procs/$id/ctl"
expect "a cwd= that does not exist refuses the line, as cd would" \
	"$(cd "$PROJ" && write_err "$M/spawn" 'sh cwd=nowhere pwd')" "No such file or directory"
check "... saying why in /log" grep -q 'cwd=nowhere: No such file or directory' "$M/log"

# --- the writer's environment -------------------------------------------------------
id=$(spawn_in "$PROJ" 'sh echo "$FOO"')
expect "a variable of the writer's is the task's" "$(out "$id")" "bar"
id=$(cd "$PROJ" && PATH="$PROJ/bin:$PATH" bash -c "echo 'exec pcfs-test-tool' > '$M/spawn'; ls '$M/procs' | sort -n | tail -1")
expect "exec PROGRAM is looked up on the writer's PATH" "$(out "$id")" "tool from bin/ on the writer's PATH"
check_fails "... which the daemon's PATH does not have" sh -c "command -v pcfs-test-tool"
id=$(spawn_in "$PROJ" 'exec pcfs-test-tool')
expect "... so without it: not found, like a shell (127)" "$(timeout 60 cat "$M/procs/$id/wait")" "127"
id=$(spawn_in "$PROJ" 'sh env=FOO=over env=NEW=1 echo "$FOO $NEW"')
expect "env=K=V overrides and adds" "$(out "$id")" "over 1"
id=$(spawn_in "$PROJ" 'sh env=-FOO echo "[${FOO-unset}]"')
expect "env=-K removes" "$(out "$id")" "[unset]"
id=$(spawn_in "$PROJ" 'exec env=- env=ONLY=1 /usr/bin/env')
expect "env=- starts from nothing: only env= and PCFS_*" \
	"$(out "$id" | sed 's/=.*//' | sort | tr '\n' ' ')" "ONLY PCFS_DEFAULT_TIME_MS PCFS_ID PCFS_MOUNT "
id=$(cd "$PROJ" && PCFS_ID=999 bash -c "echo 'sh echo \$PCFS_ID' > '$M/spawn'; ls '$M/procs' | sort -n | tail -1")
expect "PCFS_ variables are pcfs's own: the writer's are not passed on" "$(out "$id")" "$id"
expect "env=-K of a bad name: EINVAL" "$(write_err "$M/spawn" 'sh env=-1X true')" "Invalid argument"
expect "env=K=V and env=-K of one name: EINVAL" "$(write_err "$M/spawn" 'sh env=A=1 env=-A true')" "Invalid argument"

# --- the context is taken at the write -------------------------------------------------
# A line with no newline runs at close; this writer exits right after its
# write and never closes: the kernel closes for it, after its memory is gone.
before=$(ls "$M/procs" | sort -n | tail -1)
(cd "$PROJ/sub" && FOO=late python3 -c "
import os
fd = os.open('$M/spawn', os.O_WRONLY)
os.write(fd, b'sh pwd; echo \$FOO')
os._exit(0)")
wait_until 400 sh -c "[ \$(ls '$M/procs' | sort -n | tail -1) -gt $before ]"
last=$(ls "$M/procs" | sort -n | tail -1)
expect "a writer that exits at once: its directory and environment, from the write" \
	"$(out "$last" | tr '\n' ' ')" "$PROJ/sub late "

# --- files for stdin, stdout and stderr ------------------------------------------------
seq 3 > "$PROJ/in.txt"
id=$(spawn_in "$PROJ" 'sh stdin=./in.txt stdout=./out.txt sed s/^/line/')
timeout 60 cat "$M/procs/$id/wait" >/dev/null
expect "stdin= and stdout= files, relative to the task's directory" "$(cat "$PROJ/out.txt" | tr '\n' ' ')" "line1 line2 line3 "
expect "... and procs/ID/stdout has nothing (it went to the file)" "$(cat "$M/procs/$id/stdout")" ""
id=$(spawn_in "$PROJ" 'sh stdout=./out.txt echo again')
timeout 60 cat "$M/procs/$id/wait" >/dev/null
expect "stdout=PATH truncates, as > does" "$(cat "$PROJ/out.txt")" "again"
id=$(spawn_in "$PROJ" 'sh stdout=append:out.txt echo more')
timeout 60 cat "$M/procs/$id/wait" >/dev/null
expect "stdout=append:PATH appends, as >> does" "$(cat "$PROJ/out.txt" | tr '\n' ' ')" "again more "
id=$(spawn_in "$PROJ" 'sh stdout=truncate:out.txt stderr=append:err.txt echo t; echo e >&2')
timeout 60 cat "$M/procs/$id/wait" >/dev/null
id=$(spawn_in "$PROJ" 'sh stderr=append:err.txt echo e2 >&2')
timeout 60 cat "$M/procs/$id/wait" >/dev/null
expect "truncate:PATH and stderr=append:PATH, paths without a '/'" \
	"$(cat "$PROJ/out.txt") $(cat "$PROJ/err.txt" | tr '\n' ' ')" "t e e2 "
id=$(spawn_in "$PROJ" 'sh 4 stdout=./four.txt echo task $PCFS_ID')
for i in 0 1 2 3; do timeout 60 cat "$M/procs/$((id + i))/wait" >/dev/null; done
expect "COUNT tasks share one open of the file, as one shell redirection does" \
	"$(sort "$PROJ/four.txt" | tr '\n' ' ')" "task $id task $((id + 1)) task $((id + 2)) task $((id + 3)) "
id=$(spawn_in "$PROJ" 'sh stdout=./both.txt stderr=./both.txt echo out; echo err >&2; echo out2')
timeout 60 cat "$M/procs/$id/wait" >/dev/null
expect "stdout and stderr on one file share it (2>&1): nothing written over" \
	"$(cat "$PROJ/both.txt" | tr '\n' ' ')" "out err out2 "
id=$(spawn_in "$PROJ" 'cpu time=100ms stdout=./cpu.txt')
timeout 60 cat "$M/procs/$id/wait" >/dev/null
expect_match "a built-in's output goes to its file too" "$(cat "$PROJ/cpu.txt")" '^cpu ops=[0-9]+ '

before=$(ls "$M/procs" | sort -n | tail -1)
# one write of two lines (bash's printf would write each line on its own)
printf 'sh stdout=./created.txt echo 1\nsh stdout=./no/such/dir/x echo 2\n' > "$WORKDIR/two"
exec 3<>"$M/spawn"
(cd "$PROJ" && cat "$WORKDIR/two" >&3) 2>/dev/null
read -r reply <&3
exec 3>&-
expect_match "a file that cannot be opened refuses the write, saying why on the descriptor" \
	"$reply" '^error: line 2: stdout=./no/such/dir/x: No such file or directory'
expect "... nothing started" "$(ls "$M/procs" | sort -n | tail -1)" "$before"
check_fails "... and the file line 1 would have made is not left behind" test -e "$PROJ/created.txt"
check "... the reason is in /log" grep -q 'stdout=./no/such/dir/x: No such file or directory' "$M/log"
expect "stdin=append:... makes no sense: EINVAL" "$(write_err "$M/spawn" 'sh stdin=append:x cat')" "Invalid argument"
expect "stderr= takes no channel: EINVAL" "$(write_err "$M/spawn" 'sh stderr=chan true')" "Invalid argument"
expect "a thread cannot have files: EINVAL" "$(write_err "$M/spawn" 'sleep as=thread stdout=./x')" "Invalid argument"
expect "a file inside the mount itself is refused (a channel's name does that)" \
	"$(write_err "$M/spawn" "sh stdout=$M/channels/x/put echo")" "Invalid argument"
check "... saying why" grep -q "a file inside pcfs's own mount" "$M/log"
mkfifo "$PROJ/fifo"
expect "a FIFO with no reader is refused, not waited on" \
	"$(cd "$PROJ" && write_err "$M/spawn" 'sh stdout=./fifo echo')" "No such device or address"

# --- pools: each line runs where its writer stood ----------------------------------------
mkdir "$M/pools/ctx"
echo workers=2 > "$M/pools/ctx/ctl"
(cd "$PROJ" && FOO=pool PATH="$PROJ/bin:$PATH" bash -c "printf 'exec ./run.sh\nexec pcfs-test-tool\nsh cwd=sub stdout=./p.txt pwd\n' > '$M/pools/ctx/submit'")
expect "a pool's exec ./x runs in the writer's directory, with its environment" \
	"$(timeout 60 cat "$M/pools/ctx/futures/1/result")" "run.sh in $PROJ with FOO=pool"
expect "... its PATH" "$(timeout 60 cat "$M/pools/ctx/futures/2/result")" "tool from bin/ on the writer's PATH"
timeout 60 cat "$M/pools/ctx/futures/3/wait" >/dev/null
expect "... relative cwd= and stdout= files" "$(cat "$PROJ/sub/p.txt")" "$PROJ/sub"
got=$(cd "$PROJ/sub" && FOO=m bash -c "exec 3<>'$M/pools/ctx/map'; printf 'sh echo \$PCFS_ID \$FOO \$(pwd)\n%.0s' 1 2 3 >&3; cat <&3")
expect "map: every line where its writer stands, in order" "$(echo "$got" | awk '{ print $2, $3 }' | sort -u)" "m $PROJ/sub"
expect "a file line on a built-in future is refused" "$(write_err "$M/pools/ctx/submit" 'cpu stdout=./x')" "Invalid argument"

# the issue's own example: a template of the project's command, seq from its directory
printf '#!/bin/sh\necho $(( $1 * $1 ))\n' > "$PROJ/square"; chmod +x "$PROJ/square"
mkdir "$M/pools/sq"
echo "workers=2 template='exec ./square {}'" > "$M/pools/sq/ctl"
got=$(cd "$PROJ" && bash -c "exec 3<>'$M/pools/sq/map'; seq 1000 >&3; cat <&3" | md5sum)
expect "template='exec ./square {}': seq 1000 > map from the project gives 1000 squares in order" \
	"$got" "$(seq 1000 | awk '{ print $1 * $1 }' | md5sum)"

check "unmount: the daemon exits 0" pcfs_umount
finish
