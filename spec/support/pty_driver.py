#!/usr/bin/env python3
"""pty_driver.py: runs one command on a real pseudo-terminal and reports what
it wrote, for specs of terminal programs (spec/support/pty.lua drives it).

Reads a JSON request on stdin:
  {"argv": [...], "env": {"K": "V", "DROP": null}, "rows": 24, "cols": 80,
   "timeout": 10, "steps": [STEP, ...]}
STEP is one of
  {"send": "text"}            write bytes to the terminal (as typed keys)
  {"wait_for": "text"}        wait until text appears in the output after the
                              end of the previous match ("regex": true: a
                              Python regular expression)
  {"sleep": 0.2}              wait that many seconds
  {"resize": [rows, cols]}    change the window size (the child gets SIGWINCH)
  {"signal": "TERM"}          send a signal to the child ("pid_pattern": a
                              regex whose group 1 in the output is the pid to
                              signal instead, e.g. a process under a shell)
  {"wait_exit": true}         wait for the child to exit
Writes a JSON reply on stdout:
  {"output": raw bytes as text (UTF-8, invalid bytes replaced),
   "screen": the screen as the VT100 model below renders it (rows joined by
             "\n", trailing blank rows dropped), "cursor": [row, col] (1-based),
   "status": exit status or null, "signal": number or null,
   "timed_out": bool, "failed_step": index (1-based) of a wait that timed out,
   "tty": {"icanon": bool, "echo": bool, "isig": bool} of the terminal after
          the child exited}
The child runs in a new session with the pty as its controlling terminal.
"""
import errno
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time


