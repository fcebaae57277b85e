#!/usr/bin/env bash
# Channels (issue 4) through a real mount: queues, duplex pipes and sockets as
# files; boundaries, partial reads, capacity, blocking and interrupts, close
# and drain, poll, socket clients, tasks' stdio wired to channels, and many
# producers and consumers at once with every message counted.  Lines mode
# (issue 17, the default): a write of N lines is N messages, a read as many
# whole lines as fit, 100,000 lines between tasks.  The sections about one
# message per write use mode=message channels.
. "$(dirname "$0")/lib.sh"

pcfs_mount "[channels]
capacity = 64
[limits]
max_channels = 40"
C=$M/channels

# --- the namespace ---
expect "/channels starts with only ctl" "$(ls "$C" | tr '\n' ' ')" "ctl "
echo 'queue q capacity=2 maxmsg=16 mode=message' > "$C/ctl"
echo 'pipe p capacity=1' > "$C/ctl"
echo 'socket s mode=message' > "$C/ctl"
check "mkdir makes a default queue" mkdir "$C/m"
expect "the channels are listed" "$(ls "$C" | tr '\n' ' ')" "ctl m p q s "
expect "a queue shows put and get" "$(ls "$C/q" | tr '\n' ' ')" "ctl get put stat stat.json "
expect "a pipe shows its two ends" "$(ls "$C/p" | tr '\n' ' ')" "a b ctl stat stat.json "
expect "a socket shows its address" "$(ls "$C/s" | tr '\n' ' ')" "address ctl get put stat stat.json "
check_fails "files of other types are not there" test -e "$C/q/a"
check_fails "... not even by name" cat "$C/p/get"
expect_match "stat" "$(cat "$C/q/stat")" "type: queue"$'\n'"depth: 0"$'\n'"capacity: 2"
expect "stat shows the mode given" "$(sed -n 's/^mode: //p' "$C/q/stat")" "message"
expect_match "mkdir's queue has the configured capacity" "$(cat "$C/m/stat")" "capacity: 64"
expect "... and is in lines mode" "$(sed -n 's/^mode: //p' "$C/m/stat")" "lines"
expect "a channel made without mode= is in lines mode" "$(sed -n 's/^mode: //p' "$C/p/stat")" "lines"
expect "a bad mode: EINVAL" "$(write_err "$C/ctl" 'queue z mode=binary')" "Invalid argument"
check "... and /log says why" grep -q "mode=binary: want lines or message" "$M/log"

# --- names and refusals ---
expect "a duplicate name: EEXIST" "$(write_err "$C/ctl" 'queue q')" "File exists"
expect "mkdir of an existing one: EEXIST" "$(mkdir "$C/q" 2>&1 | sed 's/.*: //')" "File exists"
expect "an unknown type: EINVAL" "$(write_err "$C/ctl" 'tube t')" "Invalid argument"
expect "a bad name: EINVAL" "$(write_err "$C/ctl" 'queue ..')" "Invalid argument"
expect "a name with a slash is no name" "$(write_err "$C/ctl" 'queue a/b')" "Invalid argument"
long=$(printf 'x%.0s' $(seq 65))
expect "a 65-byte name: EINVAL" "$(write_err "$C/ctl" "queue $long")" "Invalid argument"
check_fails "mkdir with a bad name fails" mkdir "$C/bad name"
check "... and /log says why" grep -q "mkdir /channels/bad name: refused: a channel name is 1 to 64 of" "$M/log"
expect "a ctl line over 511 bytes: EINVAL" "$(write_err "$C/ctl" "queue $(printf '%0600d' 1)")" "Invalid argument"
check "... and /log names the limit" grep -q "line too long (the limit is 511 bytes)" "$M/log"
expect "a bad option: EINVAL" "$(write_err "$C/ctl" 'queue z capacity=0')" "Invalid argument"
exec 3<>"$C/ctl"; echo 'queue z colour=red' >&3 2>/dev/null; read -r reply <&3; exec 3>&-
expect_match "the reason is readable on the descriptor" "$reply" "^error: unknown option 'colour=red'"
check "the reason is in /log" grep -q "unknown option 'colour=red'" "$M/log"

