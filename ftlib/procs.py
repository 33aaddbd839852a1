"""Child processes that end with the process that started them, even when it is killed with SIGKILL.

Linux only (prctl); elsewhere these functions do nothing and a killed parent may leave children.

- `die_with_parent(ppid)`: the kernel sends SIGKILL to this process when its parent ends.
- `keep(target)`: run `target` in a forked child and, from this process, wait for it while the
  parent lives; then kill the child and everything it started (`kill_descendants`), whether it
  forked, double-forked or left its session (`setsid`), and exit with its exit code.
- `tied(argv)`: the command line that runs `argv` killed when this process ends, for a
  `subprocess.Popen` (its `preexec_fn` is unsafe in a program with threads): this file, run by its
  path (it imports only the standard library), sets `die_with_parent` and then execs `argv`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36  # from <linux/prctl.h>
POLL_S = 0.1  # how often a keeper checks that its parent is still there


def _prctl(option: int, value: int) -> bool:
    """prctl(option, value); False where there is no prctl (not Linux) or it fails."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(option, value, 0, 0, 0) == 0


def die_with_parent(ppid: int) -> None:
    """Have the kernel SIGKILL this process when its parent ends (exit now if it already has).

    The signal follows the *thread* that forked this process: fork from a thread that lives as long
    as the child should."""
    if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL) and os.getppid() != ppid:
        os._exit(1)  # the parent ended before the request took effect


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (read from /proc; empty where there is none)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()  # after "pid (name)": state ppid ...
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def kill_descendants() -> None:
    """SIGKILL every child of this process, and the children they leave behind (which a subreaper
    inherits, `keep`), until none is left; reap them all."""
    me = os.getpid()
    while True:
        for pid in children(me):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)  # one ends; its orphans are ours before it can be reaped
        except ChildProcessError:
            return


class _Stop(Exception):
    """SIGTERM reached a keeper: clean up and exit."""


def keep(target: Callable[[], object], parent: int) -> None:
    """Run `target()` in a forked child, in a new process group this process leads; when it ends, when
    this process gets SIGTERM, or when `parent` (this process's parent pid) is gone (polled), kill
    everything the child started and exit with the child's exit code. Never returns."""

    def on_term(signum, frame):
        raise _Stop

    signal.signal(signal.SIGTERM, on_term)
    os.setpgrp()  # the whole tree in one group: a backstop killpg reaches every non-setsid member
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans below (double forks, setsid) come to us, not to PID 1
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            die_with_parent(me)
            target()
        except BaseException:  # noqa: BLE001 (the target reports its own errors; this is the last word)
            code = 1
        finally:
            os._exit(code)
    code = 0
    try:
        while os.getppid() == parent:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            time.sleep(POLL_S)
    except _Stop:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)  # first: without /proc (not Linux) the child is all we can find
    kill_descendants()
    os._exit(code if code >= 0 else 128 - code)  # killed by signal N: 128 + N, as a shell says


def tied(argv: list[str]) -> list[str]:
    """A command line that runs `argv` as the same process, SIGKILLed when this process (the
    thread that starts it) ends."""
    return [sys.executable, __file__, str(os.getpid()), "--", *argv]


def main(argv: list[str]) -> None:
    """`python ftlib/procs.py PPID -- CMD ...`: exec CMD, to be killed when PPID ends."""
    ppid, sep, *cmd = argv
    if sep != "--" or not cmd:
        sys.exit("usage: python ftlib/procs.py PPID -- CMD ...")
    die_with_parent(int(ppid))
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
