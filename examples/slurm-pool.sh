#!/usr/bin/env bash
# slurm-pool.sh MOUNTPOINT - a pool whose futures are Slurm jobs (issue 9).
# The same files as a local pool: submit, futures/ID/{wait,result,exitcode,
# error,slurm_job}, map.  Needs a working Slurm (sbatch on PATH); on a test
# machine `bash tools/slurm-cluster.sh start` makes a single-node cluster.
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: slurm-pool.sh MOUNTPOINT}}
P=$M/pools/hpc
mkdir -p "$P"
echo 'executor=slurm partition=debug workers=64' > "$P/ctl"
echo "ctl: $(cat "$P/ctl")"

# three futures: a shell command, a built-in (pcfs-worker runs it in the job),
# and one that fails; per-line Slurm options come before the command
exec 3<>"$P/submit"
echo 'sh echo "hello from $(hostname -s), Slurm job $SLURM_JOB_ID"' >&3; read -r a <&3
echo 'cpu ops=5000 mem=256M cpus=1' >&3; read -r b <&3
echo 'sh exit 4' >&3; read -r c <&3
exec 3>&-
for f in "$a" "$b" "$c"; do
	state=$(cat "$P/futures/$f/wait")          # blocks until the job ends
	echo "future $f: slurm job $(cat "$P/futures/$f/slurm_job") -> $state," \
		"exitcode $(cat "$P/futures/$f/exitcode")"
done
echo "result of $a: $(cat "$P/futures/$a/result")"
echo "result of $b: $(cat "$P/futures/$b/result")"
echo "error of $c: $(cat "$P/futures/$c/error")"

# Executor.map over ten inputs: ten jobs, results in submission order
work=$(mktemp); trap 'rm -f "$work"' EXIT
for x in $(seq 1 10); do echo "sh echo \$(($x * $x))"; done > "$work"
exec 3<>"$P/map"; cat "$work" >&3
echo "map: $(tr '\n' ' ' <&3)"
exec 3>&-

echo shutdown > "$P/ctl"