# --- boundaries and partial reads ---
echo one > "$C/q/put"
printf 'two' > "$C/q/put"
expect "depth counts messages" "$(sed -n 's/^depth: //p' "$C/q/stat")" "2"
expect "a short read takes part of one message" "$(dd if="$C/q/get" bs=2 count=1 status=none)" "on"
exec 4<"$C/q/get"
expect "... the same descriptor reads the rest, and only that" "$(dd bs=100 count=1 status=none <&4)" "two"
exec 4<&-
expect_match "a fresh descriptor's rest was dropped at close" "$(cat "$C/q/stat")" "depth: 0"
printf 'alpha' > "$C/q/put"; printf 'beta' > "$C/q/put"
exec 4<"$C/q/get"
expect "one read, one message" "$(dd bs=100 count=1 status=none <&4)" "alpha"
expect "... the next read, the next message" "$(dd bs=100 count=1 status=none <&4)" "beta"
exec 4<&-

# --- sizes, capacity, EAGAIN ---
expect "over maxmsg: EMSGSIZE" "$(write_err "$C/q/put" 'seventeen bytes!!')" "Message too long"
expect "exactly maxmsg fits" "$(printf '%016d' 7 > "$C/q/put" && dd if="$C/q/get" bs=64 count=1 status=none)" "0000000000000007"
out=$(dd if="$C/q/get" iflag=nonblock bs=64 count=1 2>&1)
expect_match "O_NONBLOCK get on an empty channel: EAGAIN" "$out" "Resource temporarily unavailable"
echo 1 > "$C/q/put"; echo 2 > "$C/q/put"
out=$(echo 3 | dd of="$C/q/put" oflag=nonblock 2>&1)
expect_match "O_NONBLOCK put on a full channel: EAGAIN" "$out" "Resource temporarily unavailable"
expect "writes to get are refused" "$(write_err "$C/q/get" x)" "Permission denied"

# --- blocking puts and gets are parked ---
( echo 3 > "$C/q/put" ) &
wpid=$!
check "a put on a full channel blocks" wait_until 400 grep -qx 'blocked_writers: 1' "$C/q/stat"
expect "rmdir while a writer is blocked: EBUSY" "$(rmdir "$C/q" 2>&1 | sed 's/.*: //')" "Device or resource busy"
expect "a get makes room" "$(dd if="$C/q/get" bs=64 count=1 status=none)" "1"
wait $wpid; expect "... and the blocked put completes" "$?" "0"
expect "FIFO holds across the wait" "$(dd if="$C/q/get" bs=64 count=1 status=none; dd if="$C/q/get" bs=64 count=1 status=none)" "2
3"
check_fails "rmdir of a non-empty open channel fails (ENOTEMPTY)" sh -c "echo x > '$C/m/put'; rmdir '$C/m'"

# The get would block for ever: "at once" is well before a hang-catcher of
# 20 s (a sanitizer build on a loaded machine is slow to deliver and answer
# the interrupt; -k ends the test's cat should the interrupt be lost).
start=$(date +%s%N)
timeout -k 60 -s INT 0.3 cat "$C/q/get"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect "Ctrl-C on a blocked get ends the reader" "$rc" "124"
check "... at once ($ms ms)" test "$ms" -lt 20000
check "... and it is no longer counted as blocked" wait_until 400 grep -qx 'blocked_readers: 0' "$C/q/stat"
echo kept > "$C/q/put"
expect "an interrupted reader took nothing" "$(dd if="$C/q/get" bs=64 count=1 status=none)" "kept"
echo a > "$C/q/put"; echo b > "$C/q/put"
timeout -s INT 0.3 sh -c "echo c > '$C/q/put'"; rc=$?
expect "Ctrl-C on a blocked put ends the writer" "$rc" "124"
expect "... and put nothing" "$(sed -n 's/^depth: //p' "$C/q/stat")" "2"
cat "$C/q/get" > "$WORKDIR/drain" & dpid=$!
check "a reader blocked on an empty channel is counted" wait_until 400 grep -qx 'blocked_readers: 1' "$C/q/stat"
echo close > "$C/q/ctl"
wait $dpid; expect "close: a blocked cat drains and ends by itself" "$?:$(tr '\n' ' ' < "$WORKDIR/drain")" "0:a b "
expect "a put after close: EPIPE" "$(write_err "$C/q/put" late)" "Broken pipe"
expect "a get after close and drain: EOF at once" "$(timeout 30 cat "$C/q/get"; echo "rc=$?")" "rc=0"
expect_match "stat says closed" "$(cat "$C/q/stat")" "closed: 1"
check "rmdir of a closed channel" rmdir "$C/q"
check_fails "... it is gone" test -e "$C/q/stat"
expect "ctl: unknown command: EINVAL" "$(write_err "$C/p/ctl" open)" "Invalid argument"

