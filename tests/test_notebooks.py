"""Every notebook: committed clean, has a papermill parameters cell, and runs top to bottom in
smoke mode (tiny random model, a handful of examples) — in order, each reading what the one
before wrote to disk."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from ftlib import paths, reproduce

NOTEBOOKS = reproduce.notebooks()


def test_there_are_notebooks():
    assert [nb.name[:2] for nb in NOTEBOOKS][:2] == ["01", "02"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean_with_parameters(nb):
    cells = json.loads(nb.read_text())["cells"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in cells if c["cell_type"] == "code")
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    src = "".join(params[0]["source"])
    assert ("PRESET =" in src or "SMOKE =" in src) and "MODEL =" in src
    assert src.startswith("# Parameters"), "the cell says what it is to a reader"
    assert max(map(len, src.splitlines())) <= 90, "parameter comments fit the notebook's width"
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"][0].startswith("# ")



@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_no_parameter_is_reassigned_after_the_parameters_cell(nb):
    """A parameter means what the parameters cell (or papermill) says, all the way down."""
    code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    i = next(i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", []))
    declared = {t.id for n in ast.parse("".join(code[i]["source"])).body if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    stored = {x.id for c in code[i + 1:] for x in ast.walk(ast.parse("".join(c["source"])))
              if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Store)}
    assert declared & stored == set()


def test_reproduce_gives_each_notebook_the_parameters_it_declares():
    """PRESET where a notebook reads the preset, SMOKE where a preset is only a size switch."""
    by_name = {nb.name[:2]: nb for nb in NOTEBOOKS}
    assert reproduce.parameters(by_name["02"], "smoke", "m") == {"PRESET": "smoke", "MODEL": "m"}
    for n in ("05", "06", "07"):
        assert reproduce.parameters(by_name[n], "smoke", "m") == {"SMOKE": True, "MODEL": "m"}
        assert reproduce.parameters(by_name[n], "cpu", "m") == {"SMOKE": False, "MODEL": "m"}

def _cell(nb_name: str, marker: str) -> str:
    """The source of the first code cell of a lesson notebook that contains `marker`."""
    cells = json.loads((reproduce.NOTEBOOKS / nb_name).read_text())["cells"]
    return next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and marker in "".join(c["source"]))


@pytest.mark.parametrize("overrides", [{}, {"method": "lora"}, {"eval_steps": 5, "max_steps": 10}])
@pytest.mark.parametrize("plan_name", ["cpu", "gpu", "smoke"])
def test_notebook_02_sft_config_is_the_one_training_uses(plan_name, overrides):
    """Notebook 02 writes the SFTConfig call out; the library builds the same one for the CLI and rounds."""
    from trl import SFTConfig

    from ftlib import plan, presets, runs, sft, train_config

    namespace = {"sft": sft, "train_config": train_config, "SFTConfig": SFTConfig}
    exec(_cell("02_sft.ipynb", "def sft_config("), namespace)
    p = presets.get(plan_name)
    for task in p.plan.tasks:
        cfg = dataclasses.replace(plan.train_config(p, task, "smollm2-135m-instruct"), **overrides)
        folder = runs.run_dir(cfg.experiment, cfg.run_name())
        assert namespace["sft_config"](cfg).to_dict() == sft.make_sft_config(cfg, folder).to_dict()


@pytest.fixture(scope="session")
def smoke_root(tmp_path_factory):
    """One folder for every smoke execution of a session: each notebook reads what the one before wrote.
    Session-wide, not per module: under pytest-xdist a worker may run other modules' tests between two
    notebooks, and a module fixture would then be torn down and made anew, empty."""
    return tmp_path_factory.mktemp("nb")


@pytest.fixture
def smoke_env(smoke_root, tiny_model_dir, monkeypatch):
    """Runs and results of the smoke executions go to that folder, not the repo (only while a notebook
    test runs: the kernel inherits the environment it starts with)."""
    monkeypatch.setenv("FTLIB_RUNS", str(smoke_root / "runs"))
    monkeypatch.setenv("FTLIB_RESULTS", str(smoke_root / "results"))  # a guard: smoke results belong under runs/
    return smoke_root, str(tiny_model_dir)


def _pngs(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}


@pytest.mark.slow
@pytest.mark.xdist_group("smoke-notebooks")  # one worker, in order: each reads what the one before wrote
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode_and_shows_every_figure_it_saves(nb, smoke_env):
    root, model = smoke_env
    results = next(iter((root / "runs" / "results").glob("smoke*")), root / "none")
    before = _pngs(results)
    reproduce.run_notebook(nb, root / "executed", reproduce.parameters(nb, "smoke", model))
    executed = json.loads((root / "executed" / nb.name).read_text())
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    results = next((root / "runs" / "results").glob("smoke*"))
    assert any(results.glob("*.md")), "a notebook must save its tables"
    assert not (root / "results").exists(), "smoke runs must not write into results/"

    saved = sorted(name for name, t in _pngs(results).items() if before.get(name) != t)
    images = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= len(saved), f"saved {saved} but displayed {len(images)} image(s)"
    for c in code:
        if "plots.save_figure(" in "".join(c["source"]):
            shown = [o for o in c["outputs"] if "image/png" in o.get("data", {})]
            assert shown, f"this cell saves a figure but shows none:\n{''.join(c['source'])}"
    tables = [o for c in code for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert tables, "tables render as tables (DataFrames), not as printed text"
    assert str(paths.ROOT) not in (root / "executed" / nb.name).read_text(), "no machine paths in outputs"
    if nb.name.startswith("02"):  # the plan's other model, scored on the same items as the untuned one
        other = sorted(p.name for p in (root / "runs").glob("smoke*/eval/smollm2-135m-instruct-zero_shot-*"))
        assert len(other) == 3, other


def test_tidy_keeps_an_executed_notebook_fit_to_commit(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="\r"),
        nbformat.v4.new_output("stream", name="stderr", text="  0%|  | 0/3"),
        nbformat.v4.new_output("stream", name="stderr", text="\r100%|##| 3/3\n"),
        nbformat.v4.new_output("stream", name="stdout", text=f"saved {paths.ROOT}/results/cpu/x.png\n" + "a" * 9000),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "1"}}),
    ]
    nb.cells = [cell]
    nb.metadata["papermill"] = {"input_path": str(paths.ROOT / "notebooks" / "x.ipynb")}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    reproduce.tidy(path)
    text = path.read_text()
    assert str(paths.ROOT) not in text
    outs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [o.output_type for o in outs] == ["stream", "stream"]
    assert outs[0].text == "100%|##| 3/3\n"
    assert len(outs[1].text) < 4100 and outs[1].text.startswith("[...") and outs[1].text.endswith("a")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_is_saved_as_jupyterlab_saves_it(nb):
    """Opening a lesson in JupyterLab must not change it (a clean `git status` for a participant)."""
    text = nb.read_text()
    assert reproduce.lab_form(text) == text
    data = json.loads(text)
    assert data["nbformat_minor"] >= 5 and all(c.get("id") for c in data["cells"])
    assert data["metadata"]["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    assert data["metadata"]["language_info"]["pygments_lexer"] == "ipython3"


def _cells(path: Path) -> list[tuple[str, str]]:
    """A notebook's cells as (type, source), without papermill's injected parameters."""
    cells = json.loads(path.read_text())["cells"]
    return [(c["cell_type"], "".join(c["source"])) for c in cells
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


_EXECUTED_JSON = json.loads((paths.ROOT / "results" / "executed.json").read_text())
MANIFEST, PENDING = _EXECUTED_JSON["copies"], _EXECUTED_JSON.get("pending", {})


def _copy(folder: str, number: str) -> Path:
    return paths.ROOT / "results" / folder / "notebooks" / next(p.name for p in NOTEBOOKS if p.name.startswith(number))


def _pending(path: Path) -> bool:
    return f"{path.parent.parent.name}/{path.name[:2]}" in PENDING


EXPECTED_ALL = [_copy(folder, n) for folder, numbers in MANIFEST.items() for n in numbers]
EXPECTED = [p for p in EXPECTED_ALL if not _pending(p)]
EXECUTED_ALL = sorted((paths.ROOT / "results").glob("*/notebooks/*.ipynb"))
EXECUTED = [p for p in EXECUTED_ALL if not _pending(p)]
# What no output of an executed copy may show: the Trainer's raw log dicts, the tied-head warning,
# tqdm's warning without ipywidgets (ftlib/progress.py and the pinned ipywidgets remove all three).
NOISE = ("{'loss':", "{'eval_loss':", "missing keys", "TqdmWarning")


def test_every_executed_copy_is_listed_in_the_manifest():
    assert sorted(EXECUTED_ALL) == sorted(p for p in EXPECTED_ALL if p.exists()), "results/executed.json"


def _noise(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    texts = ["".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
             for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    return sorted({n for n in NOISE for t in texts if n in t})


@pytest.mark.parametrize("key", sorted(PENDING))
def test_a_pending_copy_says_what_makes_it_and_is_not_yet_fine(key):
    """A copy the manifest promises but does not have yet (or has in an old form): the entry names the
    command that makes it, and fails once the copy is there and clean, so the entry goes then."""
    folder, number = key.split("/")
    assert number in MANIFEST.get(folder, []), f"pending {key} is not a promised copy"
    assert "make " in PENDING[key], f"pending {key}: say which command makes it"
    path = _copy(folder, number)
    fine = path.exists() and _cells(path) == _cells(reproduce.NOTEBOOKS / path.name) and not _noise(path)
    assert not fine, f"{paths.shown(path)} is made and clean: remove {key} from results/executed.json's pending"


@pytest.mark.parametrize("executed", EXPECTED, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_executed_copy_exists_with_its_lessons_code_and_text(executed):
    """Every copy results/executed.json promises: there, with exactly its lesson's cells. Fails for a
    missing copy (make reproduce PRESET=<folder>) or a stale one (rerun it; reproduce.retext when only
    comments or markdown changed)."""
    assert executed.exists(), f"{paths.shown(executed)} is missing: make reproduce PRESET={executed.parent.parent.name}"
    assert _cells(executed) == _cells(reproduce.NOTEBOOKS / executed.name), f"{paths.shown(executed)} is stale"


@pytest.mark.parametrize("executed", EXECUTED, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_executed_copy_shows_no_raw_logs_or_warnings(executed):
    found = _noise(executed)
    assert not found, f"{paths.shown(executed)} shows {found}: rerun it with the current ftlib"


@pytest.mark.parametrize("executed", EXECUTED_ALL, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_executed_copy_is_saved_as_jupyterlab_saves_it(executed):
    """Opening a copy in Lab must not rewrite it: Lab's kernel name, language info and cell ids."""
    text = executed.read_text()
    assert reproduce.lab_form(text) == text
    assert json.loads(text)["metadata"]["kernelspec"]["display_name"] == "Python 3 (ipykernel)"


