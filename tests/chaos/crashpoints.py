#!/usr/bin/env python3
"""crashpoints.py - SIGKILL the daemon at random moments under a mixed load,
restart it on the same [state] dir, and check what readers were told.

    crashpoints.py [--points N] [--seed S] [--pcfs PATH]

Each point: start pcfs on the same mountpoint and state dir; check
everything a reader was told had ended before (a returned `procs/ID/wait`,
a line of `/wait`, a line of a pool's `completed` with the future's state
and result read after it) is still so, with the same exit code and output;
check every other task the run made is ended or `lost`, and every future
ends (done, failed, cancelled or `lost`: a running one with a retry left
runs again); then load it again (tasks, pool futures with retries=,
channel puts and gets from three threads) and SIGKILL the daemon after a
random 0.1-1.5 s.  The seed is printed; exit 0 if every point held.
"""
import argparse
import errno
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos import read_file, write_line  # noqa: E402

BOUND = 60.0   # seconds for anything to settle on a loaded machine
FUT_FINAL = ("done", "failed", "cancelled", "skipped", "lost")


class Run:
    def __init__(self, pcfs, seed):
        self.pcfs, self.r = pcfs, random.Random(seed)
        self.work = tempfile.mkdtemp(prefix="pcfs-crash.")
        self.mnt = os.path.join(self.work, "mnt")
        self.state = os.path.join(self.work, "state")
        os.mkdir(self.mnt)
        self.ini = os.path.join(self.work, "pcfs.ini")
        with open(self.ini, "w") as f:
            f.write("[state]\ndir = %s\n[fuse]\nauto_unmount = true\n"
                    "[tasks]\nhistory = 100000\n[limits]\nmax_tasks = 100000\n" % self.state)
        self.daemon = None
        self.lock = threading.Lock()
        self.told_tasks = {}     # id -> (code, stdout)
        self.told_futs = {}      # id -> (state, result or None)
        self.tasks = set()       # every id a spawn gave back
        self.futs = set()
        self.problems = []

    def mounted(self):
        return (" %s fuse.pcfs " % self.mnt) in open("/proc/mounts").read()

    def start(self):
        err = open(os.path.join(self.work, "pcfs.stderr"), "a")
        self.daemon = subprocess.Popen([self.pcfs, "-f", "--config", self.ini, self.mnt], stderr=err)
        end = time.monotonic() + BOUND
        while time.monotonic() < end:
            if self.mounted():
                try:
                    os.listdir(self.mnt + "/procs")
                    return
                except OSError:
                    pass
            if self.daemon.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit("pcfs did not start:\n" + open(os.path.join(self.work, "pcfs.stderr")).read()[-3000:])

    def crash(self):
        self.daemon.send_signal(signal.SIGKILL)
        self.daemon.wait()
        end = time.monotonic() + BOUND   # auto_unmount takes the mount away
        while self.mounted() and time.monotonic() < end:
            time.sleep(0.05)
        if self.mounted():
            subprocess.call(["fusermount3", "-uz", self.mnt])

    # --- what a restart must give back ------------------------------------
    def check(self, point):
        m = self.mnt
        for i, (code, out) in sorted(self.told_tasks.items()):
            got = read_file("%s/procs/%d/exitcode" % (m, i)).strip()
            if got != code:
                self.problems.append("point %d: task %d was told %s, now %r" % (point, i, code, got))
            elif read_file("%s/procs/%d/stdout" % (m, i)) != out:
                self.problems.append("point %d: task %d's output changed" % (point, i))
        for i in sorted(self.tasks):
            st = read_file("%s/procs/%d/state" % (m, i)).strip()
            if st not in ("exited", "killed", "failed", "lost"):
                self.problems.append("point %d: task %d is %s after the restart" % (point, i, st))
        p = m + "/pools/cp"
        if not os.path.isdir(p):
            self.problems.append("point %d: the pool did not come back" % point)
            return
        for i, (state, result) in sorted(self.told_futs.items()):
            got = read_file("%s/futures/%d/state" % (p, i)).strip()
            if got != state:
                self.problems.append("point %d: future %d was told %s, now %s" % (point, i, state, got))
            elif result is not None and read_file("%s/futures/%d/result" % (p, i)) != result:
                self.problems.append("point %d: future %d's result changed" % (point, i))
        # A hang is a pool that stops making progress, not a long queue: the
        # bound runs from the last future seen ending (hundreds may be queued
        # behind two workers on a loaded machine).
        end = time.monotonic() + BOUND
        left = set(self.futs)
        while left and time.monotonic() < end:
            before = len(left)
            left = {i for i in left
                    if read_file("%s/futures/%d/state" % (p, i)).strip() not in FUT_FINAL}
            if len(left) < before:
                end = time.monotonic() + BOUND
            time.sleep(0.1)
        for i in sorted(left):
            self.problems.append("point %d: future %d never ended after the restart" % (point, i))
        done = read_file(p + "/completed", nonblock=True).split()
        if len(done) != len(set(done)):
            self.problems.append("point %d: `completed` names a future twice" % point)
        missing = set(self.told_futs) - {int(x) for x in done}
        if missing:
            self.problems.append("point %d: told completed, not in `completed`: %s" % (
                point, sorted(missing)[:10]))

    # --- the load -------------------------------------------------------
    def load_tasks(self, stop, r):
        while not stop.is_set():
            code = r.randint(0, 5)
            out = "t%d" % r.randint(0, 10**6)
            line = r.choice(["sh echo %s; exit %d" % (out, code), "sleep time=%dms" % r.randint(1, 400)])
            ids = [int(x) for x in write_line(self.mnt + "/spawn", line + "\n").split()]
            with self.lock:
                self.tasks.update(ids)
            if r.random() < 0.5:
                got = read_file("%s/procs/%d/wait" % (self.mnt, ids[0])).strip()
            else:
                fd = os.open(self.mnt + "/wait", os.O_RDWR)
                try:
                    os.write(fd, b"%d\n" % ids[0])
                    got = os.read(fd, 100).decode().split()[1]
                finally:
                    os.close(fd)
            stdout = read_file("%s/procs/%d/stdout" % (self.mnt, ids[0]))
            with self.lock:
                self.told_tasks[ids[0]] = (got, stdout)

    def load_pool(self, stop, r):
        p = self.mnt + "/pools/cp"
        seen = set()
        while not stop.is_set():
            lines = []
            for _ in range(r.randint(1, 8)):
                lines.append(r.choice(["sh retries=1 echo f%d" % r.randint(0, 999),
                                       "sh exit %d" % r.randint(0, 2),
                                       "sleep time=%dms" % r.randint(1, 300), "noop"]))
            ids = [int(x) for x in write_line(p + "/submit", "".join(l + "\n" for l in lines)).split()]
            with self.lock:
                self.futs.update(ids)
            for x in read_file(p + "/completed", nonblock=True).split():
                i = int(x)
                if i in seen:
                    continue
                seen.add(i)
                state = read_file("%s/futures/%d/state" % (p, i)).strip()
                result = read_file("%s/futures/%d/result" % (p, i)) if state == "done" else None
                with self.lock:
                    self.told_futs[i] = (state, result)

    def load_chan(self, stop, r):
        while not stop.is_set():
            name = "c%d" % r.randint(0, 3)
            try:
                write_line(self.mnt + "/channels/ctl", "queue %s\n" % name)
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
            write_line("%s/channels/%s/put" % (self.mnt, name), "x\n" * r.randint(1, 50),
                       nonblock=True, answer=False)
            read_file("%s/channels/%s/get" % (self.mnt, name), nonblock=True)

    def load_then_crash(self):
        stop = threading.Event()

        def guard(fn, r):
            try:
                fn(stop, r)
            except OSError:
                pass   # the daemon went away under it: the point of the test
        threads = [threading.Thread(target=guard, args=(fn, random.Random(self.r.random())))
                   for fn in (self.load_tasks, self.load_pool, self.load_chan)]
        for t in threads:
            t.start()
        time.sleep(self.r.uniform(0.1, 1.5))
        self.crash()
        stop.set()
        for t in threads:
            t.join(BOUND)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--pcfs", default=os.environ.get("PCFS", "build/pcfs"))
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 10**9)
    print("crashpoints: seed %d, %d points (replay: --seed %d)" % (seed, a.points, seed), flush=True)
    run = Run(a.pcfs, seed)
    try:
        run.start()
        os.mkdir(run.mnt + "/pools/cp")
        write_line(run.mnt + "/pools/cp/ctl", "workers=2\n")
        for point in range(1, a.points + 1):
            run.load_then_crash()
            run.start()
            run.check(point)
            if point % 10 == 0 or point == a.points:
                print("crashpoints: %d points, %d tasks (%d told), %d futures (%d told), %d problems"
                      % (point, len(run.tasks), len(run.told_tasks), len(run.futs),
                         len(run.told_futs), len(run.problems)), flush=True)
        write_line(run.mnt + "/pools/cp/ctl", "shutdown cancel\n")
    finally:
        if run.daemon and run.daemon.poll() is None:
            subprocess.call(["fusermount3", "-u", run.mnt])
            try:
                run.daemon.wait(BOUND)
            except subprocess.TimeoutExpired:
                run.daemon.kill()
                run.daemon.wait()
    stderr = open(os.path.join(run.work, "pcfs.stderr")).read()
    for marker in ("Sanitizer", "runtime error:", "double free"):
        if marker in stderr:
            run.problems.append("daemon stderr has %r" % marker)
    for p in run.problems[:50]:
        print("FAIL " + p)
    print("crashpoints: seed %d: %s" % (seed, "%d problems" % len(run.problems) if run.problems else "ok"))
    if run.problems or os.environ.get("KEEP"):
        print("crashpoints: kept %s" % run.work)
    else:
        subprocess.call(["rm", "-rf", run.work])
    return 1 if run.problems else 0


if __name__ == "__main__":
    sys.exit(main())