# --- lines mode (the default): a write of N lines is N messages ---
mkdir "$C/l"; echo capacity=100 > "$C/l/ctl"   # (this mount's default is 64)
seq 100 > "$C/l/put"
expect "seq 100 > put: 100 messages" "$(sed -n 's/^depth: //p' "$C/l/stat")" "100"
echo close > "$C/l/ctl"
expect "cat get gives 1..100 back, and ends once drained" "$(timeout 60 cat "$C/l/get")" "$(seq 100)"
rmdir "$C/l"; mkdir "$C/l"
# (env printf: one write; bash's own printf writes each line as it ends)
env printf 'a\nb' > "$C/l/put"
expect "printf 'a\\nb' > put (one write): two messages, the last one at close" \
	"$(sed -n 's/^depth: //p' "$C/l/stat")" "2"
# (O_NONBLOCK reads: a wrong answer fails the check instead of blocking it)
out=$(timeout 60 python3 - "$C/l" <<'PY'
import os, sys
d = sys.argv[1]
g = os.open(d + "/get", os.O_RDONLY | os.O_NONBLOCK)
def rd(n):
    try:
        return os.read(g, n)
    except BlockingIOError:
        return b"EAGAIN"
got = [rd(100)]                          # both: a, then b as printf left it
p = os.open(d + "/put", os.O_WRONLY)
os.write(p, b"one\ntwo\nthree\n")
got += [rd(9), rd(9)]                    # whole lines only, never "t" of three
os.write(p, b"abcdefghijkl\n")
got += [rd(5), rd(5), rd(5), rd(5)]      # one longer than the buffer: in parts
os.write(p, b"unfini")
os.write(p, b"shed\nx")                  # the next write ends the line
got += [rd(100)]
os.close(p)                              # ... and close puts what is left
got += [rd(100), rd(100)]
print(repr(got))
PY
)
expect "a read takes as many whole lines as fit; a longer one comes in parts" "$out" \
	"[b'a\\nb', b'one\\ntwo\\n', b'three\\n', b'abcde', b'fghij', b'kl\\n', b'EAGAIN', b'unfinished\\n', b'x', b'EAGAIN']"
echo kept > "$C/l/put"
expect "mode= while messages wait: EBUSY" "$(write_err "$C/l/ctl" mode=message)" "Device or resource busy"
exec 3<>"$C/l/ctl"; echo 'capacity=5 mode=message' >&3 2>/dev/null; read -r reply <&3; exec 3>&-
expect_match "... the reason is readable on the descriptor" "$reply" \
	"^error: mode=message: 1 messages wait in the channel; its mode changes only while it is empty"
check "... and in /log" grep -q "mode=message: 1 messages wait in the channel" "$M/log"
expect "... and nothing of the line was applied" \
	"$(sed -n 's/^capacity: //p; s/^mode: //p' "$C/l/stat" | tr '\n' ' ')" "64 lines "
expect "drained, the mode changes" "$(timeout 60 dd if="$C/l/get" bs=64 count=1 status=none; echo mode=message > "$C/l/ctl" && sed -n 's/^mode: //p' "$C/l/stat")" "kept
message"
env printf 'a\nb\n' > "$C/l/put"; env printf 'c\n' > "$C/l/put"
expect "in message mode a write is one message, a read returns one" \
	"$(sed -n 's/^depth: //p' "$C/l/stat") $(timeout 60 dd if="$C/l/get" bs=64 count=1 status=none | tr '\n' ,)" "2 a,b,"
expect "mode=lines again, once drained" "$(timeout 60 dd if="$C/l/get" bs=64 count=1 status=none; echo mode=lines > "$C/l/ctl" && sed -n 's/^mode: //p' "$C/l/stat")" "c
lines"
echo 'queue lm maxmsg=4' > "$C/ctl"
expect "a line over maxmsg: EMSGSIZE" "$( { env printf 'ok\ntoolong\n' > "$C/lm/put"; } 2>&1 | sed 's/.*: //')" "Message too long"
expect "... nothing of the write was put" "$(sed -n 's/^depth: //p' "$C/lm/stat")" "0"
check "... and /log says why" grep -q "channel lm: refused a write: a line over maxmsg (4 bytes)" "$M/log"
# A write of more lines than the capacity could ever hold goes in parts: the
# lines there is room for, and write(2) says how many bytes that was.
echo 'queue tiny capacity=3' > "$C/ctl"
out=$(timeout 60 python3 - "$C/tiny/put" <<'PY'
import os, sys
p = os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)
n = os.write(p, b"1\n2\n3\n4\n5\n")
try:
    os.write(p, b"4\n5\n"); print(n, "no EAGAIN")
