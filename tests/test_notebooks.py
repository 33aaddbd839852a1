"""Every notebook: committed clean, has a papermill parameters cell, and runs top to bottom in
smoke mode (tiny random model, a handful of examples) — in order, each reading what the one
before wrote to disk."""

import json

import pytest

from ftlib import reproduce

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


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory, tiny_model_dir):
    """Runs and results of the smoke executions go to a temporary folder, not the repo."""
    root = tmp_path_factory.mktemp("nb")
    mp = pytest.MonkeyPatch()
    mp.setenv("FTLIB_RUNS", str(root / "runs"))
    mp.setenv("FTLIB_RESULTS", str(root / "results"))
    yield root, str(tiny_model_dir)
    mp.undo()


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode(nb, smoke_env):
    root, model = smoke_env
    reproduce.run_notebook(nb, root / "executed", {"PRESET": "smoke", "MODEL": model})
    executed = json.loads((root / "executed" / nb.name).read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any((root / "results" / "smoke").glob("*.md")), "a notebook must save its tables"
