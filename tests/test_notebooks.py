"""Every notebook: committed clean, has a papermill parameters cell, and runs top to bottom in
smoke mode (tiny random model, a handful of examples) — in order, each reading what the one
before wrote to disk."""

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
    assert "PRESET =" in src and "MODEL =" in src
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"][0].startswith("# ")


def _cell(nb_name: str, marker: str) -> str:
    """The source of the first code cell of a lesson notebook that contains `marker`."""
    cells = json.loads((reproduce.NOTEBOOKS / nb_name).read_text())["cells"]
    return next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and marker in "".join(c["source"]))


@pytest.mark.parametrize("overrides", [{}, {"method": "lora"}, {"eval_steps": 5, "max_steps": 10}])
@pytest.mark.parametrize("plan_name", ["cpu", "gpu", "smoke"])
def test_notebook_02_sft_config_is_the_one_training_uses(plan_name, overrides):
    """Notebook 02 writes the SFTConfig call out; the library builds the same one for the CLI and rounds."""
    from trl import SFTConfig

    from ftlib import plan, runs, train

    namespace = {"train": train, "SFTConfig": SFTConfig}
    exec(_cell("02_sft.ipynb", "def sft_config("), namespace)
    the_plan = plan.get(plan_name)
    for task in the_plan.tasks:
        cfg = dataclasses.replace(plan.train_config(the_plan, task, "smollm2-135m-instruct"), **overrides)
        folder = runs.run_dir(cfg.experiment, cfg.run_name())
        assert namespace["sft_config"](cfg).to_dict() == train.make_sft_config(cfg, folder).to_dict()


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory, tiny_model_dir):
    """Runs and results of the smoke executions go to a temporary folder, not the repo."""
    root = tmp_path_factory.mktemp("nb")
    mp = pytest.MonkeyPatch()
    mp.setenv("FTLIB_RUNS", str(root / "runs"))
    mp.setenv("FTLIB_RESULTS", str(root / "results"))  # a guard: smoke results belong under runs/
    yield root, str(tiny_model_dir)
    mp.undo()


def _pngs(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode_and_shows_every_figure_it_saves(nb, smoke_env):
    root, model = smoke_env
    results = next(iter((root / "runs" / "results").glob("smoke*")), root / "none")
    before = _pngs(results)
    reproduce.run_notebook(nb, root / "executed", {"PRESET": "smoke", "MODEL": model})
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


def _code(path: Path) -> list[str]:
    """The code cells of a notebook, without papermill's injected parameters."""
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"
            and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


EXECUTED = sorted((paths.ROOT / "results").glob("*/notebooks/*.ipynb"))


def test_there_are_executed_notebooks():
    assert EXECUTED


@pytest.mark.parametrize("executed", EXECUTED, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_executed_notebook_comes_from_the_current_lesson(executed):
    """Every executed copy under results/ has exactly its lesson's code: rerun or remove it otherwise."""
    lesson = reproduce.NOTEBOOKS / executed.name
    assert lesson.exists(), f"{executed.name}: no such lesson"
    assert _code(executed) == _code(lesson), f"{executed} is stale: regenerate it (make reproduce) or remove it"