except BlockingIOError:
    print(n, "then EAGAIN")
PY
)
expect "a write of 5 lines to a queue of capacity 3 takes 3 (a short write)" "$out" "6 then EAGAIN"
timeout 60 cat "$C/tiny/get" > "$WORKDIR/tiny" & reader=$!
seq 1000 > "$C/tiny/put"; rc=$?
echo close > "$C/tiny/ctl"; wait $reader
expect "seq 1000 through a queue of capacity 3: no error, nothing lost or doubled" \
	"$rc $(tr '\n' ' ' < "$WORKDIR/tiny")" "0 $( (seq 3; seq 1000) | tr '\n' ' ')"
# A close with an unfinished line and no room waits for room, as a write would.
echo 'queue full capacity=1' > "$C/ctl"
echo first > "$C/full/put"
printf 'last' > "$C/full/put" & closer=$!
check "a close whose line has no room waits" wait_until 400 grep -qx 'blocked_writers: 1' "$C/full/stat"
expect "a get makes room" "$(timeout 60 dd if="$C/full/get" bs=64 count=1 status=none)" "first"
wait $closer; expect "... the close completes" "$?" "0"
expect "... and its line is the next message" "$(timeout 60 dd if="$C/full/get" bs=64 count=1 status=none)" "last"

# 100,000 lines between two tasks, both ways a task meets a channel: its
# wired stdout into its wired stdin, and a shell's `seq > put` into a
# shell's `cat get`.  None lost, none doubled, in order.
echo 'queue wired' > "$C/ctl"; echo 'queue files' > "$C/ctl"
exec 3<>"$M/spawn"
echo "sh stdin=wired cat > $WORKDIR/wired.out" >&3; read -r wcons <&3
echo "sh stdout=wired seq 100000" >&3; read -r wprod <&3
echo "sh cat \"\$PCFS_MOUNT/channels/files/get\" > $WORKDIR/files.out" >&3; read -r fcons <&3
echo "sh seq 100000 > \"\$PCFS_MOUNT/channels/files/put\"" >&3; read -r fprod <&3
exec 3>&-
expect "the producers end well" "$(timeout 300 cat "$M/procs/$wprod/wait" "$M/procs/$fprod/wait" | tr '\n' ' ')" "0 0 "
# A wired stdout is read on after its task's end while the channel has no
# room; its end leaves `wired` once all of it is in, and only then may the
# channel be closed (a close refuses what has not gone in yet).
check "... and all the wired producer wrote is in" wait_until 6000 grep -qx 'wired: 1' "$C/wired/stat"
echo close > "$C/wired/ctl"; echo close > "$C/files/ctl"
expect "... and so do the consumers, at the channels' end" \
	"$(timeout 300 cat "$M/procs/$wcons/wait" "$M/procs/$fcons/wait" | tr '\n' ' ')" "0 0 "
for f in wired files; do
	expect "$f: 100000 lines got, 100000 distinct" \
		"$(wc -l < "$WORKDIR/$f.out") $(sort -n "$WORKDIR/$f.out" | uniq | wc -l)" "100000 100000"
	check "$f: ... 1 to 100000 in order" cmp -s "$WORKDIR/$f.out" <(seq 100000)
done
expect_match "stat counts them" "$(cat "$C/files/stat")" "puts: 100000"$'\n'"gets: 100000"

# --- pipes: two independent directions ---
echo "to b" > "$C/p/a"
out=$(echo more | dd of="$C/p/a" oflag=nonblock 2>&1)
expect_match "a->b is full at capacity 1" "$out" "Resource temporarily unavailable"
echo "to a" > "$C/p/b"
expect "... while b->a still takes a message" "$(dd if="$C/p/a" bs=64 count=1 status=none)" "to a"
expect "b reads what a wrote" "$(dd if="$C/p/b" bs=64 count=1 status=none)" "to b"
expect_match "stat shows each direction" "$(cat "$C/p/stat")" "depth_a_to_b: 0"$'\n'"depth_b_to_a: 0"
echo 'capacity=3' > "$C/p/ctl"
expect "ctl capacity=N" "$(sed -n 's/^capacity: //p' "$C/p/stat")" "3"

# The seed's Pipe example: the child sends, the parent receives.
exec 3<>"$M/spawn"; echo "sh echo 'Привет через Pipe' > \"\$PCFS_MOUNT/channels/p/b\"" >&3; read -r id <&3; exec 3>&-
read -r got < "$C/p/a"
expect "seed Pipe: parent_conn.recv()" "$got" "Привет через Pipe"
expect "... and the child ended well" "$(cat "$M/procs/$id/wait")" "0"

