"""Time SQL execution match over every item of a committed predictions file: this checkout's scorer
against a baseline commit's, each in a fresh process (cold caches: databases built from scratch).

    python benchmarks/sql_scoring_speed.py                        # baseline: the commit before the test suites
    python benchmarks/sql_scoring_speed.py --baseline <commit> --predictions <file under results/>

Prints each time and the ratio new / baseline, measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from ftlib import paths
from ftlib.tasks import sql

CHILD = r"""
import json, sys, time
try:
    from ftlib.tasks.sql import sql_execution_match
except ImportError:  # a baseline from before ftlib/tasks/ was a package
    from ftlib.evals import sql_execution_match
items = json.load(open(sys.argv[1]))
start = time.perf_counter()
matched = sum(sql_execution_match(p, g, c) for p, g, c in items)
print(json.dumps({"seconds": time.perf_counter() - start, "matched": matched}))
"""


def _time(ftlib_parent: Path, items_file: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ftlib_parent)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(items_file)], env=env, capture_output=True, text=True,
                         check=True, cwd=ftlib_parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="7f3f1ae", help="git commit whose ftlib is the baseline")
    parser.add_argument("--predictions", default="results/full/predictions/sql-fine-tuned.jsonl")
    args = parser.parse_args()
    root = Path(paths.ROOT)
    records = [json.loads(line) for line in (root / args.predictions).read_text().splitlines() if line.strip()]
    items = [(r["prediction"], sql.sql_row(r)["answer"], sql.sql_row(r)["context"]) for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        items_file = Path(tmp) / "items.json"
        items_file.write_text(json.dumps(items))
        archive = subprocess.run(["git", "archive", args.baseline, "ftlib"], cwd=root, capture_output=True, check=True)
        tarfile.open(fileobj=BytesIO(archive.stdout)).extractall(Path(tmp) / "base")
        start = time.perf_counter()
        base = _time(Path(tmp) / "base", items_file)
        new = _time(root, items_file)
    print(f"{len(items)} items of {args.predictions} (total wall {time.perf_counter() - start:.1f} s)")
    print(f"baseline {args.baseline}: {base['seconds']:.1f} s, {base['matched']} matched")
    print(f"this checkout:    {new['seconds']:.1f} s, {new['matched']} matched")
    print(f"ratio new / baseline: {new['seconds'] / base['seconds']:.2f}")


if __name__ == "__main__":
    main()
