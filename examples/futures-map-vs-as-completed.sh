#!/usr/bin/env bash
# futures-map-vs-as-completed.sh MOUNTPOINT - the seed's concurrent.futures
# example (section 2): square(x) for [3, 1, 4, 2], each sleeping a while.
# Executor.map gives results in submission order; as_completed in the order
# the tasks finish; both take about as long as the longest task.
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: futures-map-vs-as-completed.sh MOUNTPOINT}}
P=$M/pools/squares
mkdir -p "$P"
echo workers=4 > "$P/ctl"
# the workers start on the first submit: start them now, so that the times
# below are the tasks' and not the workers' start
echo noop > "$P/submit"
until grep -qx 'ready: 4' "$P/status"; do sleep 0.05; done
work=$(mktemp); trap 'rm -f "$work"' EXIT
# square(x): sleep, then print x*x  (3 -> 0.3 s, 1 -> 0.1 s, 4 -> 0.4 s, 2 -> 0.2 s)
for x in 3 1 4 2; do echo "sh sleep 0.$x; echo $((x * x))"; done > "$work"
now() { date +%s.%N; }

t0=$(now)
exec 3<>"$P/map"; cat "$work" >&3          # executor.map(square, nums)
results=$(tr '\n' ' ' <&3); exec 3>&-
printf 'executor.map: [%s]  (%.2f s)\n' "$(echo $results | sed 's/ /, /g')" "$(echo "$(now) - $t0" | bc)"

t0=$(now)
exec 3<>"$P/as_completed"; cat "$work" >&3 # [submit(square, x) for x in nums]
while read -r id result; do                 # for fut in as_completed(futures)
	echo "as_completed result: $result  (future $id)"
done <&3
exec 3>&-
printf 'as_completed took %.2f s\n' "$(echo "$(now) - $t0" | bc)"

echo shutdown > "$P/ctl"