# The seed's Queue example: a producer and a consumer task.
echo 'queue sq' > "$C/ctl"
exec 3<>"$M/spawn"
echo "sh read -r item < \"\$PCFS_MOUNT/channels/sq/get\"; echo \"Получено из очереди: \$item\"" >&3; read -r cons <&3
echo "sh echo '{\"val\": 123}' > \"\$PCFS_MOUNT/channels/sq/put\"" >&3; read -r prod <&3
exec 3>&-
cat "$M/procs/$prod/wait" "$M/procs/$cons/wait" >/dev/null
expect "seed Queue: the consumer got the producer's object" "$(cat "$M/procs/$cons/stdout")" 'Получено из очереди: {"val": 123}'

# --- poll/select ---
echo 'queue pq capacity=1 mode=message' > "$C/ctl"   # (a write of "x": one message)
check "select: get readable only with a message, put writable only with room" python3 - "$C/pq" <<'EOF'
import os, select, sys, time
d = sys.argv[1]
g = os.open(d + "/get", os.O_RDONLY | os.O_NONBLOCK)
p = os.open(d + "/put", os.O_WRONLY | os.O_NONBLOCK)
r, w, _ = select.select([g], [p], [], 0.2)
assert r == [] and w == [p], (r, w)
os.write(p, b"x")
r, w, _ = select.select([g], [p], [], 0.2)
assert r == [g] and w == [], (r, w)          # full now
# Someone else makes room later; the child tells when it began (before it,
# there was no room): select must return after that, not when it was called.
# Not a wall-clock window: a loaded machine may start the child late or run
# the select late.  The timeout of 60 s only catches a select never woken.
rd, wr = os.pipe()
pid = os.fork()
if pid == 0:
    time.sleep(0.3)
    os.write(wr, repr(time.monotonic()).encode())
    f = os.open(d + "/get", os.O_RDONLY); os.read(f, 10); os._exit(0)
r, w, _ = select.select([], [p], [], 60)
woke = time.monotonic()
began = float(os.read(rd, 100))
assert w == [p] and woke >= began, (w, woke, began)
os.waitpid(pid, 0)
pid = os.fork()
if pid == 0:
    time.sleep(0.3)
    os.write(wr, repr(time.monotonic()).encode())
    f = os.open(d + "/put", os.O_WRONLY); os.write(f, b"wake"); os._exit(0)
r, _, _ = select.select([g], [], [], 60)
woke = time.monotonic()
began = float(os.read(rd, 100))
assert r == [g] and woke >= began and os.read(g, 100) == b"wake", (r, woke, began)
os.waitpid(pid, 0)
EOF

# --- sockets ---
A=$(cat "$C/s/address")
check "address is a listening socket" test -S "$A"
expect "... in a directory only we can enter" "$(stat -c %a "$(dirname "$A")")" "700"
out=$(printf 'hello\nworld\n' | timeout 5 socat -t 0.2 - "UNIX-CONNECT:$A")
expect "each line a client sends is one message" "$(dd if="$C/s/get" bs=64 count=1 status=none)" "hello"
expect "... the next line the next message" "$(dd if="$C/s/get" bs=64 count=1 status=none)" "world"
# a shell answers clients through files: one reply per request
( while IFS= read -r line; do echo "echo: $line" > "$C/s/put"; done < "$C/s/get" ) &
srv=$!
# (the client waits for the reply line itself, not a fixed -t 2 after its
# request: a loaded machine may take longer to pass it through the shell)
out=$(timeout 60 python3 - "$A" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1]); s.sendall(b"ping\n")
got = b""
while b"\n" not in got:
    c = s.recv(100)
    if not c: break
    got += c
