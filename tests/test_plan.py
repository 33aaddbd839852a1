"""Plans: what each preset trains and scores; the `full` plan covers every row and every test item."""

import pytest

from ftlib import data, plan, prepare, presets, sft


def test_every_plan_resolves_for_each_of_its_tasks():
    for p in presets.PRESETS.values():
        for task in p.plan.tasks:
            cfg = plan.train_config(p, task, "smollm2-135m-instruct")
            assert cfg.experiment == p.name and cfg.task == task and cfg.preset == p.plan.train_preset
            assert cfg.eval_limit == p.plan.eval_limit[task] and cfg.eval_split == "test"


def test_full_plan_trains_on_every_row_and_scores_every_test_item():
    p = presets.FULL
    assert set(p.plan.tasks) == {"viggo", "sql", "gsm8k"}
    for task in p.plan.tasks:
        cfg = plan.train_config(p, task, "smollm2-135m-instruct")
        assert cfg.n_train is None  # all usable rows
        assert cfg.eval_limit >= len(data.load_rows(task, "test"))  # every test item
        assert cfg.bf16 is None  # the machine decides (sft.use_bf16)
        assert cfg.eval_steps  # checkpoints within an epoch: a CPU run resumes minutes back
    # Gemma 3 270M (a base model) on the same items where installed, with the plain-text prompt
    from ftlib import models, prompts

    assert p.plan.other_models == (("gemma3-270m", "few_shot_text"),)
    assert all(spec in models.EMBEDDED and style in prompts.STYLES for spec, style in p.plan.other_models)


@pytest.mark.slow
def test_full_plan_examples_are_the_whole_usable_split(runs_root):
    """Smoke form of the full plan's data: every prepared training row that fits max_length."""
    from ftlib import models

    tok = models.load_tokenizer()
    cfg = plan.train_config(presets.FULL, "viggo", "smollm2-135m-instruct")
    examples = sft.build_examples(cfg, "train", cfg.n_train, tok)
    rows = prepare.load_split("viggo", "train")
    assert len(examples) == len(rows) == 5103


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="expected one of"):
        presets.get("nightly")
