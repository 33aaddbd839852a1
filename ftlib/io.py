"""Small file helpers shared by every module: atomic writes and checked JSONL reading."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator


class DataFormatError(ValueError):
    """A data file is malformed: the message names the file, the line and what was expected."""


class WriteError(OSError):
    """A file could not be written (a full or read-only disk): the message names it and what to do."""


_WRITE_PROBLEMS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                   errno.EROFS: "the disk is read-only", errno.EACCES: "no permission to write there",
                   errno.EPERM: "no permission to write there"}
AGAIN = ("Free space (or make the folder writable), then run the same command again: what was written "
         "whole is kept and the work goes on from there")


def _disk_error(e: BaseException | None) -> tuple[str, BaseException] | None:
    """(what stopped a write, the error that says so) when `e`, or an error it was raised in (as
    torch.save does), says the disk is full or cannot be written; None: not that."""
    if isinstance(e, WriteError):
        return None  # already said
    while e is not None:
        if isinstance(e, OSError) and e.errno in _WRITE_PROBLEMS:
            return _WRITE_PROBLEMS[e.errno], e
        if isinstance(e, RuntimeError) and ("iostream error" in str(e) or "write failed" in str(e)):
            return "a write failed (a full disk, or no permission)", e  # torch.save's words for both
        e = e.__cause__ or e.__context__
    return None


def write_problem(e: BaseException) -> str | None:
    """What stopped a write, when `e` is a full or read-only disk (None: another error)."""
    found = _disk_error(e)
    return found and found[0]


def cannot_write(path: str | Path, e: BaseException, then: str = AGAIN) -> WriteError:
    """The WriteError for `e` (a `write_problem`) while writing `path`."""
    problem, cause = _disk_error(e)
    where = Path(path)
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = f"{shutil.disk_usage(where).free / 1e6:,.0f} MB free there"
    except OSError:
        free = "free space unknown"
    error = WriteError(f"cannot write {path}: {problem} ({cause}; {free}). {then}")
    error.errno = getattr(cause, "errno", None)
    return error


@contextlib.contextmanager
def writing(path: str | Path, then: str = AGAIN) -> Iterator[None]:
    """Turn a full or read-only disk met in the block into a WriteError naming `path` and what to do."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        if write_problem(e) is None:
            raise
        raise cannot_write(path, e, then) from e


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` so a reader never sees a half-written file (temp file + rename)."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write `obj` as indented JSON."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


BOM = b"\xef\xbb\xbf"  # the UTF-8 byte order mark some editors put first: read as nothing
MAX_LINE_BYTES = 2**20  # one JSONL row at most (1 MB): a longer line is refused while it is read


def _check_text(obj: Any, where: str) -> None:
    """A DataFormatError at `where` if a string of a parsed JSON value holds a lone surrogate
    (`"\\ud800"`: valid JSON, not Unicode text; it would fail later, far from its file)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataFormatError(f"{where}: a lone surrogate {e.object[e.start]!r} in a string is not Unicode "
                              "text; write the character itself (or both halves of its pair)") from None


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a DataFormatError naming the file and line if it is not valid UTF-8 JSON."""
    raw = Path(path).read_bytes().removeprefix(BOM)
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataFormatError(f"{path}:{line}: expected UTF-8 text, got the byte {raw[e.start]:#04x}") from None
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}:{e.lineno}: expected valid JSON ({e.msg}, column {e.colno})") from None
    if b"\\u" in raw:  # only an escape can make a surrogate
        _check_text(obj, str(path))
    return obj


def read_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each line of a file, a leading BOM dropped. A line longer than
    MAX_LINE_BYTES raises a DataFormatError once that much of it is read: memory stays bounded
    whatever the file holds."""
    path = Path(path)
    with path.open("rb") as f:
        lineno = 0
        while raw := f.readline(MAX_LINE_BYTES + 2):  # + the line's end (\r\n)
            lineno += 1
            if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                raise DataFormatError(f"{path}:{lineno}: a line longer than {MAX_LINE_BYTES // 2**20} MB "
                                      "(the limit for one row); split it or shorten its text")
            yield lineno, raw.removeprefix(BOM) if lineno == 1 else raw


def parse_line(raw: bytes, where: str) -> Any:
    """One JSONL line's value; a DataFormatError at `where` (file:line) naming what is wrong."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{where}: expected UTF-8 text, got the byte "
                              f"{raw[e.start]:#04x} at column {e.start + 1}") from None
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{where}: expected one JSON object per line, got invalid JSON ({e.msg})") from None
    if "\\u" in line:  # only an escape can make a surrogate
        _check_text(row, where)
    return row


def iter_jsonl(path: str | Path, required: Iterable[str] = (), strings: bool = False) -> Iterator[dict]:
    """Yield the rows of a JSONL file, raising DataFormatError with file:line on a bad row.

    `required` fields must be present; with `strings=True` they must also be non-empty strings.
    A line over MAX_LINE_BYTES is refused (`read_lines`).

    >>> rows = list(iter_jsonl("data/gsm8k/test.jsonl", required=["question", "answer"]))  # doctest: +SKIP
    """
    required = list(required)
    for lineno, raw in read_lines(path):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        row = parse_line(raw, where)
        if not isinstance(row, dict):
            raise DataFormatError(f"{where}: expected a JSON object, got {type(row).__name__}")
        missing = [k for k in required if k not in row]
        if missing:
            raise DataFormatError(f"{where}: missing field(s) {missing}; expected fields {required}")
        bad = [k for k in required if strings and not (isinstance(row[k], str) and row[k].strip())]
        if bad:
            raise DataFormatError(f"{where}: field {bad[0]!r} must be a non-empty string, got {row[bad[0]]!r}")
        yield row


def rows_hash(rows: Iterable[dict]) -> str:
    """SHA-256 of rows as JSON lines (keys sorted, order kept): same hash, same data.

    >>> rows_hash([{"a": 1}])[:12]
    'e8c628edc996'
    """
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


def append_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Append rows to a JSONL file and flush, so an interrupted run keeps what it wrote."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


class FolderBusy(RuntimeError):
    """Another live process holds a folder's lock."""


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _holder(lock: Path) -> dict | None:
    """The lock's content, {pid, host, since}; None when it is unreadable or half-written."""
    try:
        held = json.loads(lock.read_text(encoding="utf-8"))
        return held if isinstance(held, dict) and isinstance(held.get("pid"), int) else None
    except (OSError, ValueError):
        return None


_HELD: set[int] = set()  # this process's lock descriptors (`folder_lock`)


def _close_held() -> None:
    """In a forked child (a scorer worker, a data loader): close its copies of the lock descriptors,
    so that one left behind by a killed parent keeps no lock alive (this does not unlock the parent's)."""
    for fd in _HELD:
        os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held)


def _open_locked(lock: Path) -> int | None:
    """A descriptor of `lock` holding its exclusive flock, or None while another process holds it.
    The kernel drops a flock when its holder ends, however it ends (kill -9 included): a lock left
    by a dead process is free, and of two processes taking it over, exactly one gets it."""
    import fcntl  # POSIX; imported here so that the rest of ftlib imports without it

    while True:
        with writing(lock):
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as e:  # ENOLCK, EOPNOTSUPP: a file system without locks
            os.close(fd)
            raise OSError(e.errno, f"cannot lock {lock} ({e.strerror}): its file system does not support "
                          "file locks; put the runs folder on a local disk (FTLIB_RUNS)") from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder removed this file after we opened it: lock the one there now


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "a run") -> Iterator[Path]:
    """Hold `folder/LOCK` while the block runs: one process per folder.

    The lock is an flock on that file, which names its holder (pid, host, since). A second process
    gets FolderBusy naming the holder's pid; a LOCK file left by a killed process is taken over,
    with a note.
    """
    folder = Path(folder)
    lock = folder / "LOCK"
    with writing(lock):
        folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 5
    while (fd := _open_locked(lock)) is None:
        held = _holder(lock)
        if held and (held.get("host") != socket.gethostname() or _alive(held["pid"])) \
                or time.monotonic() > deadline:
            who = "another process" if not held else f"process {held['pid']} on {held.get('host')} since " \
                f"{held.get('since')}" + ("" if _alive(held["pid"]) else " (gone: a process it started holds it)")
            raise FolderBusy(f"{folder} is in use: {what} there is held by {who} ({lock}); wait for it to end")
        time.sleep(0.1)  # its new holder is writing its pid right now
    _HELD.add(fd)
    try:
        if left := _holder(lock):
            print(f"note: {lock} was left by process {left['pid']}, which is gone: taking it over")
        with writing(lock):
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode())
        yield lock
    finally:
        lock.unlink(missing_ok=True)  # still holding it: a process waiting on this file then retries
        _HELD.discard(fd)
        os.close(fd)
