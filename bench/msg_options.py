#!/usr/bin/python3
"""msg_options.py MOUNT SIZE COUNT [RUNS] - the options of issue 21 for
messages between two processes, measured side by side (doc/perf-notes.md).
Not a bench/run row: a prototype's measurement, to pick a design on numbers.

A forked producer sends COUNT SIZE-byte messages, the parent consumes them:
  message    a mode=message channel: one write() per message, one read() each
  lines      a lines-mode channel: one write() per message, reads of 256 KiB
  lines-x64  the same, the producer writing 64 messages per write()
  fifo       a kernel FIFO (mkfifo): one write() per message, reads of 256 KiB;
             the floor of a channel whose data path is a kernel object the
             tasks open through a symlink (as /shm does for memory)
  socket     a socket channel: the producer connects to its `address` (an
             AF_UNIX stream socket, outside FUSE) and send()s one message per
             call; the consumer reads the channel's get in 256 KiB reads
  mp.Queue   multiprocessing.Queue, put() and get() per message
Prints "NAME MEDIAN_MSGS_PER_S MIN MAX" per option.
"""
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def consume(path, n, flags=os.O_RDONLY):
    f = os.open(path, flags)
    buf = bytearray(1 << 18)
    got = 0
    while got < n:
        r = os.readv(f, [buf])
        if not r:
            break
        got += buf.count(b"\n", 0, r)
    os.close(f)
    return got


def two_procs(put_path, get_path, msg, n, per_write, messages=False):
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(put_path, os.O_WRONLY)
            block = msg * per_write
            for _ in range(n // per_write):
                write_all(fd, block)
            os.close(fd)
        finally:
            os._exit(0)
    if messages:
        fd = os.open(get_path, os.O_RDONLY)
        buf = bytearray(len(msg))
        for _ in range(n):
            os.readv(fd, [buf])
        os.close(fd)
    else:
        consume(get_path, n)
    os.waitpid(pid, 0)
    return time.monotonic() - t0


def via_socket(ch, msg, n):
    with open(ch + "/address") as f:
        addr = f.read().strip()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(addr)
            for _ in range(n):
                s.sendall(msg)
            s.close()
        finally:
            os._exit(0)
    consume(ch + "/get", n)
    os.waitpid(pid, 0)
    return time.monotonic() - t0


def channel(mnt, size, mode, kind="queue"):
    name = "opt%d_%d" % (os.getpid(), time.monotonic_ns() % 1000000)
    fd = os.open(os.path.join(mnt, "channels", "ctl"), os.O_WRONLY)
    write_all(fd, ("%s %s capacity=256 maxmsg=%d mode=%s\n" % (kind, name, size, mode)).encode())
    os.close(fd)
    return os.path.join(mnt, "channels", name)


def producer_q(q, size, n):
    msg = b"m" * size
    for _ in range(n):
        q.put(msg)
    q.close()
    q.join_thread()


def run_queue(size, n):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    t0 = time.monotonic()
    p = ctx.Process(target=producer_q, args=(q, size, n))
    p.start()
    for _ in range(n):
        q.get()
    p.join()
    return time.monotonic() - t0


def main():
    mnt, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    n -= n % 64
    msg = b"m" * (size - 1) + b"\n"
    tmp = tempfile.mkdtemp()
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    res = {}

    def one(name, fn):
        res.setdefault(name, []).append(n / fn())

    for _ in range(runs):
        ch = channel(mnt, size, "message")
        one("message", lambda: two_procs(ch + "/put", ch + "/get", msg, n, 1, True))
        os.rmdir(ch)
        ch = channel(mnt, size, "lines")
        one("lines", lambda: two_procs(ch + "/put", ch + "/get", msg, n, 1))
        os.rmdir(ch)
        ch = channel(mnt, size, "lines")
        one("lines-x64", lambda: two_procs(ch + "/put", ch + "/get", msg, n, 64))
        os.rmdir(ch)
        ch = channel(mnt, size, "lines", "socket")
        one("socket", lambda: via_socket(ch, msg, n))
        os.rmdir(ch)
        one("fifo", lambda: two_procs(fifo, fifo, msg, n, 1))
        one("mp.Queue", lambda: run_queue(size, n))
    os.unlink(fifo)
    os.rmdir(tmp)
    for name, v in res.items():
        v.sort()
        print("%s %.0f %.0f %.0f" % (name, v[len(v) // 2], v[0], v[-1]))


if __name__ == "__main__":
    main()
