#!/usr/bin/env bash
# Every `key: value` file and its .json twin, through a real mount: the same
# field names in the same order, and proper JSON types for the text values
# (numbers are numbers, booleans true/false for 1/0, null for an empty value:
# Python's None).  The two are separate snapshots of live objects, so values
# are compared by type, not equality.  Covers /stats, /sys/meminfo, a task's
# status mem cow sched (a process, a thread, a cow child, an exec'd program,
# a failed one), a pool's status and progress, a future's status.
. "$(dirname "$0")/lib.sh"
pcfs_mount
P=$M/procs

start() {   # start LINE -> the first new id
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3; read -r id <&3; exec 3>&-
	echo "$id"
}

# Fields whose text may look like a number while being a string
# (running_futures: a list of `ID[:NAME]`, one id alone when one runs).
FREE_TEXT='^(cmd|name|error|note|reason|running_futures)$'

# twin FILE: compare FILE with FILE.json
twin() {
	local f=$1 what=${1#"$M"/} text json
	# memory figures appear with the first sample: give a loaded machine time
	wait_until 200 cat "$f" >/dev/null 2>&1
	text=$(cat "$f" 2>&1) || { bad "$what: readable ($text)"; return; }
	json=$(cat "$f.json" 2>&1) || { bad "$what.json: readable ($json)"; return; }
	if ! jq -e 'type == "object"' <<<"$json" >/dev/null 2>&1; then
		bad "$what.json is one JSON object"; printf '     | %s\n' "$json" | head -3; return
	fi
	expect "$what: the same keys in the same order as $what.json" \
		"$(sed 's/:.*//' <<<"$text" | tr '\n' ' ')" "$(jq -r 'keys_unsorted[]' <<<"$json" | tr '\n' ' ')"
	# key, JSON type and JSON value beside the text value, one field a line
	local diffs
	diffs=$(paste -d '\t' <(jq -r 'to_entries[] | [.key, (.value | type), (.value | tostring)] | @tsv' <<<"$json") \
			      <(sed -E 's/^[^:]*: ?//' <<<"$text") |
		awk -F '\t' -v free="$FREE_TEXT" '
		function num(s) { return s ~ /^-?[0-9]+(\.[0-9]+)?$/ }
		{
			key = $1; type = $2; tv = $4; why = ""
			if (type == "null" && tv != "")                      why = "null in JSON, \"" tv "\" in text"
			else if (type == "number" && !num(tv))                why = "a number in JSON, \"" tv "\" in text"
			else if (type == "boolean" && tv != "0" && tv != "1") why = "a boolean in JSON, \"" tv "\" in text"
			else if (type == "string" && num(tv) && key !~ free)  why = "a number (" tv ") as a JSON string"
			else if (type == "array" || type == "object")         why = "a nested " type " has no text form"
			if (why != "") print "     | " key ": " why
		}')
	if [ -z "$diffs" ]; then ok "$what: every value has its JSON type ($(jq length <<<"$json") fields)"
	else bad "$what: values and JSON types agree"; echo "$diffs"; fi
}

# live tasks of each kind, sampled at least once (they run until killed,
# however long a loaded machine takes over the checks)
proc=$(start 'sleep time=10m name=json-sleeper')
thr=$(start 'cpu as=thread gil=0 time=10m')
cow=$(start 'cow size=16M write=50% time=10m')
exe=$(start 'exec sleep 600')
failed=$(start 'exec /nonexistent/program')
child=
for _ in $(seq 2000); do
	for d in "$P"/*/; do
		[ "$(jq -r .parent "$d/status.json" 2>/dev/null)" = "$cow" ] && child=$(basename "$d")
	done
	[ -n "$child" ] && grep -q 'cow-child written=' "$P/$cow/stdout" 2>/dev/null && break
	sleep 0.05
done
check "the cow child is a task" test -n "$child"
# a few samples of each ([memory] sample_period = 200ms): waited for in
# their memlogs, not slept for (the bound only catches a hang)
few_samples() {
	local id
	for id in $proc $thr $cow $child $exe; do
		[ "$(wc -l < "$P/$id/memlog")" -ge 3 ] || return 1
	done
}
check "a few samples of each live task" wait_until 2000 few_samples

twin "$M/stats"
twin "$M/sys/meminfo"
for id in $proc $thr $cow $child $exe; do
	for f in status mem cow sched; do twin "$P/$id/$f"; done
done
twin "$P/$failed/status"

# an ended task keeps its figures; both forms say so alike
echo kill > "$P/$proc/ctl" 2>/dev/null; cat "$P/$proc/wait" >/dev/null
for f in status mem sched; do twin "$P/$proc/$f"; done
expect "an ended task: exitcode is a number, mem live is false" \
	"$(jq -r '[(.exitcode | type), .alive] | @tsv' "$P/$proc/status.json") $(jq -r .live "$P/$proc/mem.json")" \
	$'number\tfalse false'

# a pool, mid-way and drained; a done, a failed and a pending future
mkdir "$M/pools/j"
echo workers=1 > "$M/pools/j/ctl"
exec 3<>"$M/pools/j/submit"
# (the sleep is killed below: future 4 stays pending behind it however
# long the checks take)
printf 'sh echo 42\nsh exit 3\nsleep time=10m\nsh echo never\n' >&3
for _ in 1 2 3 4; do read -r _ <&3; done
exec 3>&-
cat "$M/pools/j/futures/2/wait" >/dev/null
twin "$M/pools/j/status"
twin "$M/pools/j/progress"
for f in 1 2 3 4; do twin "$M/pools/j/futures/$f/status"; done
expect "a pending future: exitcode null, slot null" \
	"$(jq -c '[.state, .exitcode, .slot]' "$M/pools/j/futures/4/status.json")" '["pending",null,null]'
echo 'shutdown cancel' > "$M/pools/j/ctl"
echo kill > "$M/pools/j/futures/3/ctl"
cat "$M/pools/j/futures/3/wait" >/dev/null
twin "$M/pools/j/progress"
twin "$M/pools/j/futures/4/status"

for id in $thr $cow $exe; do echo kill > "$P/$id/ctl" 2>/dev/null; done
check "unmount" pcfs_umount
finish
