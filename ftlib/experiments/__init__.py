"""The experiments: each asks one question with the pipeline's pieces (tasks, prepare, train, harness,
report, plots) and writes its tables under results/<experiment>/.

    rounds      iterative fine-tuning rounds: a series of runs, each starting where the last one stopped
    strategies  the series notebook 03 runs (iterative, self-training, data quality, SQL), sized by presets
    sweep       the recipe sweep (lr, epochs, examples, LoRA) on the validation split (notebook 06)
    baselines   the size comparison's columns, and fair untuned baselines: budgets, prompting on validation
    size_tuned  its fine-tuned larger model: learning-rate arms (sweep arms), training, cost, response time
    size        the comparison across model sizes (notebook 07): table, figure, paired tests; its CLI
"""
