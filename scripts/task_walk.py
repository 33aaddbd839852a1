"""The parameter walk of a function's argument through ftlib: where does the value go?

    python scripts/task_walk.py                         # harness.evaluate's `task`
    python scripts/task_walk.py train.run cfg --steps   # another function and parameter, every step listed
    python scripts/task_walk.py --lookups [presets]     # every place a task spec (a preset name) is resolved

Method (static, by `ast`): start at the function's parameter; in its body, the tracked names are the
parameter and every name assigned from an expression that carries it: the name, an item of it
(`task = cfg["task"]`, `cfg.task`), a dict holding it (`cfg = {"task": task}`), or the task looked up
from it (`t = tasks.get(task)`); in a tuple assignment, the targets whose values carry it.
Every call into an ftlib function (`module.f(...)`, a bare `f(...)` of the same module, a name
imported `from ftlib.x import f`) that passes a tracked value, positionally or by keyword, is one
step, and the walk goes on into that callee's parameter (each callee and parameter is walked once;
a later call to it is still a step). Calls on a task object (`t.score(...)`) are data, not steps.
Counted: steps, the modules entered, re-entries (a step into another module than the caller's, into
a module entered before) and the steps into each module.
"""

from __future__ import annotations

import ast
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "ftlib"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for f in sorted(ROOT.rglob("*.py")):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(f.read_text())
    return out


def _functions(mods: dict[str, ast.Module]) -> dict[tuple[str, str], ast.FunctionDef]:
    """(module, function name) -> definition, module-level functions only."""
    return {
        (m, n.name): n
        for m, tree in mods.items()
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _imports(mod: str, tree: ast.Module, known: set[str]) -> dict[str, tuple[str, str | None]]:
    """Local name -> (module, function or None) for ftlib imports anywhere in the module."""
    out: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ftlib"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out[a.asname or a.name] = (full, None) if full in known else (node.module, a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("ftlib") and a.asname:
                    out[a.asname] = (a.name, None)
    return out


def _carries(node: ast.AST | None, names: set[str]) -> bool:
    """Whether an expression's value is (or holds) the tracked value: the name itself, an item of it
    (`cfg["task"]`), a dict or tuple holding it, or the task looked up from it (`tasks.get(task)`)."""
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Starred):
        return _carries(node.value, names)
    if isinstance(node, ast.Subscript):  # cfg["task"]
        key = node.slice
        return isinstance(key, ast.Constant) and key.value == "task" and _carries(node.value, names)
    if isinstance(node, ast.Attribute):  # cfg.task
        return node.attr == "task" and _carries(node.value, names)
    if isinstance(node, ast.Dict):
        return any(_carries(v, names) for v in node.values)
    if isinstance(node, (ast.Tuple, ast.List)):
        return any(_carries(v, names) for v in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "name"):
        return (
            isinstance(node.func.value, ast.Name)
            and node.func.value.id == "tasks"
            and any(_carries(a, names) for a in node.args)
        )
    return False


def _pairs(node: ast.Assign | ast.NamedExpr) -> list[tuple[ast.AST, ast.AST]]:
    """(target, value) pairs of an assignment, tuples unpacked pairwise (`a, b = x, y`)."""
    out = []
    for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            out += list(zip(target.elts, node.value.elts))
        else:
            out.append((target, node.value))
    return out


def _tracked(fn: ast.FunctionDef, param: str) -> set[str]:
    names, grew = {param}, True
    while grew:
        grew = False
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Assign, ast.NamedExpr)):
                continue
            for target, value in _pairs(node):
                if isinstance(target, ast.Name) and target.id not in names and _carries(value, names):
                    names.add(target.id)
                    grew = True
    return names


