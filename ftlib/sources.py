"""What every stored score came from, as hashes: each item's row and prompt, the scorer, the model.

An evaluation folder (`ftlib.harness`) keeps them: each predictions.jsonl record its `row_sha` (the
data row it was scored against) and `prompt_sha` (the prompt it was generated from: style, few-shot
examples, instruction, input, stop strings, answer length); summary.json all four under `sources`,
config.json the model's. On a rerun, `reconcile` compares them with the task as it is now: a changed
prompt regenerates its item, a changed row (a reference edited) rescores it, and it says so; a changed
scorer rescores everything (`Task.scorer_id`), a changed model regenerates everything.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ftlib import io, prompts
from ftlib.tasks import Task


def _sha(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def item_hashes(task: Task, items: list[tuple[int, dict]], style: str) -> dict[int, dict]:
    """{idx: {"row_sha", "prompt_sha"}} of the items as the task gives them now."""
    stop, max_new = prompts.stop_strings(task, style), task.max_new_tokens
    return {i: {"row_sha": io.rows_hash([row])[:16],
                "prompt_sha": _sha([prompts.source(task, row, style), stop, max_new])} for i, row in items}


def model_stamp(spec: str, name: str) -> str:
    """`name` (the model as summaries show it), and for a model folder (`spec`) a hash of each file's
    name, size and first and last MiB: a folder trained again under the same path is another model,
    a copy of it on another machine the same one."""
    folder = Path(spec)
    if not folder.is_dir():
        return name
    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        size = f.stat().st_size
        with f.open("rb") as fh:
            head = fh.read(2**20)
            fh.seek(max(0, size - 2**20))
            h.update(f.name.encode() + b"\0" + str(size).encode() + head + fh.read())
    return f"{name}@{h.hexdigest()[:16]}"


def summary_sources(hashes: dict[int, dict], scorer: str, model: str) -> dict:
    """summary.json's `sources`: one hash per kind over every item, the scorer's id and the model's stamp."""
    return {"rows": _sha([hashes[i]["row_sha"] for i in sorted(hashes)]),
            "prompts": _sha([hashes[i]["prompt_sha"] for i in sorted(hashes)]), "scorer": scorer, "model": model}


def reconcile(task: Task, records: dict[int, dict], rows: dict[int, dict], hashes: dict[int, dict]) -> list[str]:
    """Bring stored records in line with the items now, in place: a record whose prompt changed is
    removed (generated again), one whose row changed is refreshed and unscored (scored again); a
    record from before the hashes is judged by its stored input and reference. Returns what changed."""
    regenerate, rescore = [], []
    for i, rec in list(records.items()):
        now, row = hashes[i], rows[i]
        if "prompt_sha" not in rec:  # written before the hashes: the text it stored is what it knows
            rec.update(prompt_sha=now["prompt_sha"] if rec.get("input") == task.question(row) else None,
                       row_sha=now["row_sha"] if rec.get("reference") == task.reference(row) else None)
        if rec["prompt_sha"] != now["prompt_sha"]:
            regenerate.append(i)
            del records[i]
        elif rec.get("row_sha") != now["row_sha"]:
            rescore.append(i)
            rec.update(now, input=task.question(row), reference=task.reference(row), scores=None)
            rec.pop("scorer_error", None)
    notes = []
    if rescore:
        notes.append(f"{len(rescore)} items' rows changed since they were scored: rescoring them "
                     f"(items {_few(rescore)})")
    if regenerate:
        notes.append(f"{len(regenerate)} items' prompts changed since they were generated: generating them "
                     f"again (items {_few(regenerate)})")
    return notes


def _few(idx: list[int]) -> str:
    return ", ".join(map(str, idx[:5])) + (f" and {len(idx) - 5} more" if len(idx) > 5 else "")
