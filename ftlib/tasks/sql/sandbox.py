"""The SQL sandbox: model output runs here, so this module is a security boundary.

Layers, each enough on its own for the attacks the tests try:
- the database is a private in-memory copy (`:memory:`), never a file;
- one statement only, and it must read (SELECT / WITH / VALUES);
- `PRAGMA query_only` plus an authorizer that allows reading and calling functions, nothing else
  (no ATTACH, DETACH, PRAGMA, writes, CREATE, transactions, `load_extension`);
- extension loading switched off;
- SQLite's own limits (`LIMITS`) keep every value small, so no single built-in function call can
  run long or take much memory: a string/blob is at most 10 kB, a LIKE/GLOB pattern 200 bytes, a
  statement 4,000 characters. The step budget below only runs *between* VM instructions, and one
  `instr(x, y)` on two 1 MB strings is one instruction that ran for 5 s (`tests/test_sql.py` tries
  every built-in function at its largest arguments);
- a step budget and a wall-clock deadline checked by a progress handler every 100 VM instructions
  (runaway recursive CTEs, loops of costly calls);
- at most `max_rows` result rows fetched;
- the whole call runs in a worker process with a memory ceiling, killed (and replaced) when it
  overruns `KILL_SECONDS`: one SQLite instruction can run for seconds without returning to the
  progress handler (`printf('%.*c', 2000000000, 'x')` loops inside one step even though the length
  limit turns its result into NULL), and only a kill bounds every such call;
- the read-only check is a linear scan, run after the length cap (a backtracking pattern over
  repeated comments took exponential time).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

MAX_ROWS = 10_000  # a cross join of three 12-row synthetic tables is 1,728 rows; gold results stay below
MAX_STEPS = 2_000_000  # SQLite VM instructions; a normal query here needs a few thousand
MAX_SECONDS = 0.5  # a backstop only: the step budget (deterministic) normally stops a query first
MAX_SQL_CHARS = 4_000  # the longest gold query of the data is 557 characters
_CHECK_EVERY = 100  # VM instructions between progress-handler calls (a Python call each: ~1 % overhead)
KILL_SECONDS = 1.5  # wall clock of one call in the worker before it is killed; a normal call takes ms
MEMORY_BYTES = 1 << 30  # address-space ceiling of the worker process
# The synthetic values are short words and numbers, and the longest gold result value is far below
# 10 kB; at these sizes a quadratic built-in (instr, replace, trim, LIKE) costs well under 1 ms a call.
LIMITS = {
    sqlite3.SQLITE_LIMIT_LENGTH: 10_000,  # bytes of any string, blob or row
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: MAX_SQL_CHARS,
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 200,
    sqlite3.SQLITE_LIMIT_COLUMN: 200,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 100,
    sqlite3.SQLITE_LIMIT_COMPOUND_SELECT: 50,
    sqlite3.SQLITE_LIMIT_VDBE_OP: 50_000,  # instructions in one compiled statement
    sqlite3.SQLITE_LIMIT_FUNCTION_ARG: 32,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
}
_RECURSIVE = getattr(sqlite3, "SQLITE_RECURSIVE", 33)
_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, _RECURSIVE}
_READ_WORD = re.compile(r"(?:SELECT|WITH|VALUES)\b", re.I)
_TAGGED = re.compile(r"<SQL>(.*?)(?:</SQL>|$)", re.I | re.S)
_FENCED = re.compile(r"```[ \t]*(?:sql|sqlite)?[ \t]*\n?(.*?)(?:```|$)", re.I | re.S)
_BARE = re.compile(r"\b(?:SELECT|WITH)\b.*", re.I | re.S)


def extract_sql(text: str) -> str | None:
    """The query in a model's answer: inside <SQL> tags, else a code fence, else from the first SELECT.

    >>> extract_sql("Sure! <SQL>SELECT 1;</SQL> done")
    'SELECT 1'
    >>> extract_sql("no query here") is None
    True
    """
    if not isinstance(text, str):
        return None
    for pattern in (_TAGGED, _FENCED, _BARE):
        m = pattern.search(text)
        if m:
            # A bare query ends at the first blank line (prose usually follows it).
            query = m.group(1) if pattern is not _BARE else re.split(r"\n\s*\n", m.group(0))[0]
            query = query.strip().rstrip(";").strip()
            return query or None
    return None


def is_read_start(sql: str) -> bool:
    """Whether a statement starts (after comments, spaces and parentheses) with SELECT, WITH or VALUES.

    A left-to-right scan, linear in the length of `sql` whatever it holds.

    >>> is_read_start("/* a */ -- b\\n (SELECT 1)"), is_read_start("/**/ DROP TABLE t")
    (True, False)
    """
    i, n = 0, len(sql)
    while i < n:
        if sql[i].isspace() or sql[i] == "(":
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            break
    return bool(_READ_WORD.match(sql, i))


def _authorize(action: int, arg1, arg2, dbname, source) -> int:
    """Allow reads and function calls only; `load_extension` is refused even as a function."""
    if action not in _ALLOWED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() == "load_extension":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _decode(raw: bytes) -> str:
    """Decode TEXT without raising: a query can build invalid UTF-8 with CAST(x'ff' AS TEXT)."""
    return raw.decode("utf-8", errors="replace")


def open_sandbox(image: bytes) -> sqlite3.Connection:
    """A private, read-only in-memory copy of a serialized database, with every guard installed."""
    conn = sqlite3.connect(":memory:")
    conn.deserialize(image)
    if hasattr(conn, "enable_load_extension"):  # absent where Python is built without extension loading
        conn.enable_load_extension(False)
    conn.execute("PRAGMA query_only = 1")
    for limit, value in LIMITS.items():
        conn.setlimit(limit, value)
    conn.set_authorizer(_authorize)
    conn.text_factory = _decode
    return conn


@dataclass(frozen=True)
class QueryResult:
    """Rows of a query (floats rounded), or `error`: a short reason (SQLite's message, or ours)."""

    rows: list[tuple] | None = None
    error: str | None = None


def _normalize(row: tuple) -> tuple:
    """Round floats so AVG computed in another order still compares equal."""
    return tuple(round(v, 6) if isinstance(v, float) else v for v in row)


def _budget(max_steps: int, max_seconds: float):
    """A progress handler that aborts the query (returns 1) past the step or time budget."""
    deadline = time.perf_counter() + max_seconds
    calls = [0]

    def handler() -> int:
        calls[0] += 1
        return int(calls[0] * _CHECK_EVERY > max_steps or time.perf_counter() > deadline)

    return handler


def _run(conn: sqlite3.Connection, sql: str, max_rows: int, max_steps: int, max_seconds: float) -> QueryResult:
    """Run one checked statement on an open sandbox, with a fresh step and time budget."""
    conn.set_progress_handler(_budget(max_steps, max_seconds), _CHECK_EVERY)
    try:
        rows = conn.execute(sql).fetchmany(max_rows + 1)
    except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError, MemoryError) as e:
        return QueryResult(error=str(e) or type(e).__name__)
    if len(rows) > max_rows:
        return QueryResult(error=f"more than {max_rows} rows")
    return QueryResult(rows=[_normalize(r) for r in rows])


