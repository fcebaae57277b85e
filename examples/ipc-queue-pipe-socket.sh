#!/usr/bin/env bash
# ipc-queue-pipe-socket.sh MOUNTPOINT - the seed's section 3 (Queue, Pipe,
# sockets) through pcfs, then a worker farm fed by a queue.
#
#   q = Queue(); q.put(x); q.get()      ->  mkdir channels/q; echo x > q/put; read < q/get
#   a, b = Pipe(); a.send(x); b.recv()  ->  echo 'pipe p' > channels/ctl; echo x > p/a; read < p/b
#   a socket server                     ->  echo 'socket s' > channels/ctl; clients connect to
#                                           $(cat s/address); lines are messages of s/get,
#                                           messages put to s/put go back to the clients
#   Pool(4).map(f, jobs)                ->  exec 4 stdin=jobs stdout=results ./worker
#   os.mkfifo(path), bytes at pipe speed ->  echo 'fifo f' > channels/ctl; open f/fifo
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: ipc-queue-pipe-socket.sh MOUNTPOINT}}
C=$M/channels

start() {   # start LINE -> prints the new id
	local id
	exec 3<>"$M/spawn"; echo "$1" >&3; read -r id <&3; exec 3>&-
	echo "$id"
}

echo "== Queue: a producer task and a consumer task"
mkdir "$C/q"
consumer=$(start 'sh read -r item < "$PCFS_MOUNT/channels/q/get"; echo "Получено из очереди: $item"')
producer=$(start "sh echo '{\"val\": 123}' > \"\$PCFS_MOUNT/channels/q/put\"")
cat "$M/procs/$producer/wait" "$M/procs/$consumer/wait" >/dev/null      # p1.join(); p2.join()
echo "consumer says: $(cat "$M/procs/$consumer/stdout")"

echo
echo "== Pipe: the child sends through one end, the parent receives at the other"
echo 'pipe p' > "$C/ctl"
child=$(start 'sh echo "Привет через Pipe" > "$PCFS_MOUNT/channels/p/b"')
read -r msg < "$C/p/a"                                                   # parent_conn.recv()
echo "parent received: $msg"
echo "reply" > "$C/p/a"                                                  # and back the other way
read -r back < "$C/p/b"
echo "child's end received: $back"
cat "$M/procs/$child/wait" >/dev/null

echo
echo "== Socket: a client speaks to a shell that only uses files"
echo 'socket s' > "$C/ctl"
addr=$(cat "$C/s/address")
echo "listening at $addr"
( while IFS= read -r line; do echo "server got: $line" > "$C/s/put"; done < "$C/s/get" ) &
server=$!
echo "hello over AF_UNIX" | socat -t 2 - "UNIX-CONNECT:$addr" | head -n1 | sed 's/^/client received: /'
echo close > "$C/s/ctl"                                                  # the server's cat ends
wait "$server"

echo
echo "== A worker farm: four tasks share a queue of jobs"
echo 'queue jobs' > "$C/ctl"
echo 'queue results' > "$C/ctl"
cat "$C/results/get" > "${TMPDIR:-/tmp}/pcfs-results.$$" &
collector=$!
ids=$(start 'sh 4 stdin=jobs stdout=results while read -r n; do echo "$n squared is $((n * n))"; done')
for n in $(seq 1 12); do echo "$n"; done > "$C/jobs/put"                 # one write per job
echo close > "$C/jobs/ctl"                                               # no more jobs: EOF
for id in $ids $(seq $((ids + 1)) $((ids + 3))); do cat "$M/procs/$id/wait" >/dev/null; done
echo close > "$C/results/ctl"
wait "$collector"
sort -n "${TMPDIR:-/tmp}/pcfs-results.$$"
echo "results: $(wc -l < "${TMPDIR:-/tmp}/pcfs-results.$$") of 12"
rm -f "${TMPDIR:-/tmp}/pcfs-results.$$"
grep -E '^(puts|gets|closed):' "$C/jobs/stat" | tr '\n' ' '; echo

echo "== A fifo channel: the kernel's pipe, opened through a symlink (no FUSE in between)"
echo 'fifo stream size=1M' > "$C/ctl"
echo "$C/stream/fifo -> $(readlink "$C/stream/fifo")"
p=$(start 'sh stdout=stream for i in $(seq 100000); do echo "line $i"; done')
echo "a task wrote 100000 lines into it; a reader counts $(head -100000 "$C/stream/fifo" | wc -l)"
cat "$M/procs/$p/wait" >/dev/null
echo close > "$C/stream/ctl"
rmdir "$C/stream"
