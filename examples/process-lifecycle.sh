#!/usr/bin/env bash
# process-lifecycle.sh MOUNTPOINT - the seed's multiprocessing.Process example
# (section 1) through pcfs: start, is_alive, join, exitcode, terminate.
#
#   p = Process(target=worker); p.start()      ->  echo LINE > spawn
#   p.is_alive()                               ->  cat procs/ID/alive
#   p.join()                                   ->  cat procs/ID/wait
#   p.exitcode                                 ->  cat procs/ID/exitcode
#   p.terminate()                              ->  echo term > procs/ID/ctl
#   multiprocessing.connection.wait(sentinels) ->  echo IDS > wait; cat wait
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: process-lifecycle.sh MOUNTPOINT}}

start() {   # start LINE -> prints the new id
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3; read -r id <&3; exec 3>&-
	echo "$id"
}

echo "Starting the process"
# the worker's work lasts until a file appears (made below): is_alive() and
# exitcode are asked while it surely runs, however slow the machine
go=$(mktemp -u); trap 'rm -f "$go"' EXIT
p=$(start "sh echo \"Worker started, PID \$\$\"; while [ ! -e $go ]; do sleep 0.1; done; echo \"Worker finished\"")
echo "Process started, is_alive(): $(cat "$M/procs/$p/alive")"
echo "exitcode while running: '$(cat "$M/procs/$p/exitcode")' (empty, like None)"
touch "$go"                                          # its work is done
cat "$M/procs/$p/wait" >/dev/null                    # join()
sed 's/^/  worker: /' "$M/procs/$p/stdout"
echo "Process finished, exitcode = $(cat "$M/procs/$p/exitcode"), is_alive(): $(cat "$M/procs/$p/alive")"

echo
echo "terminate() demonstration"
p2=$(start 'sh echo "Worker started, PID $$"; sleep 60; echo "Worker finished"')
echo term > "$M/procs/$p2/ctl"                        # terminate(): SIGTERM
code=$(cat "$M/procs/$p2/wait")                       # join()
echo "Second process exitcode: $code (state: $(cat "$M/procs/$p2/state"))"

echo
echo "join(timeout): wait with a deadline, then check is_alive()"
p3=$(start 'sleep time=10m')
timeout 0.3 cat "$M/procs/$p3/wait" || true
echo "after join(timeout=0.3): is_alive() = $(cat "$M/procs/$p3/alive")"
echo kill > "$M/procs/$p3/ctl"
echo "after kill: exitcode = $(cat "$M/procs/$p3/wait")"

echo
echo "Joining many, as each ends (multiprocessing.connection.wait on their sentinels)"
exec 3<>"$M/spawn"
# three workers on one line: worker n (1, 2, 3) sleeps (4-n)*0.3 s, exits with n
echo 'sh 3 set -- $((PCFS_ID % 3 + 1)); sleep 0.$(( (4 - $1) * 3 )); exit $1' >&3
read -r first <&3; read -r _ <&3; read -r last <&3; exec 3>&-
exec 3<>"$M/wait"; echo "$first-$last" >&3
while read -r id code <&3; do                        # one line as each one ends
	echo "  worker $id ended: exitcode $code"
done
exec 3>&-
