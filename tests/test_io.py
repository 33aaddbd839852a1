"""A folder's LOCK under concurrency: one holder, whoever races for it, and no lock outliving its holder."""

import multiprocessing
import os
import signal
import sys
import tempfile
import time

import pytest

from ftlib import io

FORK = multiprocessing.get_context("fork")


def _contend(folder, barrier, delay):
    """Take the folder's lock after `barrier`, the first read of its LOCK file slowed by `delay`
    seconds (two takers that both found a stale lock, one acting later); exit 3 when refused."""
    read = io._holder

    def slow(lock):
        held = read(lock)
        if slow.first:
            slow.first = False
            time.sleep(delay)
        return held
    slow.first = True
    io._holder = slow
    barrier.wait()
    try:
        with io.folder_lock(folder):
            time.sleep(1.5)
    except io.FolderBusy:
        sys.exit(3)


def _stale_lock(folder):
    """A LOCK file naming a process that is gone (as a kill -9 leaves it)."""
    dead = FORK.Process(target=lambda: None)
    dead.start()
    dead.join()
    (folder / "LOCK").write_text(f'{{"pid": {dead.pid}, "host": "{os.uname().nodename}"}}')


def test_two_processes_taking_over_a_stale_lock_get_it_once(tmp_path):
    _stale_lock(tmp_path)
    barrier = FORK.Barrier(2)
    procs = [FORK.Process(target=_contend, args=(tmp_path, barrier, delay)) for delay in (0.2, 0.7)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert sorted(p.exitcode for p in procs) == [0, 3]  # one held it, the other was refused
    assert not (tmp_path / "LOCK").exists()


def _hold_and_fork(folder, pids):
    """Hold the lock and start a child that outlives this process (a scorer worker, a data loader)."""
    with io.folder_lock(folder):
        child = os.fork()
        if child == 0:
            time.sleep(60)
            os._exit(0)
        pids.put((os.getpid(), child))
        time.sleep(60)


def test_a_child_left_behind_by_a_killed_holder_keeps_no_lock(tmp_path, capsys):
    pids = FORK.Queue()
    holder = FORK.Process(target=_hold_and_fork, args=(tmp_path, pids))
    holder.start()
    pid, child = pids.get(timeout=30)
    try:
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while holder.exitcode is None and time.monotonic() < deadline:  # not join(): the child holds
            time.sleep(0.05)                                               # its sentinel pipe open
        assert holder.exitcode == -signal.SIGKILL
        with io.folder_lock(tmp_path):
            pass
    finally:
        os.kill(child, signal.SIGKILL)
    assert f"left by process {pid}, which is gone: taking it over" in capsys.readouterr().out


def test_a_file_system_without_locks_is_named(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(OSError, match=r"cannot lock .*LOCK \(No locks available\): its file system does not "):
        with io.folder_lock(tmp_path):
            pass


FULL = os.path.exists("/dev/full")  # writes there fail with ENOSPC, as on a full disk
AS_ROOT = os.geteuid() == 0  # root writes into a read-only folder all the same


@pytest.mark.skipif(not FULL, reason="no /dev/full")
def test_a_full_disk_names_the_file_and_what_to_do(tmp_path, monkeypatch):
    real = tempfile.mkstemp

    def into_dev_full(**kw):  # write_text_atomic's temporary file: its bytes go to /dev/full
        fd, name = real(**kw)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name
    monkeypatch.setattr(tempfile, "mkstemp", into_dev_full)
    with pytest.raises(io.WriteError, match=r"cannot write \S+summary\.json: the disk is full \(.*MB free there\)\. "
                                            r"Free space .* then run the same command again"):
        io.write_json(tmp_path / "summary.json", {"n": 1})
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


@pytest.mark.skipif(AS_ROOT, reason="root writes into a read-only folder")
def test_a_read_only_folder_names_the_file_and_what_to_do(tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval").chmod(0o555)
    try:
        with pytest.raises(io.WriteError, match=r"cannot write \S+eval/predictions\.jsonl: no permission to "
                                                r"write there .* make the folder writable"):
            io.append_jsonl(tmp_path / "eval" / "predictions.jsonl", [{"idx": 0}])
        with pytest.raises(io.WriteError, match=r"cannot write \S+eval/LOCK: no permission"):
            with io.folder_lock(tmp_path / "eval"):
                pass
    finally:
        (tmp_path / "eval").chmod(0o755)


# ---- reading task and prediction files: a BOM, text that is not Unicode, a line too long -----------

ROW = b'{"prompt": "2+2?", "completion": "4"}\n'


def test_a_byte_order_mark_is_read_as_nothing(tmp_path):
    """Editors on Windows save UTF-8 with a BOM: the rows (and a JSON file) read as without it."""
    (tmp_path / "rows.jsonl").write_bytes(b"\xef\xbb\xbf" + ROW + ROW)
    assert list(io.iter_jsonl(tmp_path / "rows.jsonl", ["prompt"])) == [{"prompt": "2+2?", "completion": "4"}] * 2
    (tmp_path / "task.json").write_bytes(b'\xef\xbb\xbf{"name": "x"}')
    assert io.read_json(tmp_path / "task.json") == {"name": "x"}


@pytest.mark.parametrize("content, expected", [
    (ROW + b'{"prompt": "\\ud800", "completion": "4"}\n', r"rows\.jsonl:2: .*lone surrogate '\\ud800'"),
    (ROW + ROW + b'{"prompt": "a\\udfff b"}\n', r"rows\.jsonl:3: .*lone surrogate '\\udfff'"),
    (ROW + b'{"prompt": "\xed\xa0\x80"}\n', r"rows\.jsonl:2: expected UTF-8 text, got the byte 0xed"),
])
def test_text_that_is_not_unicode_is_named_by_file_and_line(tmp_path, content, expected):
    (tmp_path / "rows.jsonl").write_bytes(content)
    with pytest.raises(io.DataFormatError, match=expected):
        list(io.iter_jsonl(tmp_path / "rows.jsonl"))


def test_a_surrogate_pair_is_one_character_and_reads(tmp_path):
    (tmp_path / "rows.jsonl").write_bytes(b'{"prompt": "\\ud83d\\ude00"}\n')
    assert list(io.iter_jsonl(tmp_path / "rows.jsonl")) == [{"prompt": "\U0001F600"}]


def test_a_lone_surrogate_in_a_json_file_is_named(tmp_path):
    (tmp_path / "task.json").write_bytes(b'{"name": "x",\n "instruction": "\\udc00"}')
    with pytest.raises(io.DataFormatError, match=r"task\.json: .*lone surrogate"):
        io.read_json(tmp_path / "task.json")


def test_a_line_over_the_limit_is_refused_while_reading_in_bounded_memory(tmp_path):
    """A 100 MB line (a valid row) is refused for its length after reading about the limit, not the
    whole line: peak memory stays a few MB (it once took 8.5 GB and minutes)."""
    import tracemalloc

    path = tmp_path / "rows.jsonl"
    with path.open("wb") as f:
        f.write(ROW + b'{"prompt": "')
        for _ in range(100):
            f.write(b"a" * 2**20)
        f.write(b'", "completion": "4"}\n' + ROW)
    tracemalloc.start()
    try:
        with pytest.raises(io.DataFormatError, match=r"rows\.jsonl:2: a line longer than 1 MB"):
            list(io.iter_jsonl(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * io.MAX_LINE_BYTES
    path.write_bytes(ROW + b'{"prompt": "' + b"a" * (io.MAX_LINE_BYTES - 40) + b'"}\n')  # just under: read
    assert len(list(io.iter_jsonl(path))) == 2
