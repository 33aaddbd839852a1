"""ftlib: the plumbing behind the notebooks, read in the order the pipeline runs.

Tasks and settings
    tasks/      each task in one home: loading, prompt parts, scoring, the hooks below (docs/tasks.md);
                tasks/program runs GSM8K's program-of-thought answers under limits
    presets     what each preset means (sizes, rules, the sweep's and the size comparison's settings)
    plan        where a preset's plan runs: its run and result folders, each task's config
Data
    data        the vendored data and its checksums
    prepare     prepared splits: the exact rows training and evaluation read
    quality     data-quality checks (duplicates, overlap, token lengths)
    prompts     rows -> prompts and completions, in every prompt style
Training
    models      a model spec -> (model, tokenizer) on this machine's best device and dtype
    train       TRL's SFTConfig/SFTTrainer, run() and merge(); lean (CPU speed levers), progress (its display)
    runs        run folders: config, environment, logs, segments, resume
Evaluation
    backends/   where answers come from: local transformers, a served model, an API
    harness     the one evaluation entry point: predictions.jsonl + summary.json
    sources     the hashes each stored score came from (row, prompt, scorer, model): what a rerun redoes
    evals       scores with their 95 % intervals (Score), paired tests; scorers (a user task's scorers)
    latency     response time and throughput
Experiments
    rounds, strategies   iterative fine-tuning rounds and the data-quality experiment
    sweep       the recipe sweep (lr, epochs, examples, LoRA)
    size        the comparison across model sizes; baselines (fair untuned columns: budgets, prompting)
Reporting
    report      finished evaluations read back: scores, error kinds, paired tables
    plots       figures and tables shown inline and saved; redraw (figures from committed tables)
    reproduce   every numbered notebook headless, on one preset
    readme      the README's tables and quoted numbers, written from results/
Shared: io (atomic writes, checked JSONL), paths (where things live; the folder-name rule), procs (child
    processes that die with their parent), metrics/ (the case study's metric code).
"""

__version__ = "0.1.0"