def _callee(call: ast.Call, mod: str, imports: dict, funcs: dict, imports_of: dict) -> tuple[str, str] | None:
    f = call.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in imports:
        target = imports[f.value.id]
        key = (target[0], f.attr) if target[1] is None else None
    elif isinstance(f, ast.Name) and (mod, f.id) in funcs:
        key = (mod, f.id)
    elif isinstance(f, ast.Name) and f.id in imports and imports[f.id][1] is not None:
        key = imports[f.id]
    else:
        return None
    if key not in funcs and key[1] in imports_of.get(key[0], {}):  # a name the module re-exports
        key = imports_of[key[0]][key[1]]
    return key if key in funcs else None


def _param_of(call: ast.Call, fn: ast.FunctionDef, names: set[str]) -> list[str]:
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    out = [params[i] for i, a in enumerate(call.args) if i < len(params) and _carries(a, names)]
    out += [k.arg for k in call.keywords if k.arg and _carries(k.value, names)]
    return out


def walk(start: tuple[str, str], param: str) -> list[tuple[str, str, str, str]]:
    """Every step (caller module, callee module, callee function, parameter), depth first."""
    mods = _modules()
    funcs = _functions(mods)
    imports = {m: _imports(m, t, set(mods)) for m, t in mods.items()}
    steps, seen = [], set()

    def visit(key: tuple[str, str], p: str) -> None:
        seen.add((key, p))
        fn, names = funcs[key], _tracked(funcs[key], p)
        calls = sorted((n for n in ast.walk(fn) if isinstance(n, ast.Call)), key=lambda c: (c.lineno, c.col_offset))
        for call in calls:
            callee = _callee(call, key[0], imports[key[0]], funcs, imports)
            if callee is None or callee == key:
                continue
            for q in _param_of(call, funcs[callee], names):
                steps.append((key[0], callee[0], callee[1], q))
                if (callee, q) not in seen:
                    visit(callee, q)

    visit(start, param)
    return steps


def counts(start: tuple[str, str], param: str, show: bool = False) -> dict:
    steps = walk(start, param)
    entered, reentries = {start[0]}, 0
    per_module = Counter()
    for caller, mod, fn, p in steps:
        if show:
            print(f"  {caller} -> {mod}.{fn}({p})")
        per_module[mod] += 1
        if mod != caller and mod in entered:
            reentries += 1
        entered.add(mod)
    return {
        "steps": len(steps),
        "modules": len(entered),
        "re_entries": reentries,
        "per_module": dict(per_module.most_common()),
    }


def _is_get(node: ast.AST, registry: str) -> bool:
    f = getattr(node, "func", None)
    return isinstance(f, ast.Attribute) and f.attr == "get" and isinstance(f.value, ast.Name) and f.value.id == registry


def lookups(registry: str = "tasks") -> list[str]:
    """Every `<registry>.get(...)` call (tasks: a task spec resolved; presets: a preset name) in ftlib's
    functions (outside the registry's own package) and in the lessons' code cells: module.function or
    notebook#cell. A CLI's `main` and a notebook's first cells are entry points; judge the others."""
    out = []
    for mod, tree in _modules().items():
        if mod.startswith(f"ftlib.{registry}"):
            continue
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out += [f"{mod}.{fn.name}:{c.lineno}" for c in ast.walk(fn) if _is_get(c, registry)]
    for nb in sorted((ROOT.parent / "notebooks").glob("*.ipynb")):
        code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        for i, cell in enumerate(code):
            tree = ast.parse("".join(cell["source"]))
            out += [f"notebooks/{nb.name}#code cell {i}" for c in ast.walk(tree) if _is_get(c, registry)]
    return sorted(set(out))


def main(argv: list[str]) -> None:
    if "--lookups" in argv:
        found = lookups(next((a for a in argv if a in ("tasks", "presets")), "tasks"))
        print("\n".join(found) + f"\n{len(found)} calls, {sum('.main:' in f for f in found)} in a CLI's main")
        return
    args = [a for a in argv if a != "--steps"] or ["harness.evaluate", "task"]
    mod, fn = args[0].rsplit(".", 1)
    print(counts((f"ftlib.{mod}", fn), args[1] if len(args) > 1 else "task", show="--steps" in argv))


if __name__ == "__main__":
    main(sys.argv[1:])
