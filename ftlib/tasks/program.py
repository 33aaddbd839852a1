"""Run a model-written arithmetic program, never with the interpreter's full powers (GSM8K's
program-of-thought answers; the SQL task's queries have their own sandbox, `tasks/sql/sandbox.py`).

Program-of-thought answers a math problem with a short Python program whose output is the number.
Model-written code is untrusted, so it passes two fences:

1. `check`: an allow-list of syntax, read from the program's `ast` before anything runs: numbers and
   strings, arithmetic, comparisons, assignments, `if`, `for` (its `range` is bounded), functions
   and calls by plain name, lists, tuples, dicts, comprehensions, f-strings and `print`. Refused,
   with the line: `import`, attribute access (no `().__class__` walk to the interpreter's
   internals), any name that starts with `_`, `while`, `lambda`, `try`, `with`, `class`, `global`,
   `del`, decorators.
2. `run`: a fresh interpreter (`python -I -S`, tied to this process so it dies with it) whose
   builtins are only `BUILTINS`, with a CPU-time limit, an address-space limit, no file writes, a
   low recursion limit and a wall-clock timeout; it is killed when any of them is reached.

    >>> run("price = 3 * 4\\nprint(price - 2)").value
    '10'
    >>> run("import os").error
    'line 1: import is not allowed'
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass

from ftlib import procs

CPU_S = 1  # CPU seconds a program may use (RLIMIT_CPU; the kernel kills it past this)
WALL_S = 1.5  # seconds, start to end, before it is killed: every program ends within 2 s, on a busy machine too
MEMORY_MB = 256  # address space (RLIMIT_AS): `[0] * 10**10` fails with MemoryError
RANGE_MAX = 10**6  # the largest range a program may build
OUTPUT_MAX = 10_000  # characters of printed output kept
RECURSION = 100  # frames: deep recursion ends in RecursionError, not a crash

ALLOWED = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.Name, ast.Load, ast.Store, ast.Constant,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.UnaryOp, ast.USub, ast.UAdd, ast.Not, ast.BoolOp, ast.And, ast.Or,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.IfExp, ast.If, ast.For, ast.Break, ast.Continue, ast.Pass,
    ast.Call, ast.keyword, ast.List, ast.Tuple, ast.Dict, ast.Subscript, ast.Slice,
    ast.FunctionDef, ast.arguments, ast.arg, ast.Return,
    ast.ListComp, ast.GeneratorExp, ast.comprehension, ast.JoinedStr, ast.FormattedValue,
)  # fmt: skip
# What a refusal names, for the nodes a model most often writes.
NAMED = {
    ast.Import: "import",
    ast.ImportFrom: "import",
    ast.Attribute: "attribute access",
    ast.While: "while",
    ast.Lambda: "lambda",
    ast.Try: "try",
    ast.With: "with",
    ast.ClassDef: "class",
    ast.Global: "global",
    ast.Nonlocal: "nonlocal",
    ast.Delete: "del",
    ast.AsyncFunctionDef: "async def",
}
BUILTINS = ("abs", "round", "min", "max", "sum", "int", "float", "len", "range", "print", "sorted",
            "list", "tuple", "dict", "str", "bool", "divmod", "pow", "enumerate", "zip", "floor", "ceil",
            "sqrt", "gcd", "lcm", "isclose", "pi")  # fmt: skip


class Refused(ValueError):
    """A program outside the allow-list; the message names the line and what is not allowed."""


@dataclass(frozen=True)
class Outcome:
    """What a program gave: `value` (the last line it printed, or what `solution()` returned when it
    printed nothing), or `error` (refused, raised, or stopped by a limit)."""

    value: str | None = None
    error: str | None = None


def check(code: str) -> ast.Module:
    """The program's syntax tree, if every node is on the allow-list; else `Refused`."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise Refused(f"line {e.lineno}: not Python ({e.msg})") from None
    except (MemoryError, RecursionError):  # the parser's own stack: nesting thousands deep
        raise Refused("line 1: nested too deeply to parse") from None
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 1)
        if not isinstance(node, ALLOWED):
            raise Refused(f"line {line}: {NAMED.get(type(node), type(node).__name__)} is not allowed")
        name = node.id if isinstance(node, ast.Name) else node.name if isinstance(node, ast.FunctionDef) else None
        name = node.arg if isinstance(node, ast.arg) else name
        if name is not None and name.startswith("_"):
            raise Refused(f"line {line}: the name {name!r} is not allowed (names may not start with '_')")
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            raise Refused(f"line {line}: decorators are not allowed")
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Name):
            raise Refused(f"line {line}: only calls by plain name are allowed")
    return tree


# The child: limits first, then the program with only the allowed builtins. It reads the program from
# stdin and writes one JSON line {"value": ..., "error": ...}; it imports only the standard library.
_CHILD = r"""
import builtins, json, math, resource, sys
cpu, memory, range_max, output_max, recursion, names = json.loads(sys.argv[1])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
code = sys.stdin.read()
printed = []
def bounded_range(*args):
    r = range(*args)
    if len(r) > range_max:
        raise ValueError(f"range of {len(r)} items (at most {range_max})")
    return r
def bounded_print(*args, sep=" ", end="\n"):
    printed.append(sep.join(str(a) for a in args))
    if sum(map(len, printed)) > output_max:
        raise ValueError(f"more than {output_max} characters printed")
own = {"range": bounded_range, "print": bounded_print}
table = {n: own.get(n) or getattr(builtins, n, None) or getattr(math, n) for n in names}
scope = {"__builtins__": table}
result = {"value": None, "error": None}
try:
    sys.setrecursionlimit(recursion)
    exec(compile(code, "<program>", "exec"), scope)
    if not printed and callable(scope.get("solution")):
        printed.append(str(scope["solution"]()))
    lines = [line for line in "\n".join(printed).splitlines() if line.strip()]
    result["value"] = lines[-1].strip() if lines else None
    result["error"] = None if lines else "the program printed nothing"
except BaseException as e:
    sys.setrecursionlimit(1000)
    result["error"] = f"{type(e).__name__}: {e}"[:300]
sys.stdout.write(json.dumps(result))
"""


def run(code: str, cpu_s: int = CPU_S, wall_s: float = WALL_S, memory_mb: int = MEMORY_MB) -> Outcome:
    """Check a program, then run it in a limited child interpreter; never raises for the program's
    faults (they are the Outcome's `error`)."""
    try:
        check(code)
    except Refused as e:
        return Outcome(error=str(e))
    limits = [cpu_s, memory_mb * 2**20, RANGE_MAX, OUTPUT_MAX, RECURSION, list(BUILTINS)]
    argv = procs.tied([sys.executable, "-I", "-S", "-c", _CHILD, json.dumps(limits)])
    try:
        done = subprocess.run(argv, input=code, capture_output=True, text=True, timeout=wall_s)
    except subprocess.TimeoutExpired:
        return Outcome(error=f"stopped after {wall_s:g} s (wall clock)")
    try:
        out = json.loads(done.stdout)
    except json.JSONDecodeError:  # killed by a limit before it could answer
        why = "CPU time" if done.returncode in (-9, -24) else f"exit code {done.returncode}"
        return Outcome(error=f"stopped by a limit ({why})")
    return Outcome(value=out["value"], error=out["error"])
