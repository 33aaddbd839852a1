"""Response time: what a prompt costs per answer, measured the way a user would feel it.

For one model and prompt style on the first `limit` items of a task's split (the items the harness
scores, so a score can sit beside each figure):
- `prompt_tokens`: mean tokens of the rendered prompt (a few-shot prompt carries its examples);
- `latency_s`: seconds per answer when requests come one at a time (a chat user waiting), with a
  95 % interval, over the first `latency_items` items;
- `new_tokens`: mean tokens generated per answer over those items (a longer answer takes longer);
- `answers_per_s`: answers per second when the same items come as a batch (an offline job).
The result is written to `out` (JSON) and a rerun reads it back instead of measuring again.

Each condition is measured in a fresh Python process (`python -m ftlib.latency`), so that what the
calling process did before cannot decide the figure (a long-lived process was measured several
times slower: docs/measurements.md).

    latency.measure("runs/voice/viggo_voice-full-cpu/model", "data/viggo_voice/task.json", "chat",
                    limit=100, out=Path("runs/voice/latency-tuned.json"))
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from ftlib import evals, io, paths, prepare, prompts, runs, tasks

COLUMNS = ("prompt_tokens", "new_tokens", "latency_s", "latency_ci_low", "latency_ci_high", "latency_items",
           "answers_per_s", "n", "cpu_kind", "device")  # what a table of conditions shows


def _timed(gen, batch: list[str], max_new: int, stop: list[str]) -> float:
    start = time.perf_counter()
    gen.generate(batch, max_new, stop)
    return time.perf_counter() - start


def measure(model: str, task: str, style: str, limit: int | None = 100, latency_items: int = 30,
            batch_size: int | None = None, out: str | Path | None = None, fresh_process: bool = True) -> dict:
    """Prompt tokens, latency per answer and answers per second of a model with a prompt style
    (in a fresh process unless `fresh_process=False`)."""
    if out is not None and Path(out).exists():
        return io.read_json(out)
    kwargs = dict(model=model, task=task, style=style, limit=limit, latency_items=latency_items,
                  batch_size=batch_size)
    result = _in_fresh_process(kwargs) if fresh_process else _measure(**kwargs)
    if out is not None:
        io.write_json(out, result)
    return result


def _in_fresh_process(kwargs: dict) -> dict:
    """`_measure(**kwargs)` in a new Python process; its result is the last line it prints."""
    last = runs.in_fresh_process("ftlib.latency", json.dumps(kwargs), f"measuring {kwargs['model']}")
    return json.loads(last)


def _measure(model: str, task: str, style: str, limit: int | None, latency_items: int,
             batch_size: int | None) -> dict:
    """The measurement itself, in this process."""
    from ftlib.backends.local import LocalGenerator

    t = tasks.get(task)
    rate = runs.cpu_matmul() if not torch.cuda.is_available() else {}  # the CPU's speed now, before loading
    gen = LocalGenerator.from_spec(model, **({"batch_size": batch_size} if batch_size else {}))
    rows = [r for _, r in prepare.items(t, "test", limit)]
    texts, stop = prompts.batch(t, rows, style, gen.tokenizer)
    _timed(gen, texts[:2], t.max_new_tokens, stop)  # warm-up: first-call allocations
    generated = gen.stats.new_tokens
    per_answer = [_timed(gen, [p], t.max_new_tokens, stop) for p in texts[:latency_items]]
    generated = gen.stats.new_tokens - generated
    batch_s = _timed(gen, texts, t.max_new_tokens, stop)
    low, high = evals.mean_ci(per_answer)
    result = {
        "model": paths.shown(model) if Path(model).exists() else model, "task": t.name, "style": style,
        "n": len(rows), "prompt_tokens": round(sum(len(gen.tokenizer(p).input_ids) for p in texts) / len(texts), 1),
        "new_tokens": round(generated / len(per_answer), 1),
        "latency_s": round(sum(per_answer) / len(per_answer), 3), "latency_ci_low": round(low, 3),
        "latency_ci_high": round(high, 3), "latency_items": len(per_answer),
        "answers_per_s": round(len(rows) / batch_s, 2), "batch_size": gen.batch_size,
        "device": str(gen.device), "cpu_kind": runs.cpu_kind(), "threads": torch.get_num_threads(), **rate,
    }
    return result


if __name__ == "__main__":  # python -m ftlib.latency '{"model": ..., "task": ..., "style": ...}'
    print(json.dumps(_measure(**{"limit": 100, "latency_items": 30, "batch_size": None, **json.loads(sys.argv[1])})))
