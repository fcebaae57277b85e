#!/usr/bin/env bash
# Command templates (issue 17) through a real mount: a pool with
# template='...' takes inputs, not task lines, on submit, map and
# as_completed; {} {N} {.} {/} {#} {%}; values that arrive literally; bad
# templates and bad inputs refused whole; the template removed or changed
# while futures wait.
. "$(dirname "$0")/lib.sh"
pcfs_mount "[limits]
max_queued = 5000"
P=$M/pools

# one write of several lines (bash's printf writes line by line)
write1() { printf "$1" > "$WORKDIR/write1"; cat "$WORKDIR/write1"; }

# The program the templates run, by absolute path (a relative one is the
# writer's cwd's business, not this test's).
cat > "$WORKDIR/square" <<'EOF'
#!/bin/sh
echo $(($1 * $1))
EOF
chmod +x "$WORKDIR/square"

# --- seq 1000 through map: 1000 results in order, as Executor.map ---
mkdir "$P/sq"
echo "workers=2 template='exec $WORKDIR/square {}'" > "$P/sq/ctl"
expect "ctl shows the template, quoted as it can be written back" "$(cat "$P/sq/ctl")" \
	"workers=2 type=process gil=0 template='exec $WORKDIR/square {}'"
expect "status shows it" "$(sed -n 's/^template: //p' "$P/sq/status")" "exec $WORKDIR/square {}"
expect "status.json too" "$(jq -r .template "$P/sq/status.json")" "exec $WORKDIR/square {}"
exec 3<>"$P/sq/map"
seq 1000 >&3
cat <&3 > "$WORKDIR/squares"
exec 3>&-
expect "seq 1000 > map gives 1000 results in input order" \
	"$(md5sum < "$WORKDIR/squares")" "$(seq 1000 | awk '{ print $1 * $1 }' | md5sum)"
expect "each future runs the expanded line" "$(sed -n 's/^cmd: //p' "$P/sq/futures/7/status")" \
	"exec $WORKDIR/square 7"
expect "one future per input" "$(sed -n 's/^submitted: //p' "$P/sq/status")" "1000"

# --- as_completed and submit take inputs too ---
exec 3<>"$P/sq/as_completed"
seq 1001 1005 >&3
got=$(cat <&3 | sort -n)
exec 3>&-
expect "as_completed gives ID RESULT per input" "$(echo "$got" | tr '\n' ' ')" \
	"1001 1002001 1002 1004004 1003 1006009 1004 1008016 1005 1010025 "
exec 3<>"$P/sq/submit"
echo 12 >&3
read -r id <&3
exec 3>&-
expect "submit gives the id back" "$id" "1006"
expect "its result" "$(cat "$P/sq/futures/$id/result")" "144"

# --- {#} and {%}: the sequence number, and the slot each future ran on ---
mkdir "$P/slots"
echo "workers=2 template='sh sleep 0.02; echo {#} {%} \$PCFS_SLOT \$PCFS_ID'" > "$P/slots/ctl"
exec 3<>"$P/slots/map"
seq 40 >&3
cat <&3 > "$WORKDIR/slots"
exec 3>&-
expect "40 results" "$(wc -l < "$WORKDIR/slots")" "40"
expect "{#} numbers the inputs from 1, as the futures' ids" \
	"$(awk '$1 != NR || $4 != NR' "$WORKDIR/slots")" ""
expect "{%} is the slot the future ran on (PCFS_SLOT), 1 or 2 with workers=2" \
	"$(awk '$2 != $3 || ($2 != 1 && $2 != 2)' "$WORKDIR/slots")" ""
mism=
while read -r n s _; do
	st=$(cat "$P/slots/futures/$n/status")
	[ "$(sed -n 's/^slot: //p' <<< "$st")" = "$s" ] || mism+=" $n"
	[ "$(sed -n 's/^cmd: //p' <<< "$st")" = "sh sleep 0.02; echo $n $s \$PCFS_SLOT \$PCFS_ID" ] \
		|| mism+=" cmd$n"
done < "$WORKDIR/slots"
expect "each future's status says that slot, and its cmd has it filled in" "$mism" ""
task=$(sed -n 's/^task: //p' "$P/slots/futures/40/status")
slot=$(awk 'NR == 40 { print $2 }' "$WORKDIR/slots")
expect "and that slot's worker is the task that ran it" \
	"$(readlink "$P/slots/workers/$slot")" "../../../procs/$task"

