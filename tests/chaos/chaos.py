#!/usr/bin/env python3
"""chaos.py - random sequences of real file operations against one pcfs mount.

    chaos.py [--seconds N] [--seed S] [--workers K] [--pcfs PATH]

Mounts pcfs on a temporary directory, takes the daemon's baseline (threads,
descriptors, RSS), then runs K worker processes, each drawing operations
from its own random.Random(seed * 1000 + k): spawn lines good and bad, ctl
commands, waits blocking and with O_NONBLOCK, waits cut short by a signal,
pools made, resized, submitted to, cancelled in, shut down and removed,
channels put to, got from, closed and removed, rmdir of ended tasks, readdir,
and open/close of files the others use too.  Each worker checks as it goes
(a wait answers within its bound, a non-blocking one at once, a refused line
gives no id, a pool's `completed` names each future once) and writes what it
saw to a log.  At the end the driver checks across all workers: every id
spawned reaches one final state, `/wait` reports each once with the code the
worker saw, `/events` has each task's end once; the daemon's threads and
descriptors come back to their baseline and its RSS near it; no zombie and
no process of the mount is left, before and after the unmount.

The seed is printed first: `chaos.py --seed S` replays a run (the same
operations in each worker; their interleaving is the machine's).
Exit 0 if every invariant held, 1 with each violation printed otherwise.
Only the standard library; run by tests/meson.build (suite chaos) and
tools/chaos.sh.
"""
import argparse
import errno
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

# Bounds.  A blocking wait must end within its task's own time plus SLACK
# (a loaded 2-core machine under ASan); a non-blocking call within NB_BOUND.
SLACK = 30.0
NB_BOUND = 5.0
FINAL = ("exited", "killed", "failed")
FUSE_THREADS = 16   # [fuse] threads, the default: libfuse's request threads at most

# Good lines: (line, expected exit code or None when any, expected stdout or None)
GOOD = [
    ("exec /bin/true", 0, ""),
    ("exec /bin/false", 1, ""),
    ("sh exit 3", 3, ""),
    ("sh echo hi", 0, "hi\n"),
    ("sleep time=50ms", 0, None),
    ("sleep time=300ms", 0, None),
    ("exec 2 /bin/true", 0, ""),
    ("exec /no/such/program", None, None),     # fails to start: a final state too
    ("sh printf %s x; exit 7", 7, "x"),
]
BAD = ["exec", "sleep time=-1", "frobnicate 3", "exec timeout=bogus /bin/true", "sh", "\x01\x02",
       "exec after=999999999 /bin/true", "sleep time=1s bogus=1", "exec 'unclosed"]
CTL = ["term", "kill", "stop", "cont", "signal USR1", "signal 0", "bogus", "signal NOPE"]
POOL_LINES = [("exec /bin/true", "done"), ("sh exit 2", "failed"), ("sleep time=100ms", "done"),
              ("noop", "done"), ("sh echo f", "done")]


class Interrupted(Exception):
    pass


def on_alarm(signum, frame):
    raise Interrupted()


def write_line(path, text, nonblock=False, answer=True):
    """Write text to path on one descriptor and read back what it answers."""
    flags = (os.O_RDWR if answer else os.O_WRONLY) | (os.O_NONBLOCK if nonblock else 0)
    fd = os.open(path, flags)
    try:
        os.write(fd, text.encode() if isinstance(text, str) else text)
        return read_all(fd, nonblock=True) if answer else ""
    finally:
        os.close(fd)


def read_all(fd, nonblock=False):
    out = b""
    while True:
        try:
            b = os.read(fd, 65536)
        except BlockingIOError:
            return out.decode(errors="replace")
        if not b:
            return out.decode(errors="replace")
        out += b


def read_file(path, nonblock=False):
    fd = os.open(path, os.O_RDONLY | (os.O_NONBLOCK if nonblock else 0))
    try:
        return read_all(fd, nonblock)
    finally:
        os.close(fd)


