"""Training speed in a fresh process vs in a process that has already trained and evaluated.

Why it exists: `make rounds` ran every round inside one notebook kernel, and its later rounds
trained slower (a ViGGO round of 30 steps from round 4: 179 tokens/s as the kernel's 20th run,
290 tokens/s for the same run alone in a new process, 2-core AVX-512-BF16 CPU). So
`rounds.run_series` trains each round in its own process (`train.run_in_fresh_process`). This
measures the two ways on the same round, in one run of this script:

1. `--age K` warm-up runs in this process: K ViGGO runs of `--steps` steps on other rows, each
   evaluated on `--eval` test items (what a notebook kernel does between rounds);
2. the measured round in this (aged) process, `train.run`;
3. the same round in a fresh process, `train.run_in_fresh_process`.

Prints the CPU kind, both tokens/s, this process's resident memory, and last
`speedup <fresh / in-process>x tokens_per_s <fresh figure>`.

    .venv/bin/python benchmarks/fresh_process.py [--age 6] [--steps 30] [--eval 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import tempfile

from ftlib import io, runs, train_config
from ftlib.experiments import rounds
from ftlib.experiments.rounds import Round, Series, Source


def tokens_per_s(folder) -> float:
    return io.read_json(folder / "summary.json")["tokens_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--age", type=int, default=6, help="runs this process trains and evaluates first")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--eval", type=int, default=100, help="test items each warm-up run scores")
    args = ap.parse_args()
    print("cpu:", runs.cpu_kind())
    root = tempfile.mkdtemp(prefix="fresh-process-")
    os.environ["FTLIB_RUNS"] = root  # every run of this benchmark, removed at the end
    rows = 8 * args.steps  # batch 8, one epoch
    base = train_config.preset("cpu", epochs=1, n_val=32, warmup_steps=5, lr=2e-4, eval_limit=0)

    def one_round(name: str, offset: int) -> Round:
        return Round(name, (Source("viggo", n=rows, offset=offset),), start="base")

    try:
        warm = Series("bench.warm-up", "viggo", tuple(one_round(f"age-{i}", i * rows) for i in range(args.age)))
        for folder in rounds.run_series(warm, dataclasses.replace(base, eval_limit=args.eval), fresh_process=False):
            print(f"warm-up {folder.name}: {tokens_per_s(folder):.1f} tokens/s")
        measured = one_round("measured", args.age * rows)  # the same rows, start and steps both ways
        here = rounds.run_series(Series("bench.here", "viggo", (measured,)), base, fresh_process=False)[0]
        rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        apart = rounds.run_series(Series("bench.apart", "viggo", (measured,)), base, fresh_process=True)[0]
        a, b = tokens_per_s(here), tokens_per_s(apart)
        print(f"in this process after {args.age} runs: {a:.1f} tokens/s (peak resident {rss_gb:.1f} GB)")
        print(f"in a fresh process: {b:.1f} tokens/s")
        print(f"speedup {b / a:.2f}x tokens_per_s {b:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