# --- {#} under concurrent writers: each input numbered with the id it gets ---
# (writes of 50 lines each, so that one is being expanded while another is
# published; to submit, map and as_completed, since the kernel takes a
# file's writes one at a time)
mkdir "$P/conc"
echo "workers=2 template='exec /bin/echo {#} {}'" > "$P/conc/ctl"
writers=()
into=(submit map as_completed submit)
for w in 1 2 3 4; do   # 10 paragraphs of 50: awk writes each as one write
	for i in $(seq 10); do seq -f "$w.$i.%g" 50; echo; done > "$WORKDIR/conc.in.$w"
done
for w in 1 2 3 4; do
	awk -v RS= -v out="$P/conc/${into[w - 1]}" \
		'{ print > out; if (close(out)) print "write " NR " failed" }' \
		"$WORKDIR/conc.in.$w" > "$WORKDIR/conc.$w" 2>&1 &
	writers+=($!)
done
wait "${writers[@]}"   # (not the daemon: it is a job of this shell too)
expect "4 writers x 10 writes of 50 inputs, none refused" "$(cat "$WORKDIR"/conc.[1-4])" ""
mism=
for f in $(seq 2000); do
	read -r n _ < "$P/conc/futures/$f/result"
	[ "$n" = "$f" ] || mism+=" $f:$n"
done
expect "every future's {#} is its id" "${mism:0:200}" ""
expect "and every input is there once" \
	"$(cat "$P"/conc/futures/*/result | awk '{ print $2 }' | sort -u | wc -l)" "2000"