class Screen:
    """A small VT100 model: enough of the sequences line editors send."""

    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.r = self.c = 0
        self.wrap_pending = False
        self.state, self.params = "text", ""
        self.utf8 = b""

    def resize(self, rows, cols):
        self.grid = [(r + [" "] * cols)[:cols] for r in self.grid][-rows:]
        while len(self.grid) < rows:
            self.grid.append([" "] * cols)
        self.rows, self.cols = rows, cols
        self.r, self.c = min(self.r, rows - 1), min(self.c, cols - 1)

    def feed(self, data):
        for byte in data:
            self.byte(byte)

    def byte(self, b):
        if self.state == "esc":
            self.state = "csi" if b == 0x5B else ("osc" if b == 0x5D else "text")
            self.params = ""
            return
        if self.state == "csi":
            ch = chr(b)
            if 0x40 <= b <= 0x7E:
                self.state = "text"
                self.csi(ch, self.params)
            else:
                self.params += ch
            return
        if self.state == "osc":
            if b == 0x07:
                self.state = "text"
            return
        if self.utf8 or b >= 0x80:
            self.utf8 += bytes([b])
            try:
                ch = self.utf8.decode("utf-8")
            except UnicodeDecodeError:
                if len(self.utf8) >= 4:
                    self.utf8 = b""
                return
            self.utf8 = b""
            self.put(ch)
            return
        if b == 0x1B:
            self.state = "esc"
        elif b == 0x0D:
            self.c, self.wrap_pending = 0, False
        elif b == 0x0A:
            self.linefeed()
        elif b == 0x08:
            if self.c > 0:
                self.c -= 1
            self.wrap_pending = False
        elif b == 0x09:
            self.c = min(self.cols - 1, (self.c // 8 + 1) * 8)
        elif b == 0x07:
            pass
        elif b >= 0x20:
            self.put(chr(b))

    def linefeed(self):
        self.wrap_pending = False
        if self.r == self.rows - 1:
            self.grid.pop(0)
            self.grid.append([" "] * self.cols)
        else:
            self.r += 1

    def put(self, ch):
        if self.wrap_pending:
            self.c = 0
            self.linefeed()
        self.grid[self.r][self.c] = ch
        if self.c == self.cols - 1:
            self.wrap_pending = True
        else:
            self.c += 1

    def csi(self, final, params):
        private = params.startswith("?")
        nums = [int(p) if p.isdigit() else 0 for p in params.lstrip("?").split(";")] if params else []
        n = nums[0] if nums and nums[0] > 0 else 1
        row = self.grid[self.r]
        if private:
            return
        self.wrap_pending = False
        if final == "A":
            self.r = max(0, self.r - n)
        elif final == "B":
            self.r = min(self.rows - 1, self.r + n)
        elif final == "C":
            self.c = min(self.cols - 1, self.c + n)
        elif final == "D":
            self.c = max(0, self.c - n)
        elif final == "G":
            self.c = min(self.cols - 1, n - 1)
        elif final in "Hf":
            r = nums[0] if nums and nums[0] > 0 else 1
            c = nums[1] if len(nums) > 1 and nums[1] > 0 else 1
            self.r, self.c = min(self.rows, r) - 1, min(self.cols, c) - 1
        elif final == "K":
            mode = nums[0] if nums else 0
            lo, hi = {0: (self.c, self.cols), 1: (0, self.c + 1), 2: (0, self.cols)}.get(mode, (0, 0))
            for i in range(lo, hi):
                row[i] = " "
        elif final == "J":
            mode = nums[0] if nums else 0
            if mode == 0:
                for i in range(self.c, self.cols):
                    row[i] = " "
                for r in range(self.r + 1, self.rows):
                    self.grid[r] = [" "] * self.cols
            elif mode == 2:
                self.grid = [[" "] * self.cols for _ in range(self.rows)]
        elif final == "@":
            for _ in range(n):
                row.insert(self.c, " ")
                row.pop()
        elif final == "P":
            for _ in range(n):
                row.pop(self.c)
                row.append(" ")
        elif final == "X":
            for i in range(self.c, min(self.cols, self.c + n)):
                row[i] = " "

    def text(self):
        lines = ["".join(r).rstrip() for r in self.grid]
        while lines and lines[-1] == "":
            lines.pop()
        return "\n".join(lines)


def open_pty(rows, cols):
    """A new pseudo-terminal of rows x cols: its master fd and the name of
    its slave device (closed here; the child opens it)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    name = os.ttyname(slave)
    os.close(slave)
    return master, name


def exec_on_pty(slave_name, argv, env, before_exec=None):
    """In a forked child: a new session whose controlling terminal, stdin,
    stdout and stderr are the pty slave_name, then before_exec() (when
    given), then exec argv with env (argv[0] is looked up in PATH unless it
    is a path). Never returns (status 127 when the exec failed).
    bench/repl_first_prompt.py starts its programs with this too."""
    try:
        os.setsid()
        fd = os.open(slave_name, os.O_RDWR)  # becomes the controlling terminal
        for i in range(3):
            os.dup2(fd, i)
        if fd > 2:
            os.close(fd)
        if before_exec is not None:
            before_exec()
        os.execvpe(argv[0], argv, env)
    finally:
        os._exit(127)


SIGNALS = {"TERM": signal.SIGTERM, "HUP": signal.SIGHUP, "INT": signal.SIGINT,
           "KILL": signal.SIGKILL, "WINCH": signal.SIGWINCH, "QUIT": signal.SIGQUIT}


class Run:
    """One child on a pty, its output and its exit."""

    def __init__(self, req):
        self.rows, self.cols = req.get("rows", 24), req.get("cols", 80)
        self.deadline = time.monotonic() + req.get("timeout", 10)
        self.out = bytearray()
        self.mark = 0
        self.status = self.signal = None
        self.screen = Screen(self.rows, self.cols)
        env = dict(os.environ)
        env.setdefault("TERM", "vt100")
        for k, v in (req.get("env") or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self.master, slave_name = open_pty(self.rows, self.cols)
        self.pid = os.fork()
        if self.pid == 0:
            exec_on_pty(slave_name, req["argv"], env)
        self.slave = os.open(slave_name, os.O_RDWR | os.O_NOCTTY)

    def pump(self, seconds):
        """Reads output for up to seconds (less when the child has exited)."""
        end = min(self.deadline, time.monotonic() + seconds)
        while True:
            left = end - time.monotonic()
            ready, _, _ = select.select([self.master], [], [], max(0.0, left))
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if data:
                    self.out += data
                    self.screen.feed(data)
                    continue
            self.reap()
            if left <= 0 or (self.status is not None or self.signal is not None) and not ready:
                return

    def reap(self):
        if self.status is not None or self.signal is not None:
            return
        pid, st = os.waitpid(self.pid, os.WNOHANG)
        if pid:
            if os.WIFEXITED(st):
                self.status = os.WEXITSTATUS(st)
            else:
                self.signal = os.WTERMSIG(st)

    def exited(self):
        self.reap()
        return self.status is not None or self.signal is not None

    def wait_for(self, pattern, regex):
        while True:
            text = self.out[self.mark:].decode("utf-8", "replace")
            m = re.search(pattern, text) if regex else None
            at = (m.start(), m.end()) if m else None
            if not regex and pattern in text:
                i = text.index(pattern)
                at = (i, i + len(pattern))
            if at:
                self.mark += len(text[:at[1]].encode("utf-8", "replace"))
                return True
            if time.monotonic() >= self.deadline or self.exited():
                self.pump(0.05)
                text = self.out[self.mark:].decode("utf-8", "replace")
                if (re.search(pattern, text) if regex else pattern in text):
                    continue
                return False
            self.pump(0.02)

    def step(self, st):
        if "send" in st:
            os.write(self.master, st["send"].encode("utf-8"))
            self.pump(0.01)
        elif "wait_for" in st:
            return self.wait_for(st["wait_for"], st.get("regex", False))
        elif "sleep" in st:
            self.pump(st["sleep"])
        elif "resize" in st:
            rows, cols = st["resize"]
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            self.rows, self.cols = rows, cols
            self.screen.resize(rows, cols)
            os.kill(self.pid, signal.SIGWINCH)
        elif "signal" in st:
            pid = self.pid
            if "pid_pattern" in st:  # a grandchild that printed its pid
                m = re.search(st["pid_pattern"], self.out.decode("utf-8", "replace"))
                if not m:
                    return False
                pid = int(m.group(1))
            os.kill(pid, SIGNALS[st["signal"]])
        elif "wait_exit" in st:
            while not self.exited() and time.monotonic() < self.deadline:
                self.pump(0.02)
            return self.exited()
        return True

    def finish(self):
        timed_out = False
        while not self.exited():
            if time.monotonic() >= self.deadline:
                timed_out = True
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                self.signal = signal.SIGKILL
                break
            self.pump(0.02)
        self.deadline = time.monotonic() + 0.2
        self.pump(0.05)
        attrs = termios.tcgetattr(self.slave)
        lflag = attrs[3]
        tty = {"icanon": bool(lflag & termios.ICANON), "echo": bool(lflag & termios.ECHO),
               "isig": bool(lflag & termios.ISIG)}
        return timed_out, tty


def main():
    req = json.load(sys.stdin)
    run = Run(req)
    failed = None
    for i, st in enumerate(req.get("steps") or [], 1):
        if not run.step(st):
            failed = i
            break
    if failed is not None:
        run.deadline = time.monotonic()  # give up now: kill the child
    timed_out, tty = run.finish()
    screen = run.screen
    json.dump({"output": run.out.decode("utf-8", "replace"), "screen": screen.text(),
               "cursor": [screen.r + 1, screen.c + 1], "status": run.status,
               "signal": run.signal, "timed_out": timed_out or failed is not None,
               "failed_step": failed, "tty": tty}, sys.stdout)


if __name__ == "__main__":
    main()
