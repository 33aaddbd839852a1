"""The main job: run every numbered notebook headless (papermill), in order, on one preset.

`python -m ftlib.reproduce --preset cpu` (what `make reproduce` calls). Executed copies go to
`runs/notebooks/<preset>/`; the notebooks themselves write their results under `runs/` and their
figures and tables under `results/<preset>/`. Finished work inside a notebook is skipped on rerun
(runs are folders with a DONE marker), so an interrupted reproduction picks up where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ftlib import harness, paths, plan, train
from ftlib.io import write_json

NOTEBOOKS = paths.ROOT / "notebooks"


def notebooks() -> list[Path]:
    """The numbered notebooks (`NN_name.ipynb`), in order."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(nb: Path, out_dir: Path, parameters: dict) -> float:
    """Execute one notebook with papermill; return its wall time in seconds."""
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(nb), str(out_dir / nb.name), parameters=parameters, cwd=str(NOTEBOOKS),
        kernel_name="python3", progress_bar=True,
    )
    return time.perf_counter() - start


def compute(p: plan.Plan, task: str, model: str) -> Path:
    """What notebook 02 computes for one task, without a notebook: the untuned evaluations and the
    fine-tuning run (with its evaluation). A machine with room for several (a GPU) runs tasks side
    by side, one process each; the notebooks then find the work finished and only read it."""
    for style in p.baseline_styles:
        harness.evaluate(model, task, "test", style, limit=p.eval_limit[task],
                         out_dir=plan.eval_dir(p, f"untuned-{style}", task))
    return train.run(plan.train_config(p, task, model))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ftlib.reproduce", description=__doc__)
    ap.add_argument("--preset", default="cpu", help="quick | cpu | full | gpu | smoke")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--only", nargs="*", help="notebook numbers to run (default: the plan's), e.g. 01 02")
    ap.add_argument("--compute", nargs="*", metavar="TASK",
                    help="no notebooks: run the evaluations and training of these tasks (see compute())")
    args = ap.parse_args(argv)
    if args.compute is not None:
        p = plan.get(args.preset)
        for task in args.compute or p.tasks:
            print(compute(p, task, args.model), flush=True)
        return
    wanted = args.only or plan.get(args.preset).notebooks
    out_dir = paths.runs_dir() / "notebooks" / args.preset
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"PRESET": args.preset, "MODEL": args.model}
    timings = {}
    for nb in notebooks():
        if not any(nb.name.startswith(p) for p in wanted):
            continue
        print(f"== {nb.name} (preset {args.preset})", flush=True)
        timings[nb.name] = round(run_notebook(nb, out_dir, params), 1)
        print(f"   {timings[nb.name]} s", flush=True)
    write_json(out_dir / "timings.json", {"preset": args.preset, "model": args.model, "seconds": timings})
    print(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
