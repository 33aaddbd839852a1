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
    train_config  TrainConfig: what defines a run, from a preset, `--set key=value`
    sft         TRL and PEFT wiring: SFTConfig, LoraConfig, SFTTrainer, datasets, merge(); lean (CPU speed
                levers), progress (its display)
    train       run(): a run folder trained, resumed or skipped, evaluated, recorded; the command line
    runs        run folders: config, environment, logs, segments, resume
Evaluation
    backends/   where answers come from: local transformers, a served model, an API
    harness     the one evaluation entry point: predictions.jsonl + summary.json
    sources     the hashes each stored score came from (row, prompt, scorer, model): what a rerun redoes
    evals       scores with their 95 % intervals (Score); scorers (a user task's scorers)
    latency     response time and throughput
Reporting
    report      finished evaluations read back: scores, error kinds, paired sign tests (`report.paired`)
    plots       figures and tables shown inline and saved, the case study's published numbers; redraw
                (figures from committed tables)
    reproduce   every numbered notebook headless, on one preset
    readme      the README's tables and quoted numbers, written from results/
experiments/    what the notebooks 03, 06 and 07 ask, each built from the pieces above: rounds and
                strategies, sweep, size (with baselines and size_tuned); its own map in experiments/__init__.py
Shared: io (atomic writes, checked JSONL), paths (where things live; the folder-name rule), procs (child
    processes that die with their parent), metrics/ (the case study's metric code).
"""

__version__ = "0.1.0"