# --- values arrive literally: spaces, both quotes, $(...), globs ---
mkdir "$P/lit"
cat > "$P/lit/ctl" <<'EOF'
workers=1 template="exec /usr/bin/printf '[%s]\n' {} {1} {2} {.} {/}"
EOF
hostile="a b 'c\" \$(touch $WORKDIR/pwned) \`touch $WORKDIR/pwned2\` * ~ \\ ; | & {} {%}"
exec 3<>"$P/lit/submit"
printf '%s\n' "$hostile" >&3
read -r id <&3
exec 3>&-
expect "exec: {} is one argument holding the input as written, {1} {2} its fields" \
	"$(cat "$P/lit/futures/$id/result")" \
	"$(printf '[%s]\n' "$hostile" a b "$hostile" "${hostile##*/}")"
printf '%s\n' "dir/sub.d/archive.tar.gz" > "$P/lit/submit"
expect "{.} drops the extension, {/} keeps the base name" \
	"$(sed -n 4,5p "$P/lit/futures/2/result" | tr '\n' ' ')" "[dir/sub.d/archive.tar] [archive.tar.gz] "
cat > "$P/lit/ctl" <<'EOF'
template="sh printf \"[%s]\n\" {} \"x{2}y\" '{1}'"
EOF
printf '%s\n' "$hostile" > "$P/lit/submit"
expect "sh: the same input is one word, also inside the template's own quotes" \
	"$(cat "$P/lit/futures/3/result")" "$(printf '[%s]\n' "$hostile" xby a)"
check_fails "nothing in the input ran" test -e "$WORKDIR/pwned" -o -e "$WORKDIR/pwned2"
printf '\n' > "$P/lit/submit"
expect "a blank line is an input (an empty one), as in GNU parallel" \
	"$(cat "$P/lit/futures/4/result")" "$(printf '[%s]\n' '' xy '')"

# --- refusals: a bad template at ctl, a bad input at submit; all or nothing ---
refuse_ctl() {   # refuse_ctl WHAT LINE PATTERN: EINVAL, the reason on the descriptor, nothing changes
	local before=$(cat "$P/sq/ctl") reply
	exec 4<>"$P/sq/ctl"
	expect "$1: EINVAL" "$( { printf '%s\n' "$2" >&4; } 2>&1 | sed 's/.*: //')" "Invalid argument"
	reply=$(timeout 5 head -c 600 <&4)
	exec 4>&-
	expect_match "$1: the reason on the same descriptor" "$reply" "$3"
	expect "$1: the settings are as they were" "$(cat "$P/sq/ctl")" "$before"
}
refuse_ctl "a template without a workload" "template='bogus {}'" "begins with its workload"
refuse_ctl "a template whose lines do not parse" "template='exec timeout=soon /bin/true {}'" \
	"cannot run here .*timeout"
refuse_ctl "{%} in a built-in" "template='sleep time={%}'" "goes in an exec or sh command"
refuse_ctl "a placeholder sh would quote otherwise" "template='sh echo \`echo {}\`'" "backquote"
refuse_ctl "a COUNT" "template='exec 3 /bin/echo {}'" "one future per input"
refuse_ctl "a good setting beside a bad template" "workers=7 template='bogus {}'" "begins with its workload"
expect_match "the refusal is in /log" "$(tail -n 20 "$M/log")" "begins with its workload"

mkdir "$P/raw"
echo "template='sleep time={}ms'" > "$P/raw/ctl"
exec 3<>"$P/raw/submit"
expect "a bad input refuses the whole write: EINVAL" \
	"$( { write1 '1\n2 timeout=1\n3\n' >&3; } 2>&1 | sed 's/.*: //')" "Invalid argument"
reply=$(timeout 5 head -c 600 <&3)
exec 3>&-
expect_match "with the line and the reason on the descriptor" "$reply" \
	"line 2: a sleep template takes values without blanks"
expect "and nothing was queued" "$(sed -n 's/^submitted: //p' "$P/raw/status")" "0"
expect "an input with a control character: EINVAL" \
	"$( { write1 '5\nb\001d\n' > "$P/raw/submit"; } 2>&1 | sed 's/.*: //')" "Invalid argument"
expect_match "said so in /log" "$(tail -n 5 "$M/log")" "line 2: the input holds control character 0x01 at column 2"
expect "still nothing queued" "$(sed -n 's/^submitted: //p' "$P/raw/status")" "0"
write1 '5\n10\n' > "$P/raw/submit"
expect "built-in templates run: sleep time=5ms" "$(sed -n 's/^cmd: //p' "$P/raw/futures/1/status")" \
	"sleep time=5ms"
expect "and end done" "$(cat "$P/raw/futures/2/wait")" "done"

# --- each future keeps the template it was submitted under; template= removes it ---
mkdir "$P/chg"
echo "workers=1 template='sh echo A{}'" > "$P/chg/ctl"
echo pause > "$P/chg/ctl"
echo 1 > "$P/chg/submit"
echo "template='sh echo B{}'" > "$P/chg/ctl"
echo 2 > "$P/chg/submit"
expect "changing it while futures wait is allowed" "$(sed -n 's/^template: //p' "$P/chg/status")" "sh echo B{}"
echo resume > "$P/chg/ctl"
expect "the waiting future runs the template it came with" "$(cat "$P/chg/futures/1/result")" "A1"
expect "the next one the new one" "$(cat "$P/chg/futures/2/result")" "B2"
echo "template=" > "$P/chg/ctl"
expect "template= removes it" "$(cat "$P/chg/ctl")" "workers=1 type=process gil=0"
expect "status shows none" "$(jq -r .template "$P/chg/status.json")" "null"
echo 'sh echo a task line again' > "$P/chg/submit"
expect "lines are task lines again" "$(cat "$P/chg/futures/3/result")" "a task line again"
expect "and blank lines are skipped again" \
	"$( { printf '\n' > "$P/chg/submit"; } 2>&1 | sed 's/.*: //')" "Invalid argument"

# --- with a [state] dir the template, and the {%} still to fill, come back ---
pcfs_umount
pcfs_mount "[state]
dir = $WORKDIR/state"
mkdir "$M/pools/st"
echo "workers=1 template='sh echo {#}:{%}:{}'" > "$M/pools/st/ctl"
echo pause > "$M/pools/st/ctl"
write1 'a\nb c\n' > "$M/pools/st/submit"
expect "a future not yet run shows {%}" "$(sed -n 's/^cmd: //p' "$M/pools/st/futures/2/status")" \
	"sh echo 2:{%}:'b c'"
pcfs_umount
pcfs_mount "[state]
dir = $WORKDIR/state"
expect "after a restart the pool has its template" "$(cat "$M/pools/st/ctl")" \
	"workers=1 type=process gil=0 paused template='sh echo {#}:{%}:{}'"
echo resume > "$M/pools/st/ctl"
expect "and its futures fill in the slot they run on" \
	"$(cat "$M/pools/st/futures/1/result" "$M/pools/st/futures/2/result")" "1:1:a
2:1:b c"

finish
