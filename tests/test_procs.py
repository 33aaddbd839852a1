"""Scorer workers and what they start end with the harness, even when it is killed with SIGKILL."""

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftlib import scorers

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (PID 1 may be slow to reap what it inherits)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def gone_within(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive after waiting up to `seconds` for them all to end."""
    deadline = time.monotonic() + seconds
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# A harness-like parent: one scorer call whose scorer starts a child (`how`) and then never returns
# (`stuck`): a loop at 100 % CPU, or blocked writing to its own pipe, which nobody reads.
PARENT = """
import json, os, subprocess, sys
from ftlib import scorers

how, stuck = sys.argv[1], sys.argv[2]

def score(prediction, reference):
    if how == "fork":
        child = os.fork()
        if child == 0:
            while True:
                pass
    else:  # a command in its own session, outside the worker's process group
        child = subprocess.Popen(["sleep", "600"], start_new_session=True).pid
    print(json.dumps({"worker": os.getpid(), "child": child}), flush=True)
    if stuck == "loop":
        while True:
            pass
    r, w = os.pipe()
    os.write(w, b"x" * 10_000_000)  # blocks: the pipe holds 64 KiB

with scorers.Bounded(score, 600) as bounded:
    bounded("1", "1")
"""


@pytest.mark.parametrize("how, stuck", [("fork", "loop"), ("setsid", "loop"), ("fork", "blocked")])
def test_kill_9_of_the_harness_ends_the_worker_and_its_children(how, stuck):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, how, stuck], stdout=subprocess.PIPE, text=True)
    pids = {}
    try:
        pids = json.loads(parent.stdout.readline())
        assert alive(pids["worker"]) and alive(pids["child"])
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert gone_within([pids["worker"], pids["child"]], 5) == []
        # `harness ... | tail` waits for every writer of the pipe: none is left
        assert select.select([parent.stdout], [], [], 5)[0] and parent.stdout.read() == ""
    finally:  # whatever the outcome, leave nothing running
        parent.kill()
        for pid in pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_timeout_ends_the_worker_and_what_it_started():
    def score(prediction, reference):
        print(subprocess.Popen(["sleep", "600"], start_new_session=True).pid, file=out, flush=True)
        while True:
            pass

    r, w = os.pipe()
    out = os.fdopen(w, "w")
    with scorers.Bounded(score, 0.5) as bounded:
        value, error = bounded("1", "1")
    child = int(os.fdopen(r).readline())
    try:
        assert value is None and error.startswith("timeout")
        assert gone_within([child], 5) == []
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_an_exit_code_comes_back_through_the_keeper():
    with scorers.Bounded(lambda p, r: os._exit(3), 5) as bounded:
        assert bounded("1", "1") == (None, "the scorer ended its process (exit code 3)")


def test_what_a_scorer_leaves_running_ends_with_the_block():
    def score(prediction, reference):
        return {"child": subprocess.Popen(["sleep", "600"], start_new_session=True).pid}

    with scorers.Bounded(score, 5) as bounded:
        (value, error) = bounded("1", "1")
        assert error is None and alive(value["child"])  # a result came back; its child still runs
    try:
        assert gone_within([value["child"]], 5) == []
    finally:
        if alive(value["child"]):
            os.kill(value["child"], signal.SIGKILL)