print(got.decode().split("\n")[0])
EOF
)
expect "a socket client talks to a shell through files" "$out" "echo: ping"
echo close > "$C/s/ctl"; wait $srv
echo 'socket rr' > "$C/ctl"
A=$(cat "$C/rr/address")
# (they end at the close below; the timeout only catches a hang)
timeout 120 socat -u "UNIX-CONNECT:$A" "OPEN:$WORKDIR/c1,creat" & c1=$!
timeout 120 socat -u "UNIX-CONNECT:$A" "OPEN:$WORKDIR/c2,creat" & c2=$!
check "two clients connect" wait_until 1000 grep -qx 'clients: 2' "$C/rr/stat"
for i in 1 2 3 4; do echo "m$i" > "$C/rr/put"; done
check "put goes to the clients round robin" wait_until 1000 sh -c "[ \$(cat '$WORKDIR/c1' '$WORKDIR/c2' | wc -l) = 4 ]"
expect "... two messages each" "$(wc -l < "$WORKDIR/c1") $(wc -l < "$WORKDIR/c2")" "2 2"
expect "... none lost or doubled" "$(sort "$WORKDIR/c1" "$WORKDIR/c2" | tr '\n' ' ')" "m1 m2 m3 m4 "
echo close > "$C/rr/ctl"
wait $c1 $c2
expect "close ends the clients once drained" "$?" "0"
echo 'socket w' > "$C/ctl"
echo "for later" > "$C/w/put"
expect "put waits while no client is connected" "$(sed -n 's/^to_clients: //p' "$C/w/stat")" "1"
# (it reads its line and goes, rather than listen for a fixed 5 s)
expect "... and the first client gets it" "$(timeout 60 python3 - "$(cat "$C/w/address")" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
got = b""
while b"\n" not in got:
    c = s.recv(100)
    if not c: break
    got += c
print(got.decode().split("\n")[0])
EOF
)" "for later"
rmdir "$C/rr"
check_fails "rmdir removes the socket file" test -e "$A"

# --- tasks' stdio wired to channels: a worker farm ---
echo 'queue jobs capacity=8' > "$C/ctl"
echo 'queue results' > "$C/ctl"
cat > "$WORKDIR/worker" <<'EOF'
#!/bin/sh
while read -r n; do sleep 0.01; echo "$PCFS_ID $n $((n * n))"; done
EOF
chmod +x "$WORKDIR/worker"
exec 3<>"$M/spawn"; echo "exec 4 stdin=jobs stdout=results $WORKDIR/worker" >&3
ids=(); for _ in 1 2 3 4; do read -r id <&3; ids+=("$id"); done; exec 3>&-
expect_match "wired tasks are attached" "$(cat "$C/jobs/stat")" "wired: 4"
cat "$C/results/get" > "$WORKDIR/results" & collector=$!
for i in $(seq 100); do echo "$i"; done > "$C/jobs/put"     # 100 writes, 100 messages
echo close > "$C/jobs/ctl"
for id in "${ids[@]}"; do cat "$M/procs/$id/wait" >/dev/null; done
expect "closed and drained: every worker saw EOF and exited 0" \
	"$(for id in "${ids[@]}"; do cat "$M/procs/$id/exitcode"; done | tr '\n' ' ')" "0 0 0 0 "
echo close > "$C/results/ctl"
wait $collector
expect "every job gave one result" "$(wc -l < "$WORKDIR/results")" "100"
expect "... each job exactly once, computed right" "$(awk '{ if ($3 != $2 * $2) bad++ } END { print bad + 0 }' "$WORKDIR/results") $(awk '{print $2}' "$WORKDIR/results" | sort -n | uniq | wc -l)" "0 100"
expect "... shared by all four workers" "$(awk '{print $1}' "$WORKDIR/results" | sort -u | wc -l)" "4"
expect "wired stdout is the channel's, not captured" "$(stat -c %s "$M/procs/${ids[0]}/stdout")" "0"
expect "a line naming a missing channel is refused" "$(write_err "$M/spawn" 'exec stdin=nope /bin/cat')" "Invalid argument"
check "... with the reason" grep -q "stdin=nope: no such channel" "$M/log"

echo 'pipe tp' > "$C/ctl"
exec 3<>"$M/spawn"; echo 'exec stdin=tp stdout=tp sed -u s/^/got:/' >&3; read -r id <&3; exec 3>&-
echo "shout" > "$C/tp/a"
expect "a task wired to a pipe is its end b" "$(timeout 60 dd if="$C/tp/a" bs=64 count=1 status=none)" "got:shout"
echo close > "$C/tp/ctl"
expect "... and closing the pipe ends its stdin" "$(cat "$M/procs/$id/wait")" "0"

echo 'queue slow capacity=1' > "$C/ctl"
exec 3<>"$M/spawn"; echo 'sh stdout=slow seq 5; echo done >&2' >&3; read -r id <&3; exec 3>&-
expect "a task's output waits for room (flow control)" "$(cat "$M/procs/$id/wait")" "0"
# (closed once the reader has all five, not after 0.5 s: a close before
# it has read them would end the channel under it)
cat "$C/slow/get" > "$WORKDIR/slow" & slow=$!
wait_until 1000 sh -c "[ \$(wc -l < '$WORKDIR/slow') -ge 5 ]"
echo close > "$C/slow/ctl"; wait $slow
check "... and loses nothing" test "$(cat "$WORKDIR/slow")" = "$(seq 5)"

