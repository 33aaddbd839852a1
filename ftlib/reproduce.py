"""The main job: run every numbered notebook headless (papermill), in order, on one preset.

`python -m ftlib.reproduce --preset cpu` (what `make reproduce` calls). The notebooks write their
runs under `runs/` and their figures and tables under `results/<label>/` (`ftlib.plan.label`: the
preset, or `<preset>-<model>` for another model than the default). The executed copies, outputs
included, go to `results/<label>/notebooks/` beside them, so a reader sees every figure and table
without running anything; `notebooks/` itself stays clean. Finished work inside a notebook is skipped
on rerun (runs are folders with a DONE marker), so an interrupted reproduction picks up where it stopped.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import nbformat

from ftlib import harness, paths, plan, presets, runs, train
from ftlib.io import read_json, write_json

NOTEBOOKS = paths.ROOT / "notebooks"
MAX_STREAM_CHARS = 4000  # of one printed output kept in an executed copy (progress bars, logs)
_WIDGET = "application/vnd.jupyter.widget-view+json"


def notebooks() -> list[Path]:
    """The numbered notebooks (`NN_name.ipynb`), in order."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _tidy_text(text: str) -> str:
    """A printed output as a terminal would leave it (a progress bar's redraws collapsed), cut to size."""
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    if len(text) > MAX_STREAM_CHARS:
        text = f"[... {len(text) - MAX_STREAM_CHARS} characters cut]\n" + text[-MAX_STREAM_CHARS:]
    return text


def _merged(outputs: list) -> list:
    """Outputs with each run of prints to the same stream joined into one (as Jupyter shows them)."""
    merged = []
    for out in outputs:
        if _WIDGET in out.get("data", {}):
            continue
        last = merged[-1] if merged else None
        if out.output_type == "stream" and last is not None and last.output_type == "stream" \
                and last.name == out.name:
            last.text += out.text
        else:
            merged.append(out)
    for out in merged:
        if out.output_type == "stream":
            out.text = _tidy_text(out.text)
    return merged


def tidy(path: Path) -> None:
    """Make an executed notebook fit to commit: no machine paths, no widget state, long prints cut."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = _merged(cell.outputs)
    text = nbformat.writes(nb).replace(sys.prefix, "<python>")
    text = text.replace(str(paths.ROOT) + "/", "").replace(str(paths.ROOT), ".")
    path.write_text(lab_form(re.sub(r'"(input|output)_path": "[^"]*"', r'"\1_path": null', text)))


LAB_KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def lab_form(text: str) -> str:
    """A notebook as JupyterLab saves it: nbformat 4.5 with cell ids, ipykernel's kernel name and the
    kernel's language info, so opening it in Lab rewrites nothing. The Python version is kept where the
    notebook has one (an executed copy: its kernel's); a lesson has none, since the nbstripout filter
    (Makefile, NBSTRIPOUT) drops the one Lab writes: each participant's Python differs."""
    nb = nbformat.reads(text, as_version=4)
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    for i, cell in enumerate(nb.cells):
        cell.setdefault("id", f"cell-{i:02d}")
    version = nb.metadata.get("language_info", {}).get("version")
    nb.metadata.kernelspec = nbformat.NotebookNode(LAB_KERNELSPEC)
    nb.metadata.language_info = nbformat.NotebookNode({
        "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
        "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3", **({"version": version} if version else {})})
    return nbformat.writes(nb) + "\n"


def retext(executed: Path, lesson: Path) -> None:
    """Bring an executed copy's text up to its lesson's when only text changed: markdown cells, and code
    cells whose statements are the same (comments and layout aside). The outputs stay, since the code
    that made them is unchanged; any other difference is an error: rerun the notebook instead."""
    import ast

    copy, source = nbformat.read(executed, as_version=4), nbformat.read(lesson, as_version=4)
    cells = [c for c in copy.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    if [c.cell_type for c in cells] != [c.cell_type for c in source.cells]:
        raise ValueError(f"{executed.name}: its cells are not the lesson's: rerun it (make reproduce)")
    for old, new in zip(cells, source.cells):
        if old.cell_type == "code" and ast.dump(ast.parse(old.source)) != ast.dump(ast.parse(new.source)):
            raise ValueError(f"{executed.name}: the code changed, not only its text: rerun it\n{new.source}")
        old.source = new.source
    executed.write_text(lab_form(nbformat.writes(copy)))


def parameters(nb: Path, preset: str, model: str) -> dict:
    """What a notebook is given, of what it declares in its parameters cell: PRESET (the preset's name),
    SMOKE (a notebook for which a preset is only a size switch: smoke or not) and MODEL."""
    import papermill

    given = {"PRESET": preset, "SMOKE": preset == "smoke", "MODEL": model}
    declared = papermill.inspect_notebook(str(nb))
    return {k: v for k, v in given.items() if k in declared}


def run_notebook(nb: Path, out_dir: Path, parameters: dict) -> float:
    """Execute one notebook with papermill into out_dir, tidied; return its wall time in seconds."""
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(nb), str(out_dir / nb.name), parameters=parameters, cwd=str(NOTEBOOKS),
        kernel_name="python3", progress_bar=True,
    )
    seconds = time.perf_counter() - start
    tidy(out_dir / nb.name)
    return seconds


def compute(p: presets.Preset, task: str, model: str) -> Path:
    """What notebook 02 computes for one task, without a notebook: the untuned evaluations and the
    fine-tuning run (with its evaluation). A machine with room for several (a GPU) runs tasks side
    by side, one process each; the notebooks then find the work finished and only read it."""
    for style in p.plan.baseline_styles:
        harness.evaluate(model, task, "test", style, limit=p.plan.eval_limit[task],
                         out_dir=plan.eval_dir(p, f"untuned-{style}", task, model))
    return train.run(plan.train_config(p, task, model))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ftlib.reproduce", description=__doc__)
    ap.add_argument("--preset", default="cpu", choices=list(presets.PRESETS), help="ftlib/presets.py")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--only", nargs="*", help="notebook numbers to run (default: the plan's), e.g. 01 02")
    ap.add_argument("--compute", nargs="*", metavar="TASK",
                    help="no notebooks: run the evaluations and training of these tasks (see compute())")
    args = ap.parse_args(argv)
    p = presets.get(args.preset)  # resolved once: the notebooks get its name, a plain papermill parameter
    if args.compute is not None:
        for task in args.compute or p.plan.tasks:
            print(compute(p, task, args.model), flush=True)
        return
    wanted = args.only or p.plan.notebooks
    out_dir = plan.results_dir(p, args.model) / "notebooks"
    record = out_dir / "timings.json"
    old = read_json(record) if record.exists() else {}
    timings, kinds = old.get("seconds", {}), old.get("cpu_kind", {})  # `--only` keeps the others'
    for nb in notebooks():
        if not any(nb.name.startswith(p) for p in wanted):
            continue
        print(f"== {nb.name} (preset {args.preset}) -> {paths.shown(out_dir / nb.name)}", flush=True)
        timings[nb.name] = round(run_notebook(nb, out_dir, parameters(nb, args.preset, args.model)), 1)
        kinds[nb.name] = runs.cpu_kind()  # a time means little without the CPU that took it
        print(f"   {timings[nb.name]} s", flush=True)
    write_json(record, {"preset": args.preset, "model": paths.shown(args.model) if Path(args.model).exists()
                        else args.model, "seconds": timings, "cpu_kind": kinds})
    print(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
