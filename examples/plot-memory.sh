#!/usr/bin/env bash
# plot-memory.sh MOUNTPOINT OUTDIR - the seed's memory section as pictures:
#
#   OUTDIR/memory-growth.png   RSS and VSZ of a `mem` task growing step by
#                              step, over time, from its memlog
#   OUTDIR/cow-shared-copied.png  pages a forked child still shares with its
#                              parent vs pages copied, as the child writes 0,
#                              25, 50, 75 and 100% of them, from cow
#
# with the data beside them (memory-growth.dat, cow.dat).  Needs gnuplot
# (Debian: gnuplot-nox).
set -euo pipefail
M=${1:?usage: plot-memory.sh MOUNTPOINT OUTDIR}
OUT=${2:?usage: plot-memory.sh MOUNTPOINT OUTDIR}
P=$M/procs
command -v gnuplot >/dev/null || { echo "plot-memory.sh: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
mkdir -p "$OUT"

start() {   # start LINE -> prints the new id
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3; read -r id <&3; exec 3>&-
	echo "$id"
}
kv() { sed -n "s/^$2: //p" "$P/$1/$3"; }   # kv ID KEY FILE
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

echo "== 1. Demand paging over time: mem size=192M step=24M rate=250ms"
echo "VSZ takes the whole region at once; RSS climbs a step each time 24 MiB more are touched."
# (it holds until killed once its steps are done and sampled: with time= a
# loaded machine, slow to touch the pages, could cut the last steps short)
g=$(start 'mem size=192M step=24M rate=250ms time=10m')
until_out "$g" touched=
n=$(wc -l < "$P/$g/memlog")
for _ in $(seq 400); do [ "$(wc -l < "$P/$g/memlog")" -ge $((n + 2)) ] && break; sleep 0.05; done
echo kill > "$P/$g/ctl"; cat "$P/$g/wait" >/dev/null
# memlog: t_ms vsz_kib rss_kib -> seconds, MiB
awk '{ printf "%.3f %.1f %.1f\n", $1 / 1000, $2 / 1024, $3 / 1024 }' "$P/$g/memlog" > "$OUT/memory-growth.dat"
echo "$(wc -l < "$OUT/memory-growth.dat") samples (t_s vsz_mib rss_mib), every few shown:"
awk 'NR % 4 == 1' "$OUT/memory-growth.dat" | sed 's/^/  /'

# One axis for both, unless VSZ dwarfs RSS (a sanitizer build reserves
# terabytes of shadow): then VSZ gets the right-hand axis of its own.
read -r vmax rmax < <(awk '$2 > v { v = $2 } $3 > r { r = $3 } END { print v + 0, r + 0 }' "$OUT/memory-growth.dat")
if awk -v v="$vmax" -v r="$rmax" 'BEGIN { exit !(v > 4 * r + 64) }'; then
	vaxes=x1y2; vtitle="VSZ (virtual, right axis)"; y2="set y2label \"VSZ (MiB)\"; set y2tics; set ytics nomirror"
else
	vaxes=x1y1; vtitle="VSZ (virtual: reserved)"; y2=""
fi
gnuplot <<GP
set terminal pngcairo size 900,540 font "sans,11"
set output "$OUT/memory-growth.png"
set title "mem size=192M step=24M rate=250ms: demand paging (task $g, from memlog)"
set xlabel "time since start (s)"
set ylabel "MiB"
$y2
set yrange [0:*]
set y2range [0:*]
set key bottom right
set grid
plot "$OUT/memory-growth.dat" using 1:3 axes x1y1 with steps lw 2 title "RSS (resident: touched)", \
     "$OUT/memory-growth.dat" using 1:2 axes $vaxes with lines lw 2 dt 2 title "$vtitle"
GP
echo "wrote $OUT/memory-growth.png"

echo
echo "== 2. Copy-on-write: cow size=64M write=W%: the child's pages, shared vs copied"
printf '%-8s %10s %10s %8s\n' "write%" "shared_MiB" "copied_MiB" "shared%"
: > "$OUT/cow.dat"
for w in 0 25 50 75 100; do
	c=$(start "cow size=64M write=$w% time=10m")   # ended below
	until_out "$c" 'cow-child written='
	ch=$(child_of "$c")
	s=$(kv "$ch" shared_kib cow); k=$(kv "$ch" copied_kib cow); pct=$(kv "$ch" shared_pct cow)
	echo "$w $((s / 1024)) $((k / 1024)) $pct" >> "$OUT/cow.dat"
	printf '%-8s %10s %10s %8s\n' "$w%" "$((s / 1024))" "$((k / 1024))" "$pct"
	echo term > "$P/$c/ctl"
	cat "$P/$c/wait" "$P/$ch/wait" >/dev/null
done
echo "Each page the child writes is copied; the others stay shared with the parent."

gnuplot <<GP
set terminal pngcairo size 900,540 font "sans,11"
set output "$OUT/cow-shared-copied.png"
set title "cow size=64M: the forked child's private pages (from cow, by pagemap)"
set xlabel "pages written by the child (write=%)"
set ylabel "MiB"
set yrange [0:*]
set style data histograms
set style histogram rowstacked
set style fill solid 0.8 border -1
set boxwidth 0.6
set key below
set grid ytics
plot "$OUT/cow.dat" using 2:xtic(sprintf("%d%%", \$1)) title "shared with the parent" lc rgb "#4477aa", \
     "" using 3 title "copied (written)" lc rgb "#cc6677"
GP
echo "wrote $OUT/cow-shared-copied.png"