class Worker:
    """One process of the run: draws operations, checks each, logs what it saw."""

    def __init__(self, mnt, k, seed, deadline):
        self.m, self.k, self.deadline = mnt, k, deadline
        self.r = random.Random(seed * 1000 + k)
        self.ids = {}          # id -> {"line", "code", "out", "touched", "seen"}
        self.removed = []      # ids this worker rmdir'ed (ended then)
        self.errors = []
        self.npool = 0
        self.pools = {}        # name -> {"futures": {id: want state}, "shut": bool}
        self.nchan = 0
        self.chans = {}        # name -> list of lines put
        self.ops = {}

    def err(self, what):
        self.errors.append("worker %d: %s" % (self.k, what))

    def run(self):
        signal.signal(signal.SIGALRM, on_alarm)
        table = [(self.spawn_good, 8), (self.spawn_bad, 2), (self.ctl, 2), (self.wait_block, 4),
                 (self.wait_nonblock, 3), (self.wait_interrupted, 1), (self.multi_wait, 2),
                 (self.rmdir_task, 2), (self.readdir, 2), (self.open_close, 3),
                 (self.pool_op, 5), (self.chan_op, 4)]
        ops = [f for f, w in table for _ in range(w)]
        while time.monotonic() < self.deadline:
            op = self.r.choice(ops)
            self.ops[op.__name__] = self.ops.get(op.__name__, 0) + 1
            try:
                op()
            except Interrupted:
                self.err("%s: an alarm outlived its read" % op.__name__)
            except OSError as e:
                self.err("%s: unexpected %s" % (op.__name__, e))
        for name in list(self.pools):
            self.pool_close(name)
        for name in list(self.chans):
            self.chan_close(name)

    # --- tasks ---------------------------------------------------------
    def spawn(self, line):
        out = write_line(self.m + "/spawn", line + "\n")
        return [int(x) for x in out.split()]

    def spawn_good(self):
        line, code, want = self.r.choice(GOOD)
        t0 = time.monotonic()
        ids = self.spawn(line)
        if time.monotonic() - t0 > NB_BOUND + SLACK:
            self.err("spawn of %r took %.1fs" % (line, time.monotonic() - t0))
        want_n = 2 if line.startswith("exec 2 ") else 1
        if len(ids) != want_n:
            self.err("spawn %r gave ids %r" % (line, ids))
        for i in ids:
            self.ids[i] = {"line": line, "code": code, "out": want, "touched": False, "seen": None}

    def spawn_bad(self):
        line = self.r.choice(BAD)
        try:
            ids = self.spawn(line)
            self.err("bad line %r accepted: %r" % (line, ids))
        except OSError as e:
            if e.errno not in (errno.EINVAL,):
                self.err("bad line %r: %s" % (line, e))

    def some_id(self, own=True):
        if own and self.ids:
            return self.r.choice(list(self.ids))
        try:
            names = os.listdir(self.m + "/procs")
        except OSError:
            return None
        return int(self.r.choice(names)) if names else None

    def ctl(self):
        i = self.some_id(own=self.r.random() < 0.7)
        if i is None:
            return
        cmd = self.r.choice(CTL)
        if cmd in ("term", "kill", "signal USR1") and i in self.ids:
            self.ids[i]["touched"] = True
        elif cmd in ("term", "kill", "signal USR1"):
            return   # another worker's id: only harmless commands, its codes stay known
        try:
            write_line("%s/procs/%d/ctl" % (self.m, i), cmd + "\n")
            if cmd == "stop":
                write_line("%s/procs/%d/ctl" % (self.m, i), "cont\n")
        except OSError as e:
            if e.errno not in (errno.ESRCH, errno.ENOENT, errno.EINVAL, errno.EPERM):
                self.err("ctl %s to %d: %s" % (cmd, i, e))

    def note_code(self, i, code, how):
        rec = self.ids.get(i)
        if rec is None:
            return
        if rec["seen"] is not None and rec["seen"] != code:
            self.err("%s: id %d ended %s, earlier read %s" % (how, i, code, rec["seen"]))
        rec["seen"] = code
        if rec["code"] is not None and not rec["touched"] and code != str(rec["code"]):
            self.err("%s: id %d (%s) ended %s, want %s" % (how, i, rec["line"], code, rec["code"]))

    def wait_block(self):
        live = [i for i in self.ids if i not in self.removed]
        if not live:
            return
        i = self.r.choice(live)
        t0 = time.monotonic()
        try:
            code = read_file("%s/procs/%d/wait" % (self.m, i)).strip()
        except OSError as e:
            self.err("wait %d: %s" % (i, e))
            return
        if time.monotonic() - t0 > 0.3 + SLACK:
            self.err("wait %d took %.1fs" % (i, time.monotonic() - t0))
        self.note_code(i, code, "wait")
        if self.ids[i]["out"] is not None and not self.ids[i]["touched"] and code != "":
            out = read_file("%s/procs/%d/stdout" % (self.m, i))
            if out != self.ids[i]["out"]:
                self.err("stdout of %d (%s): %r" % (i, self.ids[i]["line"], out))

    def wait_nonblock(self):
        i = self.some_id(own=self.r.random() < 0.5)
        if i is None:
            return
        t0 = time.monotonic()
        try:
            code = read_file("%s/procs/%d/wait" % (self.m, i), nonblock=True).strip()
            if code:
                self.note_code(i, code, "nonblocking wait")
        except OSError as e:
            if e.errno != errno.ENOENT:
                self.err("nonblocking wait %d: %s" % (i, e))
        if time.monotonic() - t0 > NB_BOUND:
            self.err("nonblocking wait %d took %.1fs" % (i, time.monotonic() - t0))

    def wait_interrupted(self):
        """A long task's wait (or /wait) cut short by SIGALRM, then the task killed."""
        ids = self.spawn("sleep time=60s")
        for i in ids:
            self.ids[i] = {"line": "sleep time=60s", "code": None, "out": None,
                           "touched": True, "seen": None}
        path = "%s/procs/%d/wait" % (self.m, ids[0])
        use_all = self.r.random() < 0.5
        fd = os.open(self.m + "/wait" if use_all else path, os.O_RDWR if use_all else os.O_RDONLY)
        t0 = time.monotonic()
        try:
            if use_all:
                os.write(fd, b"%d\n" % ids[0])
            signal.setitimer(signal.ITIMER_REAL, self.r.uniform(0.01, 0.3))
            os.read(fd, 100)
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.err("wait of a 60 s task returned before its alarm")
        except Interrupted:
            if time.monotonic() - t0 > 0.3 + SLACK:
                self.err("an interrupted wait took %.1fs" % (time.monotonic() - t0))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            os.close(fd)
        write_line("%s/procs/%d/ctl" % (self.m, ids[0]), "kill\n")
        self.note_code(ids[0], read_file(path).strip(), "wait after kill")
        if self.ids[ids[0]]["seen"] != "-9":
            self.err("killed task %d ended %s" % (ids[0], self.ids[ids[0]]["seen"]))

    def multi_wait(self):
        live = [i for i in self.ids if i not in self.removed]
        if not live:
            return
        pick = self.r.sample(live, min(len(live), self.r.randint(1, 6)))
        fd = os.open(self.m + "/wait", os.O_RDWR)
        t0 = time.monotonic()
        try:
            os.write(fd, (" ".join(map(str, pick)) + "\n").encode())
            text = self.read_until(fd, len(pick))
        finally:
            os.close(fd)
        if time.monotonic() - t0 > 0.3 + SLACK:
            self.err("/wait of %r took %.1fs" % (pick, time.monotonic() - t0))
        got = [l.split() for l in text.splitlines()]
        if sorted(int(g[0]) for g in got) != sorted(pick):
            self.err("/wait of %r answered %r" % (pick, text))
        for g in got:
            self.note_code(int(g[0]), g[1], "/wait")

    def read_until(self, fd, nlines):
        text = ""
        while text.count("\n") < nlines:
            b = os.read(fd, 65536)
            if not b:
                break
            text += b.decode()
        return text

    def rmdir_task(self):
        done = [i for i, r in self.ids.items() if r["seen"] is not None and i not in self.removed]
        if not done:
            return
        i = self.r.choice(done)
        try:
            os.rmdir("%s/procs/%d" % (self.m, i))
            self.removed.append(i)
            if os.path.exists("%s/procs/%d/status" % (self.m, i)):
                self.err("procs/%d still there after its rmdir" % i)
        except OSError as e:
            self.err("rmdir of ended task %d: %s" % (i, e))

    def readdir(self):
        d = self.r.choice(["procs", "pools", "channels", "", "procs/%s" % self.some_id(False)])
        try:
            os.listdir(os.path.join(self.m, d))
        except OSError as e:
            if e.errno != errno.ENOENT:
                self.err("readdir %s: %s" % (d, e))

    def open_close(self):
        i = self.some_id(own=False)
        paths = ["stats", "stats.json", "top", "config", "procs/%s/status" % i,
                 "procs/%s/status.json" % i, "procs/%s/mem" % i, "log"]
        fds = []
        try:
            for _ in range(self.r.randint(1, 8)):
                try:
                    fds.append(os.open(os.path.join(self.m, self.r.choice(paths)),
                                       os.O_RDONLY | os.O_NONBLOCK))
                except OSError as e:
                    if e.errno not in (errno.ENOENT, errno.EACCES, errno.ESRCH):
                        self.err("open: %s" % e)
            self.r.shuffle(fds)
            for fd in fds[: len(fds) // 2]:
                try:
                    os.read(fd, 4096)
                except OSError as e:
                    if e.errno not in (errno.ENOENT, errno.EAGAIN):
                        self.err("read: %s" % e)
        finally:
            for fd in fds:
                os.close(fd)

    # --- pools -----------------------------------------------------------
    def pool_op(self):
        if not self.pools or (len(self.pools) < 2 and self.r.random() < 0.2):
            name = "w%dp%d" % (self.k, self.npool)
            self.npool += 1
            os.mkdir("%s/pools/%s" % (self.m, name))
            self.pools[name] = {"futures": {}, "shut": False}
            write_line("%s/pools/%s/ctl" % (self.m, name), "workers=%d\n" % self.r.randint(1, 3))
            return
        name = self.r.choice(list(self.pools))
        p = self.pools[name]
        base = "%s/pools/%s" % (self.m, name)
        what = self.r.random()
        if what < 0.5 and not p["shut"]:
            lines = [self.r.choice(POOL_LINES) for _ in range(self.r.randint(1, 20))]
            ids = [int(x) for x in write_line(base + "/submit",
                                              "".join(l + "\n" for l, _ in lines)).split()]
            if len(ids) != len(lines):
                self.err("submit of %d lines to %s gave %r" % (len(lines), name, ids))
            for i, (_, want) in zip(ids, lines):
                p["futures"][i] = want
        elif what < 0.65 and p["futures"]:
            i = self.r.choice(list(p["futures"]))
            try:
                write_line("%s/futures/%d/cancel" % (base, i), "1\n")
                p["futures"][i] = "cancelled"
            except OSError as e:
                if e.errno != errno.EBUSY:
                    self.err("cancel %s/%d: %s" % (name, i, e))
        elif what < 0.8 and not p["shut"]:
            write_line(base + "/ctl", "workers=%d\n" % self.r.randint(1, 4))
        elif what < 0.9:
            read_file(base + "/status")
            read_file(base + "/completed", nonblock=True)
        else:
            self.pool_close(name)

    def pool_close(self, name):
        """Shut the pool down, read `completed` to its EOF, check, remove it."""
        p = self.pools.pop(name)
        base = "%s/pools/%s" % (self.m, name)
        write_line(base + "/ctl", self.r.choice(["shutdown\n", "shutdown cancel\n"]))
        t0 = time.monotonic()
        ids = [int(x) for x in read_file(base + "/completed").split()]
        if time.monotonic() - t0 > SLACK + 0.1 * len(p["futures"]):
            self.err("%s drained in %.1fs" % (name, time.monotonic() - t0))
        if sorted(ids) != sorted(p["futures"]):
            self.err("%s completed %d ids, submitted %d (dups %d)" % (
                name, len(ids), len(p["futures"]), len(ids) - len(set(ids))))
        for i, want in p["futures"].items():
            st = read_file("%s/futures/%d/state" % (base, i)).strip()
            if st not in ("done", "failed", "cancelled"):
                self.err("%s future %d is %s after the drain" % (name, i, st))
            elif want == "cancelled" and st != "cancelled":
                self.err("%s future %d cancelled but %s" % (name, i, st))
            elif want != "cancelled" and st not in (want, "cancelled"):
                self.err("%s future %d (%s) is %s, want %s: %s" % (
                    name, i, read_file("%s/futures/%d/task" % (base, i)).strip(), st, want,
                    read_file("%s/futures/%d/error" % (base, i)).strip()))
        for _ in range(200):   # the workers' exit may trail the drain
            try:
                os.rmdir(base)
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    self.err("rmdir %s: %s" % (name, e))
                    return
                time.sleep(0.05)
        self.err("rmdir %s: still busy after its drain" % name)

    # --- channels --------------------------------------------------------
    def chan_op(self):
        if not self.chans or (len(self.chans) < 2 and self.r.random() < 0.2):
            name = "w%dc%d" % (self.k, self.nchan)
            self.nchan += 1
            write_line(self.m + "/channels/ctl", "queue %s capacity=%d\n" % (
                name, self.r.randint(50, 200)))
            self.chans[name] = []
            return
        name = self.r.choice(list(self.chans))
        base = "%s/channels/%s" % (self.m, name)
        if self.r.random() < 0.7:
            lines = ["%d.%d.%d" % (self.k, len(self.chans[name]), j)
                     for j in range(self.r.randint(1, 20))]
            try:
                write_line(base + "/put", "".join(l + "\n" for l in lines), nonblock=True,
                           answer=False)
                self.chans[name] += lines
            except BlockingIOError:
                pass   # full: all or nothing
        else:
            self.chan_close(name)

    def chan_close(self, name):
        """Close, read every message back in order, remove."""
        lines = self.chans.pop(name)
        base = "%s/channels/%s" % (self.m, name)
        write_line(base + "/ctl", "close\n")
        got = read_file(base + "/get").splitlines()
        if got != lines:
            self.err("channel %s: put %d lines, got %d back (first differing: %r)" % (
                name, len(lines), len(got),
                next(((a, b) for a, b in zip(lines, got) if a != b), None)))
        os.rmdir(base)


def worker_main(mnt, k, seed, deadline, logpath):
    w = Worker(mnt, k, seed, deadline)
    try:
        w.run()
    except Exception as e:   # an op that could not go on: a finding, not a crash of the run
        w.err("stopped by %r" % e)
    with open(logpath, "w") as f:
        json.dump({"ids": w.ids, "removed": w.removed, "errors": w.errors, "ops": w.ops}, f)


# --- the daemon --------------------------------------------------------------
def proc_figures(pid):
    """The daemon's threads (apart from libfuse's request threads, which it
    keeps once made, up to [fuse] threads: told apart at rest by where they
    sleep, reading /dev/fuse), FUSE threads, descriptors, RSS."""
    st = open("/proc/%d/status" % pid).read()
    get = lambda k: int(next(l.split()[1] for l in st.splitlines() if l.startswith(k + ":")))
    fuse = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            fuse += open("/proc/%d/task/%s/wchan" % (pid, t)).read() == "fuse_dev_do_read"
        except OSError:
            pass
    return {"threads": get("Threads") - fuse, "fuse_threads": fuse,
            "fds": len(os.listdir("/proc/%d/fd" % pid)), "rss_kib": get("VmRSS")}


def mount_pcfs(pcfs, work, extra_ini=""):
    mnt = tempfile.mkdtemp(dir=work, prefix="mnt.")
    ini = os.path.join(work, "pcfs.ini")
    with open(ini, "w") as f:
        f.write("[fuse]\nauto_unmount = true\n[log]\nevents = 1000000\n"
                "[tasks]\nhistory = 1000000\n[limits]\nmax_tasks = 1000000\n" + extra_ini)
    err = open(os.path.join(work, "pcfs.stderr"), "w")
    p = subprocess.Popen([pcfs, "-f", "--config", ini, mnt], stderr=err)
    for _ in range(200):
        if (" %s fuse.pcfs " % mnt) in open("/proc/mounts").read():
            return mnt, p
        if p.poll() is not None:
            break
        time.sleep(0.05)
    sys.exit("pcfs did not mount: " + open(os.path.join(work, "pcfs.stderr")).read())


def mount_procs(mnt):
    """Pids whose environment names this mount: its tasks, their children, workers."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            env = open("/proc/%s/environ" % d, "rb").read().split(b"\0")
        except OSError:
            continue
        if ("PCFS_MOUNT=" + mnt).encode() in env:
            out.append(int(d))
    return out


def zombies_of(pid):
    out = []
    for d in os.listdir("/proc"):
        try:
            st = open("/proc/%s/stat" % d).read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if fields[0] == "Z" and int(fields[1]) == pid:
            out.append(int(d))
    return out


def wait_for(cond, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def settle(mnt):
    """Something of every kind once, so the baseline holds the fork server,
    the hosts and the threads that the first use starts and keeps."""
    for line in ("exec /bin/true", "sleep time=1ms"):
        i = write_line(mnt + "/spawn", line + "\n").split()[0]
        read_file("%s/procs/%s/wait" % (mnt, i))
    os.mkdir(mnt + "/pools/warm")
    write_line(mnt + "/pools/warm/submit", "noop\n")
    write_line(mnt + "/pools/warm/ctl", "shutdown\n")
    read_file(mnt + "/pools/warm/completed")
    wait_for(lambda: try_rmdir(mnt + "/pools/warm"), 10)
    os.mkdir(mnt + "/channels/warm")
    write_line(mnt + "/channels/warm/ctl", "close\n")
    os.rmdir(mnt + "/channels/warm")


def try_rmdir(path):
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False


def check_all(mnt, logs, problems):
    """Across workers: each id one final state, once in /wait with its code, once in /events."""
    ids, removed = {}, set()
    for lg in logs:
        ids.update({int(i): r for i, r in lg["ids"].items()})
        removed.update(lg["removed"])
    keep = sorted(i for i in ids if i not in removed)
    for i in keep:
        st = read_file("%s/procs/%d/state" % (mnt, i)).strip()
        if st not in FINAL:
            problems.append("id %d is %s at the end" % (i, st))
    if keep:
        fd = os.open(mnt + "/wait", os.O_RDWR)
        os.write(fd, (" ".join(map(str, keep)) + "\n").encode())
        text = ""
        while text.count("\n") < len(keep):
            b = os.read(fd, 65536)
            if not b:
                break
            text += b.decode()
        os.close(fd)
        seen = {}
        for l in text.splitlines():
            i, code = l.split()
            seen.setdefault(int(i), []).append(code)
        for i in keep:
            got = seen.get(i, [])
            if len(got) != 1:
                problems.append("/wait reported id %d %d times" % (i, len(got)))
            elif ids[i]["seen"] is not None and got[0] != ids[i]["seen"]:
                problems.append("/wait: id %d ended %s, a worker read %s" % (i, got[0], ids[i]["seen"]))
    ends = {}
    events = read_file(mnt + "/events", nonblock=True)
    if "# missed" in events:
        problems.append("/events missed events (ring too small for the run)")
    for l in events.splitlines():
        f = l.split()
        if len(f) >= 4 and f[2] == "task" and f[3] == "ended":
            ends[int(f[1])] = ends.get(int(f[1]), 0) + 1
    for i in ids:
        if ends.get(i, 0) != 1:
            problems.append("/events has id %d's end %d times" % (i, ends.get(i, 0)))
    return len(ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--pcfs", default=os.environ.get("PCFS", "build/pcfs"))
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 10**9)
    print("chaos: seed %d, %d workers, %.0f s (replay: --seed %d)" % (seed, a.workers, a.seconds, seed),
          flush=True)
    work = tempfile.mkdtemp(prefix="pcfs-chaos.")
    mnt, daemon = mount_pcfs(a.pcfs, work)
    problems = []
    try:
        settle(mnt)
        time.sleep(0.5)
        base = proc_figures(daemon.pid)
        print("chaos: baseline %s" % base, flush=True)
        deadline = time.monotonic() + a.seconds
        procs, paths = [], []
        for k in range(a.workers):
            paths.append(os.path.join(work, "w%d.json" % k))
            p = multiprocessing.Process(target=worker_main, args=(mnt, k, seed, deadline, paths[-1]))
            p.start()
            procs.append(p)
        peak = base
        while any(p.is_alive() for p in procs):
            if daemon.poll() is not None:
                problems.append("the daemon exited (%s) during the run" % daemon.returncode)
                break
            f = proc_figures(daemon.pid)
            peak = {k: max(peak[k], f[k]) for k in f}
            time.sleep(0.5)
        for p in procs:
            p.join(SLACK * 4)
            if p.is_alive():
                problems.append("worker pid %d hung (bound %.0f s)" % (p.pid, SLACK * 4))
                p.kill()
        logs = []
        for path in paths:
            try:
                logs.append(json.load(open(path)))
            except (OSError, ValueError):
                problems.append("no log from %s" % path)
        ops = {}
        for lg in logs:
            problems += lg["errors"]
            for k, v in lg["ops"].items():
                ops[k] = ops.get(k, 0) + v
        n = check_all(mnt, logs, problems)
        print("chaos: %d operations %s, %d task ids; peak %s" % (sum(ops.values()), ops, n, peak))
        for i in os.listdir(mnt + "/procs"):    # forget every task: the figures' baseline
            try_rmdir("%s/procs/%s" % (mnt, i))
        end = {}

        def back():
            end.update(proc_figures(daemon.pid))
            return (end["threads"] <= base["threads"] and end["fds"] <= base["fds"] and
                    end["fuse_threads"] <= FUSE_THREADS)
        if not wait_for(back, SLACK):
            problems.append("threads/fds did not come back: baseline %s, now %s" % (base, end))
        # (not under ASan: its quarantine keeps up to 256 MiB of freed memory)
        sanitized = "libasan" in open("/proc/%d/maps" % daemon.pid).read()
        if not sanitized and end.get("rss_kib", 0) > base["rss_kib"] * 2 + 65536:
            problems.append("RSS %d KiB after the run, baseline %d" % (end["rss_kib"], base["rss_kib"]))
        print("chaos: after the run %s" % end)
        if not wait_for(lambda: not mount_procs(mnt), SLACK):
            problems.append("processes of the mount left: %s" % mount_procs(mnt))
        if zombies_of(daemon.pid):
            problems.append("zombies of the daemon: %s" % zombies_of(daemon.pid))
    finally:
        subprocess.call(["fusermount3", "-u", mnt])
        try:
            rc = daemon.wait(SLACK)
            if rc != 0:
                problems.append("the daemon exited %d at the unmount" % rc)
        except subprocess.TimeoutExpired:
            problems.append("the daemon did not exit after the unmount")
            daemon.kill()
            daemon.wait()
        left = mount_procs(mnt)
        if left:
            problems.append("processes of the mount left after the unmount: %s" % left)
            for pid in left:
                os.kill(pid, signal.SIGKILL)
    stderr = open(os.path.join(work, "pcfs.stderr")).read()
    for marker in ("Sanitizer", "runtime error:", "double free"):
        if marker in stderr:
            problems.append("daemon stderr has %r:\n%s" % (marker, stderr[-3000:]))
            break
    for p in problems[:50]:
        print("FAIL " + p)
    print("chaos: seed %d: %s" % (seed, "%d problems" % len(problems) if problems else "ok"))
    if not problems and not os.environ.get("KEEP"):
        subprocess.call(["rm", "-rf", work])
    else:
        print("chaos: kept %s" % work)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