def _nbstripout_args() -> list[str]:
    """The filter's options, as the Makefile gives them to git (`make setup`)."""
    import re
    import shlex

    line = re.search(r"^NBSTRIPOUT := nbstripout (.*)$", (paths.ROOT / "Makefile").read_text(), re.M).group(1)
    return shlex.split(line)


def test_only_the_lessons_go_through_the_strip_filter():
    rules = [line.split() for line in (paths.ROOT / ".gitattributes").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules == [["notebooks/*.ipynb", "filter=nbstripout"]]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_the_strip_filter_gives_the_committed_lesson_back_after_a_run_in_lab(nb, tmp_path):
    """What git stores when a participant has run and saved a lesson in Lab: the committed file, byte
    for byte (so `git diff` stays empty and a commit takes no outputs)."""
    import subprocess
    import sys

    import nbformat

    pytest.importorskip("nbstripout")
    run = nbformat.read(nb, as_version=4)
    run.metadata.language_info["version"] = "3.12.9"  # the participant's Python
    run.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    for i, cell in enumerate(c for c in run.cells if c.cell_type == "code"):
        cell.execution_count = i + 1
        cell.metadata["execution"] = {"iopub.status.busy": "2026-12-07T22:00:00.000Z"}
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"output {i}\n")]
    path = tmp_path / nb.name
    path.write_text(reproduce.lab_form(nbformat.writes(run)))
    assert path.read_text() != nb.read_text()
    stored = subprocess.run([sys.executable, "-m", "nbstripout", *_nbstripout_args(), "-t", str(path)],
                            capture_output=True, text=True, check=True).stdout
    assert stored == nb.read_text()