# --- many producers and consumers at once ---
echo 'queue mq capacity=16' > "$C/ctl"
cons=()
for k in 1 2 3 4; do cat "$C/mq/get" > "$WORKDIR/cons$k" & cons+=($!); done
prods=()
for k in 1 2 3 4 5; do
	( for i in $(seq 300); do echo "p$k $i"; done > "$C/mq/put" ) & prods+=($!)
done
exec 3<>"$M/spawn"
echo "sh for i in \$(seq 300); do echo \"t1 \$i\"; done > \"\$PCFS_MOUNT/channels/mq/put\"" >&3; read -r tprod <&3
echo "exec stdout=mq seq -f 't2 %g' 300" >&3; read -r tprod2 <&3
exec 3>&-
wait "${prods[@]}"; cat "$M/procs/$tprod/wait" "$M/procs/$tprod2/wait" >/dev/null
echo close > "$C/mq/ctl"
wait "${cons[@]}"
cat "$WORKDIR"/cons[1-4] > "$WORKDIR/all"
expect "2100 messages put, 2100 got" "$(wc -l < "$WORKDIR/all")" "2100"
expect "... none duplicated" "$(sort -u "$WORKDIR/all" | wc -l)" "2100"
expect "... every consumer got some" "$(for k in 1 2 3 4; do [ -s "$WORKDIR/cons$k" ] && echo y; done | tr -d '\n')" "yyyy"
fifo=ok
for k in 1 2 3 4; do
	awk '{ if ($1 in last && $2 <= last[$1]) bad = 1; last[$1] = $2 } END { exit bad }' \
		"$WORKDIR/cons$k" || fifo=broken
done
expect "... and each consumer saw every producer's messages in order" "$fifo" "ok"
expect_match "stat counts them" "$(cat "$C/mq/stat")" "puts: 2100"$'\n'"gets: 2100"
if command -v jq >/dev/null; then
	expect "stat.json" "$(jq -r '[.type, .puts, .closed] | @tsv' "$C/mq/stat.json")" "queue	2100	true"
fi

# --- pool tasks wired to channels: a worker farm in a pool ---
echo 'queue pjobs' > "$M/channels/ctl"; echo 'queue presults' > "$M/channels/ctl"
mkdir "$M/pools/farm"; echo workers=2 > "$M/pools/farm/ctl"
echo 'sh 2 stdin=pjobs stdout=presults while read x; do sleep 0.02; echo "done $x $PCFS_SLOT"; done' > "$M/pools/farm/submit"
# both workers up before the jobs come, so both get some (a slow start,
# under a sanitizer, would otherwise let the first take them all)
check "both farm futures run" wait_until 200 sh -c "grep -qx running '$M/pools/farm/futures/1/state' && grep -qx running '$M/pools/farm/futures/2/state'"
for i in $(seq 20); do echo "job$i" > "$M/channels/pjobs/put"; done
echo close > "$M/channels/pjobs/ctl"
expect "pool futures wired to channels end when stdin is drained" \
	"$(cat "$M/pools/farm/futures/1/wait") $(cat "$M/pools/farm/futures/2/wait")" "done done"
echo close > "$M/channels/presults/ctl"
got=$(cat "$M/channels/presults/get")
expect "every job was done exactly once" "$(echo "$got" | awk '{ print $2 }' | sort -V | tr '\n' ' ')" \
	"$(seq 20 | sed 's/^/job/' | tr '\n' ' ')"
expect "by both workers" "$(echo "$got" | awk '{ print $3 }' | sort -u | wc -l)" "2"
expect "a pool line naming a missing channel is refused" "$(write_err "$M/pools/farm/submit" 'sh stdin=nosuch cat')" "Invalid argument"

# --- fifo channels: a kernel FIFO through a symlink, no byte through FUSE ---
echo 'fifo ff size=64K' > "$C/ctl"
F=$C/ff/fifo
check "a fifo channel has a fifo symlink to a FIFO" test -L "$F" -a -p "$F"
expect "... its directory shows ctl, fifo and stat" "$(ls "$C/ff" | tr '\n' ' ')" "ctl fifo stat stat.json "
expect "... its stat: the buffer, closed or not, the path" \
	"$(jq -c '[.type, .bytes, .max_bytes, .closed, .fifo == "'"$(readlink "$F")"'"]' "$C/ff/stat.json")" \
	'["fifo",0,65536,false,true]'
