#!/usr/bin/python3
"""pybench.py MOUNT TEST COUNT - pcfs beside Python's own executors, queues and
processes, the same work both ways in one run (bench/run's `python` and
`features` rows).  Standard library only, for the interpreter Debian ships.

The pcfs side uses the files as a Python program would: os.open, os.write,
os.read (readinto a preallocated buffer for channels), no private shortcut.
Prints one line per side: "NAME SECONDS" for COUNT units of work.

Tests (COUNT units each):
  pool-proc-true    ProcessPoolExecutor(2) map of subprocess.run(['/bin/true'])
                    vs a pcfs process pool of 2: COUNT `exec /bin/true` lines
                    written to map in 64 KiB writes, results read back
  pool-thread-true  the same with ThreadPoolExecutor(2) (pcfs side as above)
  thread-noop       ThreadPoolExecutor(2) map of a no-op function vs a pcfs
                    thread pool of 2 running `noop` through map
  proc-noop         ProcessPoolExecutor(2, fork) map of a no-op vs a pcfs
                    process pool of 2 running `noop` through map
  process-fork      multiprocessing Process(target=noop).start(); join() (fork)
                    vs: open spawn, write `noop`, read the id, close; open and
                    read procs/ID/wait (the fork server's fork)
  process-spawn     the same with the spawn context vs `noop method=spawn`
  queue-SIZE        multiprocessing.Queue, a producer process put()ting COUNT
                    SIZE-byte messages, the parent get()ting them, vs a
                    lines-mode channel: the producer (forked) one write() per
                    message (SIZE-1 bytes and a newline), the consumer reading
                    into a 256 KiB buffer (as many whole messages as fit)
  pipe-SIZE         multiprocessing.Pipe(duplex=False), send() and recv() of
                    bytes, vs the same pcfs channel as queue-SIZE
  fifo-queue-SIZE   multiprocessing.Queue as queue-SIZE vs a pcfs fifo channel
                    (`fifo NAME size=1M`): the producer opens its `fifo`
                    symlink and makes one write() per message, the consumer
                    reads it into a 256 KiB buffer; the bytes never cross FUSE
  fifo-pipe-SIZE    multiprocessing.Pipe as pipe-SIZE vs the same fifo channel
  after-spawn       COUNT `noop` through spawn, one line a write with the id
                    read back, each line `after=` the one before (a chain)
                    vs COUNT independent; both waited for through /wait
  after-pool        the same through a thread pool's submit, `after=` naming
                    the previous future; every future's wait read after
"""
import concurrent.futures as cf
import multiprocessing as mp
import os
import subprocess
import sys
import time

MNT = ""


def noop(*_):
    return None


def run_true(_):
    subprocess.run(["/bin/true"], check=False)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_lines(fd, want, bufsize=1 << 16):
    """Read until `want` newlines have come (or EOF); returns them joined."""
    parts, got = [], 0
    while got < want:
        b = os.read(fd, bufsize)
        if not b:
            break
        got += b.count(b"\n")
        parts.append(b)
    return b"".join(parts)


# ---- pcfs through its files -------------------------------------------------

def spawn_line(fd, line):
    """Write one task line on an open spawn (or submit) descriptor; its id."""
    write_all(fd, (line + "\n").encode())
    return int(read_lines(fd, 1, 64).split()[0])


def wait_task(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 64)
    finally:
        os.close(fd)


def make_pool(kind):
    name = "py%d_%d" % (os.getpid(), time.monotonic_ns() % 1000000)
    path = os.path.join(MNT, "pools", name)
    os.mkdir(path)
    fd = os.open(os.path.join(path, "ctl"), os.O_WRONLY)
    write_all(fd, ("type=%s workers=2\n" % kind).encode())
    os.close(fd)
    fd = os.open(os.path.join(path, "submit"), os.O_RDWR)   # workers up first
    fid = spawn_line(fd, "noop")
    os.close(fd)
    wait_task(os.path.join(path, "futures", str(fid), "wait"))
    return path