def test_reproduce_records_each_notebooks_time_with_its_cpu_kind(tmp_path, monkeypatch):
    from ftlib import plan, runs

    monkeypatch.setattr(plan, "results_dir", lambda *a: tmp_path)
    monkeypatch.setattr(reproduce, "run_notebook", lambda nb, out, params: 12.34)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "timings.json").write_text(json.dumps({"seconds": {"02_sft.ipynb": 99.0},
                                                                     "cpu_kind": {"02_sft.ipynb": "AMX"}}))
    reproduce.main(["--preset", "quick", "--only", "01"])
    record = json.loads((tmp_path / "notebooks" / "timings.json").read_text())
    assert record["seconds"] == {"02_sft.ipynb": 99.0, "01_data_prep.ipynb": 12.3}
    assert record["cpu_kind"] == {"02_sft.ipynb": "AMX", "01_data_prep.ipynb": runs.cpu_kind()}


def test_retext_takes_the_lessons_text_only_when_the_code_is_the_same(tmp_path):
    import nbformat

    def notebook(code: str, text: str) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(text), nbformat.v4.new_code_cell(code)]
        return nb

    executed = notebook("x = 1  # old comment", "old text")
    executed.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nbformat.write(executed, tmp_path / "copy.ipynb")
    nbformat.write(notebook("x = 1  # new comment", "new text"), tmp_path / "lesson.ipynb")
    reproduce.retext(tmp_path / "copy.ipynb", tmp_path / "lesson.ipynb")
    cells = nbformat.read(tmp_path / "copy.ipynb", as_version=4).cells
    assert [c.source for c in cells] == ["new text", "x = 1  # new comment"] and cells[1].outputs
    nbformat.write(notebook("x = 2", "new text"), tmp_path / "lesson.ipynb")
    with pytest.raises(ValueError, match="the code changed"):
        reproduce.retext(tmp_path / "copy.ipynb", tmp_path / "lesson.ipynb")
