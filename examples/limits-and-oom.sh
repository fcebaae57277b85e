#!/usr/bin/env bash
# limits-and-oom.sh MOUNTPOINT - resource control: what systemd-run's
# MemoryMax=, TasksMax=, CPUQuota=, AllowedCPUs= give, on task lines and
# pools (a pool as a slice: its workers bounded together).
#
#   systemd-run -p MemoryMax=128M ...   ->  echo '... mem_max=128M' > spawn
#   systemd-run -p TasksMax=20 ...      ->  echo '... pids_max=20' > spawn
#   systemd-run -p CPUQuota=50% ...     ->  echo '... cpu_max=50%' > spawn
#   taskset -c 0 ...                    ->  echo '... cpus=0' > spawn
#   Slurm's OUT_OF_MEMORY               ->  procs/ID/error: killed by the OOM killer
#
# Each limited task gets a cgroup of its own under the daemon's (/stats says
# which mechanisms are in use); on a host where none can be made the limits
# are refused, and this script says so and stops.
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: limits-and-oom.sh MOUNTPOINT}}
P=$M/procs

start() {   # start LINE -> prints the new id
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3; read -r id <&3; exec 3>&-
	echo "$id"
}
kv() { sed -n "s/^$2: //p" "$P/$1/$3"; }   # kv ID KEY FILE

mech=$(sed -n 's/^cgroup: //p' "$M/stats")
echo "resource control here: $mech"
case $mech in
off*) echo "no cgroup can be made on this host: limits are refused here"; exit 0 ;;
esac

echo "== 1. mem_max: the seed's demand paging under a cap"
# 512 MiB reserved either way; touching all of it needs 512 MiB resident
big=$(start 'mem size=512M touch=100% mem_max=128M time=30s')
small=$(start 'mem size=512M touch=10% mem_max=128M time=1s')
echo "touch=100%: wait -> $(cat "$P/$big/wait"), state $(cat "$P/$big/state"), oom_killed $(kv "$big" oom_killed status)"
echo "  error: $(cat "$P/$big/error")"
echo "touch=10% (about 51 MiB resident): wait -> $(cat "$P/$small/wait"), oom_killed $(kv "$small" oom_killed status)"

echo "== 2. pids_max: a fork bomb is contained"
bomb=$(start "sh pids_max=20 for i in \$(seq 100); do sleep 30 & done; wait")
cat "$P/$bomb/wait" >/dev/null
left=$(sed -n 's/^procs://p' "$P/$bomb/cgroup" | wc -w)
echo "100 background sleeps asked for, $left in its cgroup (at most 20); the shell: $(grep -ci fork "$P/$bomb/stderr" || true) refused forks"
rmdir "$P/$bomb"   # forgetting it kills what it left and removes its cgroup
echo "forgotten: its leftovers killed, its cgroup removed"

echo "== 3. cpu_max: half a CPU"
c=$(start 'cpu cpu_max=50% time=2s')
cat "$P/$c/wait" >/dev/null
awk -v u="$(kv "$c" utime status)" -v s="$(kv "$c" stime status)" -v r="$(kv "$c" runtime status)" \
	'BEGIN { printf "cpu_max=50%%: %.2f s of CPU in %.2f s: %.0f%% of one CPU\n", u + s, r, 100 * (u + s) / r }'

echo "== 4. cpus=0 pins"
p=$(start 'sh cpus=0 grep Cpus_allowed_list /proc/self/status')
cat "$P/$p/wait" >/dev/null
echo "cpus=0: $(tr -s '\t' ' ' < "$P/$p/stdout")"

echo "== 5. kill reaches the whole tree: a double-forked daemon dies too"
d=$(start "sh cgroup=1 (setsid sleep 300 &); sleep 300")
for _ in $(seq 200); do [ "$(sed -n 's/^procs://p' "$P/$d/cgroup" | wc -w)" -ge 2 ] && break; sleep 0.05; done
echo "in its cgroup: $(sed -n 's/^procs: //p' "$P/$d/cgroup")"
echo kill > "$P/$d/ctl"
echo "kill: wait -> $(cat "$P/$d/wait")"
for _ in $(seq 200); do [ "$(sed -n 's/^procs://p' "$P/$d/cgroup" | wc -w)" -eq 0 ] && break; sleep 0.05; done
echo "left in its cgroup: $(sed -n 's/^procs://p' "$P/$d/cgroup" | wc -w)"

echo "== 6. a pool's limits bound its workers together; a future's, its run"
pool=$M/pools/limits-demo
mkdir "$pool"
echo 'workers=2 mem_max=200M' > "$pool/ctl"
echo "pool ctl: $(cat "$pool/ctl")"
submit() { local id; exec 3<>"$pool/submit"; echo "$1" >&3; read -r id <&3; exec 3>&-; echo "$id"; }
# two 150M futures at once on two workers: 300M over the pool's 200M
a=$(submit 'mem size=150M touch=100% time=5s')
b=$(submit 'mem size=150M touch=100% time=5s')
for f in "$a" "$b"; do
	echo "future $f: $(cat "$pool/futures/$f/wait"), $(sed -n 's/^error: //p' "$pool/futures/$f/status")"
done
# a future's own limit: its worker moves into the future's cgroup for the run
c=$(submit 'mem size=512M touch=100% mem_max=128M')
echo "future $c (mem_max=128M): $(cat "$pool/futures/$c/wait"), $(sed -n 's/^error: //p' "$pool/futures/$c/status")"
echo "the pool's cgroup: $(sed -n 's/^cgroup: //p' "$pool/status"), peak $(sed -n 's/^cgroup_mem_peak_kib: //p' "$pool/status") KiB"
echo shutdown > "$pool/ctl"
for _ in $(seq 200); do grep -qx 'state: closed' "$pool/status" && break; sleep 0.05; done
rmdir "$pool"
