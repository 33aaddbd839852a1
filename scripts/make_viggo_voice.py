"""Write data/viggo_voice/: ViGGO in its original direction, meaning representation -> sentence.

The example "your own task" of notebook 05 (personalization: a model that writes in ViGGO's
conversational voice). Rows are `{"prompt": MR, "completion": sentence}` JSONL, derived from the
vendored ViGGO splits (CC BY-SA 4.0, so these files are too):
- train: every ViGGO training row, shuffled (seed 0), after one row of each dialogue act first
  (the first train row of each, in ViGGO's order), so the first 9 rows make a balanced few-shot prompt;
- validation and test: one row per meaning representation (ViGGO has about three sentences for each;
  identical prompts would count one item several times), its first sentence as the completion and all
  of them in `references`, in ViGGO's order.

    python scripts/make_viggo_voice.py      # rewrites the three files; the checksums must not change
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ftlib import data
from ftlib.tasks import viggo

OUT = Path(__file__).resolve().parents[1] / "data" / "viggo_voice"


def pair(row: dict) -> dict:
    return {"prompt": row["meaning_representation"].strip(), "completion": row["target"].strip()}


def train_rows() -> list[dict]:
    rows = data.load_rows("viggo", "train")
    first = {}
    for i, r in enumerate(rows):
        first.setdefault(r["meaning_representation"].split("(", 1)[0].strip(), i)
    shots = [first[f] for f in viggo.VIGGO_FUNCTIONS]
    rest = [i for i in range(len(rows)) if i not in set(shots)]
    random.Random(0).shuffle(rest)
    return [pair(rows[i]) for i in shots + rest]


def eval_rows(split: str) -> list[dict]:
    """One row per meaning representation: its first sentence, and every sentence as references."""
    rows: dict[str, dict] = {}
    for r in data.load_rows("viggo", split):
        row = rows.setdefault(r["meaning_representation"].strip(), {**pair(r), "references": []})
        row["references"].append(r["target"].strip())
    return list(rows.values())


def main() -> None:
    splits = {"train": train_rows(), "validation": eval_rows("validation"), "test": eval_rows("test")}
    for split, rows in splits.items():
        (OUT / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{split}: {len(rows)} rows")


if __name__ == "__main__":
    main()
