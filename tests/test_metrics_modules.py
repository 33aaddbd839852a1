"""The `evaluate` modules load from their local folders with the hub switched off, and agree with the
tasks' scorers (ftlib.tasks)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from ftlib import paths

SCRIPT = r"""
import json, sys
import evaluate
root = sys.argv[1]
calls = {
    "viggo": dict(predictions=["inform(name[X], rating[good])", "nonsense"],
                  references=["inform(rating[good], name[X])", "confirm(name[Y])"]),
    "gsm8k": dict(predictions=["9 * 2 = 18\n#### 18", "so 4\n#### 3"], references=["#### 18", "#### 4"]),
    "sql": dict(predictions=["<SQL>SELECT COUNT(*) FROM head</SQL>", "<SQL>DROP TABLE head</SQL>"],
                references=["SELECT COUNT(*) FROM head"] * 2, contexts=["CREATE TABLE head (age INTEGER)"] * 2),
}
print(json.dumps({name: evaluate.load(f"{root}/{name}").compute(**kw) for name, kw in calls.items()}))
"""


def test_metric_modules_load_offline_from_a_local_path(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    root = Path(paths.ROOT) / "ftlib" / "metrics"
    # Run from another folder, so `import ftlib` inside the modules must come from the installed package.
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["viggo"] == {"function": 0.5, "attribute_types": 0.5, "attribute_order": 0.0, "exact": 0.0, "n": 2}
    assert got["gsm8k"] == {"strict_match": 0.5, "flexible_extract": 0.5, "n": 2}
    assert got["sql"] == {"execution_match": 0.5, "valid_sql": 0.5, "extracted": 1.0, "judged": 1.0,
                          "n": 2}