seq 1000 > "$F"   # the daemon holds it open: the writer neither blocks nor gets SIGPIPE
expect "what a writer left waits in it" "$(sed -n 's/^bytes: //p' "$C/ff/stat")" "3893"
expect "a reader reads it back" "$(head -1000 "$F" | tail -1)" "1000"
expect "capacity= does not apply to a fifo" "$(write_err "$C/ff/ctl" capacity=5)" "Invalid argument"
# wired to tasks' stdio: the task opens the FIFO itself
seq 3 > "$F"
W=$(spawn "exec stdin=ff wc -l")
echo close > "$C/ff/ctl"
expect "stdin=: a task reads the fifo, EOF once it is closed and its writers gone" \
	"$(timeout 60 cat "$M/procs/$W/wait") $(cat "$M/procs/$W/stdout")" "0 3"
echo 'fifo fo' > "$C/ctl"
O=$(spawn "exec stdout=fo seq 5")
expect "stdout=: a task writes into the fifo" "$(timeout 60 head -5 "$C/fo/fifo" | tr '\n' ' ')" "1 2 3 4 5 "
expect "... and its own stdout file stays empty" "$(timeout 60 cat "$M/procs/$O/wait")|$(cat "$M/procs/$O/stdout")" "0|"
mkdir "$M/pools/fifop"
echo 'exec stdout=fo echo from a future' > "$M/pools/fifop/submit"
expect "a pool's future writes into it too" "$(timeout 60 head -1 "$C/fo/fifo")" "from a future"
echo "kept" > "$C/fo/fifo"
expect "a fifo holding bytes is not removed (ENOTEMPTY)" "$(rmdir "$C/fo" 2>&1 | grep -o 'not empty')" "not empty"
FP=$(readlink "$C/fo/fifo")
head -1 "$C/fo/fifo" >/dev/null
rmdir "$C/fo" "$C/ff"
check "removing it unlinks the FIFO" test ! -e "$FP"
echo shutdown > "$M/pools/fifop/ctl"

# --- limits ---
n=$(ls "$C" | grep -vc '^ctl$')
for i in $(seq $((40 - n))); do echo "queue fill$i" > "$C/ctl"; done
expect "over max_channels: ENOSPC" "$(write_err "$C/ctl" 'queue onemore')" "No space left on device"

# --- unmount cleans the sockets up ---
A=$(cat "$C/w/address")
check "unmount: the daemon exits 0" pcfs_umount
check_fails "... and removes its socket files" test -e "$A"
check_fails "... and its socket directory" test -e "$(dirname "$A")"

# --- [channels] max_bytes, on a mount of its own ---
pcfs_mount "[channels]
max_bytes = 1K"
C=$M/channels
echo 'queue big maxmsg=4K' > "$C/ctl"
expect "stat shows max_bytes" "$(sed -n 's/^max_bytes: //p' "$C/big/stat")" "1024"
expect "a message over max_bytes (though under maxmsg) could never fit: ENOSPC" \
	"$(head -c 2000 /dev/zero | tr '\0' x | write_err "$C/big/put" "$(cat)")" "No space left on device"
expect "... nothing was put" "$(sed -n 's/^depth: //p' "$C/big/stat")" "0"
x600=$(head -c 599 /dev/zero | tr '\0' x)
check "600 bytes fit" sh -c "echo '$x600' > '$C/big/put'"
out=$(python3 - "$C/big/put" "$x600" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)
try:
    os.write(fd, (sys.argv[2] + "\n").encode()); print("ok")
except OSError as e:
    print(os.strerror(e.errno))
PY
)
expect "600 more would pass max_bytes: O_NONBLOCK gives EAGAIN" "$out" "Resource temporarily unavailable"
echo "$x600" > "$C/big/put" &
writer=$!
check "... a blocking put waits for room" wait_until 100 grep -qx 'blocked_writers: 1' "$C/big/stat"
expect "... with the first message alone in the channel" "$(sed -n 's/^bytes: //p' "$C/big/stat")" "600"
expect "a get makes room" "$(timeout 60 head -c 600 "$C/big/get" | wc -c)" "600"
check "... and the waiting put goes in" wait "$writer"
expect "... 600 bytes in the channel again" "$(sed -n 's/^bytes: //p' "$C/big/stat")" "600"
check "unmount: the daemon exits 0" pcfs_umount
finish