def shutdown_pool(path):
    fd = os.open(os.path.join(path, "ctl"), os.O_WRONLY)
    write_all(fd, b"shutdown\n")
    os.close(fd)


def pcfs_map_chunks(kind, line, n):
    """COUNT lines through map, whole lines 64 KiB at a time; the results read."""
    pool = make_pool(kind)
    one = (line + "\n").encode()
    per = max(1, (1 << 16) // len(one))
    t0 = time.monotonic()
    fd = os.open(os.path.join(pool, "map"), os.O_RDWR)
    left = n
    while left:
        k = min(per, left)
        write_all(fd, one * k)
        left -= k
    read_lines(fd, n)
    os.close(fd)
    t = time.monotonic() - t0
    shutdown_pool(pool)
    return t


def pcfs_spawn_wait(line, n):
    spawn = os.path.join(MNT, "spawn")
    t0 = time.monotonic()
    for _ in range(n):
        fd = os.open(spawn, os.O_RDWR)
        tid = spawn_line(fd, line)
        os.close(fd)
        wait_task(os.path.join(MNT, "procs", str(tid), "wait"))
    return time.monotonic() - t0


def make_channel(line):
    fd = os.open(os.path.join(MNT, "channels", "ctl"), os.O_WRONLY)
    write_all(fd, (line + "\n").encode())
    os.close(fd)


def stream(size, n, wpath, rpath):
    """A forked producer writes n SIZE-byte lines to wpath, a write each; the
    parent reads rpath into a 256 KiB buffer until it has n lines.  The
    seconds it took, or exits if lines went missing."""
    msg = b"m" * (size - 1) + b"\n"
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            put = os.open(wpath, os.O_WRONLY)
            for _ in range(n):
                write_all(put, msg)
            os.close(put)
        finally:
            os._exit(0)
    get = open(rpath, "rb", buffering=0)
    buf = bytearray(1 << 18)
    got = 0
    while got < n:
        r = get.readinto(buf)
        if not r:
            break
        got += buf.count(b"\n", 0, r)
    get.close()
    os.waitpid(pid, 0)
    if got != n:
        sys.exit("pybench: %s gave %d of %d messages" % (rpath, got, n))
    return time.monotonic() - t0


def pcfs_channel(size, n):
    name = "py%d_%d" % (os.getpid(), time.monotonic_ns() % 1000000)
    make_channel("queue %s capacity=256 maxmsg=%d" % (name, max(size, 1024)))
    ch = os.path.join(MNT, "channels", name)
    t = stream(size, n, os.path.join(ch, "put"), os.path.join(ch, "get"))
    os.rmdir(ch)
    return t


def pcfs_fifo(size, n):
    name = "pf%d_%d" % (os.getpid(), time.monotonic_ns() % 1000000)
    make_channel("fifo %s size=1M" % name)
    ch = os.path.join(MNT, "channels", name)
    t = stream(size, n, os.path.join(ch, "fifo"), os.path.join(ch, "fifo"))
    fd = os.open(os.path.join(ch, "ctl"), os.O_WRONLY)
    write_all(fd, b"close\n")
    os.close(fd)
    os.rmdir(ch)
    return t


def pcfs_after_spawn(n, chain):
    fd = os.open(os.path.join(MNT, "spawn"), os.O_RDWR)
    t0 = time.monotonic()
    first = prev = spawn_line(fd, "noop")
    for _ in range(n - 1):
        prev = spawn_line(fd, "noop after=%d" % prev if chain else "noop")
    os.close(fd)
    w = os.open(os.path.join(MNT, "wait"), os.O_RDWR)
    write_all(w, ("%d-%d\n" % (first, prev)).encode())
    read_lines(w, prev - first + 1)
    os.close(w)
    return time.monotonic() - t0


def pcfs_after_pool(n, chain):
    pool = make_pool("thread")
    fd = os.open(os.path.join(pool, "submit"), os.O_RDWR)
    t0 = time.monotonic()
    ids = [spawn_line(fd, "noop")]
    for _ in range(n - 1):
        ids.append(spawn_line(fd, "noop after=%d" % ids[-1] if chain else "noop"))
    os.close(fd)
    for fid in ids:
        wait_task(os.path.join(pool, "futures", str(fid), "wait"))
    t = time.monotonic() - t0
    shutdown_pool(pool)
    return t


# ---- Python's own ----------------------------------------------------------

def py_executor(ex, fn, n):
    with ex:
        ex.submit(noop).result()   # workers up first, as on the pcfs side
        t0 = time.monotonic()
        for _ in ex.map(fn, range(n)):
            pass
        return time.monotonic() - t0


def py_process(method, n):
    ctx = mp.get_context(method)
    t0 = time.monotonic()
    for _ in range(n):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    return time.monotonic() - t0


def produce_queue(q, size, n):
    msg = b"m" * size
    for _ in range(n):
        q.put(msg)
    q.close()
    q.join_thread()


def produce_pipe(conn, size, n):
    msg = b"m" * size
    for _ in range(n):
        conn.send(msg)
    conn.close()


def py_queue(size, n):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    t0 = time.monotonic()
    p = ctx.Process(target=produce_queue, args=(q, size, n))
    p.start()
    for _ in range(n):
        q.get()
    p.join()
    return time.monotonic() - t0


def py_pipe(size, n):
    ctx = mp.get_context("fork")
    r, w = ctx.Pipe(duplex=False)
    t0 = time.monotonic()
    p = ctx.Process(target=produce_pipe, args=(w, size, n))
    p.start()
    w.close()
    for _ in range(n):
        r.recv()
    p.join()
    r.close()
    return time.monotonic() - t0


def tests(name, n):
    """(pcfs label, pcfs thunk, peer label, peer thunk) for a test name."""
    fork = mp.get_context("fork")
    table = {
        "pool-proc-true": (lambda: pcfs_map_chunks("process", "exec /bin/true", n),
                           lambda: py_executor(cf.ProcessPoolExecutor(2, mp_context=fork), run_true, n)),
        "pool-thread-true": (lambda: pcfs_map_chunks("process", "exec /bin/true", n),
                             lambda: py_executor(cf.ThreadPoolExecutor(2), run_true, n)),
        "thread-noop": (lambda: pcfs_map_chunks("thread", "noop", n),
                        lambda: py_executor(cf.ThreadPoolExecutor(2), noop, n)),
        "proc-noop": (lambda: pcfs_map_chunks("process", "noop", n),
                      lambda: py_executor(cf.ProcessPoolExecutor(2, mp_context=fork), noop, n)),
        "process-fork": (lambda: pcfs_spawn_wait("noop", n), lambda: py_process("fork", n)),
        "process-spawn": (lambda: pcfs_spawn_wait("noop method=spawn", n),
                          lambda: py_process("spawn", n)),
        "after-spawn": (lambda: pcfs_after_spawn(n, True), lambda: pcfs_after_spawn(n, False)),
        "after-pool": (lambda: pcfs_after_pool(n, True), lambda: pcfs_after_pool(n, False)),
    }
    for kind, fn in (("queue", py_queue), ("pipe", py_pipe)):
        for size in (1024, 65536):
            table["%s-%d" % (kind, size)] = (
                lambda s=size: pcfs_channel(s, n), lambda s=size, f=fn: f(s, n))
            table["fifo-%s-%d" % (kind, size)] = (
                lambda s=size: pcfs_fifo(s, n), lambda s=size, f=fn: f(s, n))
    if name not in table:
        sys.exit("pybench: unknown test %s (%s)" % (name, " ".join(sorted(table))))
    return table[name]


def main():
    global MNT
    if len(sys.argv) != 4:
        sys.exit("usage: pybench.py MOUNT TEST COUNT")
    MNT, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ours, peer = tests(name, n)
    # pcfs first, then Python: one of each, in the same process and minute
    print("pcfs %.6f" % ours(), flush=True)
    print("python %.6f" % peer(), flush=True)


if __name__ == "__main__":
    main()
