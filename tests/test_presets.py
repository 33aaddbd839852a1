"""Presets: every name means one consistent thing to train, plan and strategies (ftlib/presets.py)."""

import typing
from dataclasses import replace

import pytest

from ftlib import paths, plan, presets, prompts, reproduce, tasks, train, train_config
from ftlib.experiments import strategies

HINTS = typing.get_type_hints(train_config.TrainConfig)
NOTEBOOKS = {p.name[:2] for p in reproduce.notebooks()}


def _fits(value, hint) -> bool:
    """Whether a value has the type of a TrainConfig field (an int where a float is expected too)."""
    kinds = typing.get_args(hint) or (hint,)
    if float in kinds:
        kinds += (int,)
    return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))


def _overrides(where: str, values: dict) -> list[str]:
    out = []
    for key, value in values.items():
        if key not in HINTS:
            out.append(f"{where}: {key!r} is not a TrainConfig field")
        elif not _fits(value, HINTS[key]):
            out.append(f"{where}: {key}={value!r} is not {HINTS[key]}")
    return out


def problems(table: dict[str, presets.Preset]) -> list[str]:
    """What is inconsistent in a table of presets (empty: nothing)."""
    out = []
    for key, p in table.items():
        pl, sz = p.plan, p.rounds
        if not key == p.name == pl.name:
            out.append(f"{key}: named {p.name!r}, its plan {pl.name!r}")
        out += _overrides(f"{key}.train", p.train)
        if pl.train_preset not in table:
            out.append(f"{key}.plan: train preset {pl.train_preset!r} does not exist")
        elif (table[pl.train_preset].train, table[pl.train_preset].lora_lr) != (p.train, p.lora_lr):
            out.append(f"{key}: trains with other defaults than its plan's train preset {pl.train_preset!r}")
        out += [f"{key}.plan: no task {t!r}" for t in pl.tasks if t not in tasks.names()]
        out += [f"{key}.plan: no eval_limit for {t!r}" for t in pl.tasks if t not in pl.eval_limit]
        out += [f"{key}.plan: overrides for {t!r}, not one of its tasks" for t in pl.train_overrides
                if t not in pl.tasks]
        for task, values in pl.train_overrides.items():
            out += _overrides(f"{key}.plan.train_overrides[{task!r}]", values)
        out += [f"{key}.plan: no style {s!r}" for s in pl.baseline_styles if s not in prompts.STYLES]
        out += [f"{key}.plan: no notebook {n!r}" for n in pl.notebooks if n not in NOTEBOOKS]
        if sz is not None:
            if sz.train_preset not in table:
                out.append(f"{key}.rounds: train preset {sz.train_preset!r} does not exist")
            out += _overrides(f"{key}.rounds.train", sz.train)
    return out


def test_every_preset_is_consistent():
    assert problems(presets.PRESETS) == []


def _broken(name: str, **changes) -> dict:
    """The presets with one preset changed: its fields, or `plan`/`rounds` fields via plan__x/rounds__x."""
    p = presets.PRESETS[name]
    own = {k: v for k, v in changes.items() if "__" not in k}
    for part in ("plan", "rounds"):
        sub = {k.split("__")[1]: v for k, v in changes.items() if k.startswith(part + "__")}
        if sub:
            own[part] = replace(getattr(p, part), **sub)
    return {**presets.PRESETS, name: replace(p, **own)}


