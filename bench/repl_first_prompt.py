#!/usr/bin/env python3
"""bench/repl_first_prompt.py: time from exec to the first prompt of REPLs on
a pseudo-terminal, and their RSS at that prompt (bench/sections/70-repl.sh).

Reads a JSON request on stdin:
  {"programs": [{"name": "resi", "argv": ["/abs/resi"], "prompt": "> "}, ...],
   "runs": 30, "warmup": 3, "rss_runs": 5, "settle": 0.5, "timeout": 10,
   "cpus": "0" or "0-2" or null, "env": {"K": "V", "DROP": null},
   "rows": 24, "cols": 80}
Each run forks a child that becomes a session leader with a fresh pty as its
controlling terminal and stdin/stdout/stderr (spec/support/pty_driver.py's
open_pty and exec_on_pty, shared with the specs' pty driver), (when "cpus" is given) sets its
CPU affinity as `taskset -c` does, reads CLOCK_MONOTONIC, sends that to the
parent over a pipe and execs argv (an absolute path: no PATH search). The
parent reads the pty until the program's output holds the prompt string and
reads CLOCK_MONOTONIC again: the difference is the time from exec to the
first prompt. At that moment it reads VmRSS from /proc/PID/status; in the
first "rss_runs" runs it then keeps reading the pty for "settle" seconds and
reads VmRSS again (a REPL that loads more once its prompt is up has done so
by then). Then the child is killed (SIGKILL) and reaped. Runs are
interleaved across programs (one run of each in turn), after "warmup"
unrecorded runs of each.

Writes a JSON reply on stdout:
  {"NAME": {"ms": [...], "rss_kb": [...], "settled_rss_kb": [...],
            "sample": the output up to the prompt, from the first run}, ...}
and exits 1 (after a message on stderr) when a program never showed its
prompt within "timeout" seconds.
"""
import errno
import json
import os
import select
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "support"))
from pty_driver import exec_on_pty, open_pty  # noqa: E402 (found through the path just set)


def parse_cpus(spec):
    """A taskset-style CPU list ("0", "0-2", "0,3") as a set of ints."""
    cpus = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def read_some(master, out, seconds):
    """Appends what the pty gives within seconds; False once it is closed."""
    ready, _, _ = select.select([master], [], [], max(0.0, seconds))
    if not ready:
        return True
    try:
        data = os.read(master, 65536)
    except OSError as e:
        if e.errno != errno.EIO:
            raise
        data = b""
    if not data:
        return False
    out += data
    return True


def one_run(prog, env, cpus, rows, cols, timeout, settle):
    """One start of prog: (ms to the prompt, RSS at it, settled RSS or None, output)."""
    prompt = prog["prompt"].encode()
    master, slave_name = open_pty(rows, cols)
    rfd, wfd = os.pipe()

    def before_exec():
        """In the child, last: its affinity, then the start time to the parent."""
        os.close(master)
        os.close(rfd)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        os.write(wfd, str(t0).encode())
        os.close(wfd)

    pid = os.fork()
    if pid == 0:
        exec_on_pty(slave_name, prog["argv"], env, before_exec)  # argv[0] is absolute: no PATH search
    os.close(wfd)
    out = bytearray()
    try:
        t0 = int(os.read(rfd, 64).decode())
        os.close(rfd)
        deadline = time.monotonic() + timeout
        t1 = None
        while time.monotonic() < deadline:
            if not read_some(master, out, deadline - time.monotonic()):
                break
            if prompt in out:
                t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                break
        if t1 is None:
            raise RuntimeError(f"{prog['name']}: no prompt {prog['prompt']!r} within {timeout} s; "
                               f"output: {bytes(out)!r}")
        rss = vm_rss_kb(pid)
        settled = None
        if settle is not None:
            end = time.monotonic() + settle
            while time.monotonic() < end and read_some(master, out, end - time.monotonic()):
                pass
            settled = vm_rss_kb(pid)
        return (t1 - t0) / 1e6, rss, settled, bytes(out)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(master)


def main():
    req = json.load(sys.stdin)
    env = dict(os.environ)
    for k, v in (req.get("env") or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    cpus = parse_cpus(req["cpus"]) if req.get("cpus") else None
    rows, cols = req.get("rows", 24), req.get("cols", 80)
    timeout, settle = req.get("timeout", 10), req.get("settle", 0.5)
    runs, warmup, rss_runs = req.get("runs", 30), req.get("warmup", 3), req.get("rss_runs", 5)
    progs = req["programs"]
    res = {p["name"]: {"ms": [], "rss_kb": [], "settled_rss_kb": [], "sample": None} for p in progs}
    try:
        for i in range(warmup + runs):
            for p in progs:
                want_settle = settle if warmup <= i < warmup + rss_runs else None
                ms, rss, settled, out = one_run(p, env, cpus, rows, cols, timeout, want_settle)
                if i < warmup:
                    continue
                r = res[p["name"]]
                r["ms"].append(ms)
                r["rss_kb"].append(rss)
                if settled is not None:
                    r["settled_rss_kb"].append(settled)
                if r["sample"] is None:
                    r["sample"] = out[: out.index(p["prompt"].encode()) + len(p["prompt"])].decode("utf-8", "replace")
    except RuntimeError as e:
        print(f"repl_first_prompt: {e}", file=sys.stderr)
        sys.exit(1)
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
