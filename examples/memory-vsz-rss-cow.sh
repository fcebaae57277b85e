#!/usr/bin/env bash
# memory-vsz-rss-cow.sh MOUNTPOINT - the seed's section 4 through pcfs:
# virtual vs resident memory (demand paging), the heap and the stack growing,
# and copy-on-write after fork, with every figure read from /procs/ID.
#
#   ps -o vsz,rss PID          ->  cat procs/ID/mem      (vsz, rss, pss, uss ...)
#   pmap -x PID                ->  cat procs/ID/maps
#   RSS over time              ->  cat procs/ID/memlog   (t_ms vsz_kib rss_kib)
#   pages shared after fork    ->  cat procs/ID/cow      (shared, copied; region_*: the
#                                                        largest region's own)
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: memory-vsz-rss-cow.sh MOUNTPOINT}}
P=$M/procs

start() {   # start LINE -> prints the new id
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3; read -r id <&3; exec 3>&-
	echo "$id"
}
kv() { sed -n "s/^$2: //p" "$P/$1/$3"; }   # kv ID KEY FILE
mib() { echo $(( $1 / 1024 )); }
until_out() {   # until_out ID WORD: wait until the task printed WORD
	for _ in $(seq 2000); do grep -q "$2" "$P/$1/stdout" && return 0; sleep 0.05; done
	return 1
}
child_of() {    # the task whose status says parent: $1
	local d
	for _ in $(seq 1000); do
		for d in "$P"/*/; do
			grep -qx "parent: $1" "$d/status" 2>/dev/null && { basename "$d"; return 0; }
		done
		sleep 0.05
	done
	return 1
}

echo "== 1. Demand paging: VSZ is reserved at once, RSS grows only as pages are touched"
# (tasks that are killed when read run for minutes: however slow the machine,
# they are still there to be read)
a=$(start 'mem size=256M touch=0% time=10m')
b=$(start 'mem size=256M touch=100% time=10m')
until_out "$a" touched=; until_out "$b" touched=
# the region's own line in maps: the process's totals also hold libc, the
# allocator's arenas and, in a sanitizer build, terabytes of shadow
region() { awk '$2 == 262144 && $6 == "[anon]"' "$P/$1/maps" | tail -1; }
region_rss() { region "$1" | awk '{ print $3 }'; }
printf '%-28s VSZ %4s MiB   RSS %4s MiB   the region: RSS %4s MiB\n' \
	"mem size=256M touch=0%:" "$(mib "$(kv "$a" vsz mem)")" "$(mib "$(kv "$a" rss mem)")" \
	"$(mib "$(region_rss "$a")")" \
	"mem size=256M touch=100%:" "$(mib "$(kv "$b" vsz mem)")" "$(mib "$(kv "$b" rss mem)")" \
	"$(mib "$(region_rss "$b")")"
echo "The untouched region is in the address space (VSZ) but not in RAM (RSS)."
echo "Its line in maps (pmap -x: Address Kbytes RSS Dirty Mode Mapping):"
region "$a" | sed 's/^/  touch=0%:   /'
region "$b" | sed 's/^/  touch=100%: /'
echo kill > "$P/$a/ctl"; echo kill > "$P/$b/ctl"

echo
echo "Growing gradually (mem size=128M step=32M rate=400ms); memlog samples it:"
# (it holds until killed once its steps are done and sampled: with time= a
# loaded machine, slow to touch the pages, could cut the last steps short)
g=$(start 'mem size=128M step=32M rate=400ms time=10m')
until_out "$g" touched=
n=$(wc -l < "$P/$g/memlog")
for _ in $(seq 400); do [ "$(wc -l < "$P/$g/memlog")" -ge $((n + 2)) ] && break; sleep 0.05; done
echo kill > "$P/$g/ctl"; cat "$P/$g/wait" >/dev/null
awk 'NR == 1 || $3 != last { printf "  t=%5d ms  VSZ %4d MiB  RSS %4d MiB\n", $1, $2 / 1024, $3 / 1024 }
     { last = $3 }' "$P/$g/memlog"
echo "(kept after the task ended: mem says live: $(kv "$g" live mem))"

echo
echo "== 2. The heap and the stack grow on demand"
h0=$(start "exec awk 'BEGIN{system(\"sleep 600\")}'")
h1=$(start "exec awk 'BEGIN{for(i=0;i<400000;i++)a[i]=i;system(\"sleep 600\")}'")
s0=$(start 'stack depth=10 time=10m')
s1=$(start 'stack depth=4000 time=10m')
until_out "$s0" 'stack depth='; until_out "$s1" 'stack depth='
for _ in $(seq 400); do [ "$(kv "$h1" heap mem 2>/dev/null || echo 0)" -gt 10000 ] && break; sleep 0.05; done
printf '%-34s %-7s %6s KiB\n' \
	"awk, empty program:" "[heap]" "$(kv "$h0" heap mem)" \
	"awk, a 400000-entry array:" "[heap]" "$(kv "$h1" heap mem)" \
	"stack depth=10:" "[stack]" "$(kv "$s0" stack mem)" \
	"stack depth=4000 (1 KiB a frame):" "[stack]" "$(kv "$s1" stack mem)"
grep '\[stack\]' "$P/$s1/maps" | sed 's/^/  maps: /'
for id in $h0 $h1 $s0 $s1; do echo kill > "$P/$id/ctl" 2>/dev/null || true; done

echo
echo "== 3. Copy-on-write: after fork, parent and child share pages until one writes"
for w in 0 25 100; do
	c=$(start "cow size=128M write=$w% time=10m")
	until_out "$c" 'cow-child written='
	ch=$(child_of "$c")
	printf 'cow size=128M write=%3s%%: child task %s: its %s KiB region: shared %5s pages, copied %5s pages (%s%% shared, method %s)\n' \
		"$w" "$ch" "$(kv "$ch" region_kib cow)" "$(kv "$ch" region_shared cow)" \
		"$(kv "$ch" region_copied cow)" "$(kv "$ch" region_shared_pct cow)" "$(kv "$ch" method cow)"
	printf '    the whole child: shared %s pages, copied %s pages\n' \
		"$(kv "$ch" shared cow)" "$(kv "$ch" copied cow)"
	printf '    the child'"'"'s mem: private_dirty %s KiB, shared_dirty %s KiB\n' \
		"$(kv "$ch" private_dirty mem)" "$(kv "$ch" shared_dirty mem)"
	echo term > "$P/$c/ctl"
	cat "$P/$c/wait" "$P/$ch/wait" >/dev/null
done
echo "Written pages were copied; the rest are still the parent's, shared."
e=$(start 'sh sleep 600')
echo "An exec'd program: cow method $(kv "$e" method cow): $(kv "$e" reason cow)"
echo kill > "$P/$e/ctl"