@pytest.mark.parametrize("table,expected", [
    (_broken("quick", plan__name="cpu"), "named 'quick', its plan 'cpu'"),
    (_broken("quick", plan__train_preset="laptop"), "train preset 'laptop' does not exist"),
    (_broken("cpu", rounds__train_preset="laptop"), "cpu.rounds: train preset 'laptop'"),
    (_broken("full", lora_lr=3e-4), "other defaults than its plan's"),
    (_broken("full", train=dict(presets.CPU.train, lr=3e-4)), "other defaults than its plan's"),
    (_broken("gpu", train=dict(presets.GPU.train, learning_rate=1e-5)), "'learning_rate' is not a TrainConfig"),
    (_broken("cpu", plan__train_overrides={"viggo": dict(n_train="all")}), "n_train='all' is not"),
    (_broken("cpu", plan__train_overrides={"viggo": dict(epoch=1)}), "'epoch' is not a TrainConfig field"),
    (_broken("quick", plan__train_overrides={"sql": dict(lr=1e-4)}), "overrides for 'sql', not one of"),
    (_broken("smoke", plan__eval_limit={"viggo": 4, "sql": 4}), "no eval_limit for 'gsm8k'"),
    (_broken("smoke", plan__tasks=("viggo", "mmlu"), plan__eval_limit={"viggo": 4, "mmlu": 4}), "no task 'mmlu'"),
    (_broken("smoke", plan__baseline_styles=("fewshot",)), "no style 'fewshot'"),
    (_broken("cpu", plan__notebooks=("01", "09")), "no notebook '09'"),
    (_broken("smoke", rounds__train=dict(max_steps=2.5)), "max_steps=2.5 is not"),
])
def test_the_check_finds_each_inconsistency(table, expected):
    found = problems(table)
    assert len(found) == 1 and expected in found[0], found


def test_every_name_resolves_in_train_plan_and_strategies():
    for name, p in presets.PRESETS.items():
        cfg = train_config.preset(name)
        assert cfg.preset == name and all(getattr(cfg, k) == v for k, v in p.train.items())
        for task in p.plan.tasks:
            assert plan.train_config(p, task, "smollm2-135m-instruct").task == task
        if p.rounds is None:
            with pytest.raises(ValueError, match="has no rounds of that size"):
                strategies.sizes(p)
        else:
            assert strategies.sizes(p) is p.rounds
            assert strategies.base_config(p.rounds, "m").eval_limit == p.rounds.eval_limit
    with pytest.raises(ValueError, match="expected one of"):
        presets.get("laptop")


def test_the_command_lines_offer_every_preset(monkeypatch, capsys):
    monkeypatch.setattr(train, "run", lambda cfg: cfg.preset)
    for name in presets.PRESETS:
        train.main(["--preset", name])
        assert capsys.readouterr().out.strip() == name
    with pytest.raises(SystemExit):
        train.main(["--preset", "laptop"])
    assert "invalid choice" in capsys.readouterr().err


def test_no_other_module_keeps_a_preset_table():
    """The tables that presets.py replaced stay gone (one place says what a preset means)."""
    assert not hasattr(train, "PRESETS") and not hasattr(strategies, "SIZES")


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_notebook_03_runs_a_preset_at_its_own_size_or_refuses_it_with_the_alternative(name):
    """Notebook 03 calls strategies.sizes(P) first: `quick` must not silently run cpu's 100 minutes."""
    from ftlib.experiments import strategies

    if presets.get(name).rounds is None:
        with pytest.raises(ValueError, match=rf"PRESET = '{name}'.*'smoke'.*'cpu'"):
            strategies.sizes(presets.get(name))
    else:
        assert strategies.sizes(presets.get(name)) is presets.get(name).rounds
    assert presets.get("quick").rounds is None


def test_a_preset_name_is_resolved_only_where_it_enters():
    """`presets.get` only at the edges: a command line (reproduce; train --preset, through
    train_config.preset), the README writer, a notebook's first code cell; below them functions take
    the Preset (plan, train_config.from_preset)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("task_walk", paths.ROOT / "scripts" / "task_walk.py")
    walk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walk)
    found = {site.split(":")[0] for site in walk.lookups("presets")}
    edges = {"ftlib.reproduce.main", "ftlib.train_config.preset", "ftlib.readme.preset_words"}
    assert {s for s in found if not s.startswith("notebooks/")} == edges
    assert all(s.endswith("#code cell 1") for s in found if s.startswith("notebooks/"))