def _execute(image: bytes, sql: str, max_rows: int, max_steps: int, max_seconds: float) -> QueryResult:
    """Run one checked statement on a fresh copy of `image`, in this process (the worker's job)."""
    conn = open_sandbox(image)
    try:
        return _run(conn, sql, max_rows, max_steps, max_seconds)
    finally:
        conn.close()


def _serve(memory_bytes: int) -> None:
    """The worker's loop: cap its own memory, then answer (image, sql, ...) requests read from stdin
    with (rows, error) on stdout until stdin closes."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    except (ImportError, ValueError, OSError):  # no rlimit here (Windows): the wall clock still holds
        pass
    requests, answers = Connection(0, writable=False), Connection(1, readable=False)
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError):
            return
        try:
            result = _execute(*request)
        except MemoryError:
            result = QueryResult(error="out of memory")
        answers.send((result.rows, result.error))


class _Worker:
    """One long-lived sandbox process, started on first use and replaced after a kill.

    It runs this file as a script (`python -I sandbox.py`): only the standard library is imported,
    and the caller's `__main__` is never re-run (as multiprocessing's spawn would).
    """

    def __init__(self):
        self.process = self.send = self.recv = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-I", __file__, str(MEMORY_BYTES)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.send = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.recv = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.send.close()
            self.recv.close()
        self.process = self.send = self.recv = None

    def call(self, request: tuple, seconds: float) -> QueryResult:
        """Send one request; kill the worker when no answer comes within `seconds`."""
        if self.process is None or self.process.poll() is not None:
            self.stop()
            self.start()
        try:
            self.send.send(request)
            if self.recv.poll(seconds):
                rows, error = self.recv.recv()
                return QueryResult(rows=rows, error=error)
        except (EOFError, OSError):
            self.stop()
            return QueryResult(error="interrupted: the sandbox process died")
        self.stop()
        return QueryResult(error=f"interrupted: over {seconds} s of wall clock")


_WORKER = _Worker()


def run_trusted(image: bytes, sql: str) -> QueryResult:
    """Run a query we wrote (a gold query or its mutant) in this process: the step and time budgets
    hold, but not the kill, so never pass model output here."""
    if not is_read_start(sql):
        return QueryResult(error="not a read-only query")
    return _execute(image, sql, MAX_ROWS, MAX_STEPS, MAX_SECONDS)


def run_trusted_many(image: bytes, queries: list[str]) -> list[QueryResult]:
    """`run_trusted` for several queries on one open copy of `image` (they only read: one copy serves all)."""
    conn = open_sandbox(image)
    try:
        return [_run(conn, q, MAX_ROWS, MAX_STEPS, MAX_SECONDS) if is_read_start(q)
                else QueryResult(error="not a read-only query") for q in queries]
    finally:
        conn.close()


def run_query(image: bytes, sql: str, *, max_rows: int = MAX_ROWS, max_steps: int = MAX_STEPS,
              max_seconds: float = MAX_SECONDS, kill_seconds: float = KILL_SECONDS) -> QueryResult:
    """Run one read-only statement on a fresh copy of `image` in the worker; never raises on any `sql`.

    The call returns within about `kill_seconds` whatever `sql` holds.
    """
    if not isinstance(sql, str) or len(sql) > MAX_SQL_CHARS or "\x00" in sql:
        return QueryResult(error="not a read-only query: too long, or holds a NUL character")
    if not is_read_start(sql):
        return QueryResult(error="not a read-only query")
    return _WORKER.call((image, sql, max_rows, max_steps, max_seconds), kill_seconds)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
