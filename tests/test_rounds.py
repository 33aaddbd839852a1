"""Rounds: corruption is seeded, round 2 starts from round 1's weights, an interrupted series resumes."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from ftlib import io, presets, runs, sft, tasks, train, train_config
from ftlib.experiments import rounds, strategies
from ftlib.experiments.rounds import Round, SelfTrain, Series, Source
from ftlib.tasks import viggo

ROWS = [{"meaning_representation": mr, "target": "t"} for mr in (
    "inform(name[A], genres[driving/racing, sport])", "request(has_multiplayer[yes], specifier[fast-paced])",
    "give_opinion(name[B], rating[good])", "confirm(name[C], esrb[E 10+ (for Everyone 10 and Older)])",
    "verify_attribute(name[D], rating[poor], platforms[PC])", "suggest(name[E], developer[X])",
    "recommend(name[F], player_perspective[bird view])", "request_attribute(genres[])",
    "inform(name[G], release_year[2012])", "request_explanation(rating[excellent], genres[puzzle])")]


def test_corruption_is_seeded_and_respects_the_fraction():
    a, b = viggo.corrupt_viggo(ROWS, 0.3, seed=1), viggo.corrupt_viggo(ROWS, 0.3, seed=1)
    assert a == b
    assert a != viggo.corrupt_viggo(ROWS, 0.3, seed=2)
    assert sum(r["corrupted"] for r in a) == 3
    assert all(not r["corrupted"] for r in viggo.corrupt_viggo(ROWS, 0.0))
    assert ROWS[0]["meaning_representation"].startswith("inform(name[A]")  # input not mutated


@pytest.mark.parametrize("seed", range(5))
def test_corrupted_mrs_parse_and_are_wrong(seed):
    for new, old in zip(viggo.corrupt_viggo(ROWS, 1.0, seed), ROWS):
        assert viggo.parse_viggo(new["meaning_representation"]) is not None
        scores = viggo.score_viggo(new["meaning_representation"], old["meaning_representation"])
        assert not scores["attribute_types"]  # wrong where the primary metric looks


def test_keep_verified_keeps_only_what_the_scorer_accepts():
    rows = [{"question": "q", "answer": "so #### 4"}, {"question": "q", "answer": "#### 5"}]
    kept = rounds.keep_verified(tasks.GSM8K, rows, ["2+2=4 #### 4", "#### 6"])
    assert kept == [{"question": "q", "answer": "2+2=4 #### 4"}]
    kept = rounds.keep_verified(tasks.VIGGO, ROWS[:2], [ROWS[0]["meaning_representation"], "inform(name[A])"])
    assert [r["meaning_representation"] for r in kept] == [ROWS[0]["meaning_representation"]]


def test_a_round_must_start_from_an_earlier_round():
    s = Series("s", "viggo", (Round("a", start="b"), Round("b")))
    with pytest.raises(ValueError):
        rounds.round_config(s, 0, train_config.preset("smoke"))
    cfg = rounds.round_config(s, 1, train_config.preset("smoke"))
    assert cfg.init_from.endswith("a") and cfg.experiment == "s" and cfg.name == "b"


def test_every_strategy_is_declared_for_every_preset():
    for preset in ("smoke", "cpu", "gpu"):
        sz = strategies.sizes(presets.get(preset))
        series = [s for group in strategies.all_series(sz, preset).values() for s in group]
        series += strategies.broad_to_specific(sz, preset)
        for s in series:
            for i in range(len(s.rounds)):
                rounds.round_config(s, i, train_config.preset(sz.train_preset))
    assert strategies.planned_steps(series, strategies.base_config(sz, "m")) > 0


def _steps(series, cfg, names=None):
    return {r.name: strategies.planned_steps([rounds.Series("x", "viggo", (r,))], cfg)
            for s in series for r in s.rounds if names is None or r.name in names}


@pytest.mark.parametrize("preset", ["cpu", "gpu"])  # smoke caps every round at 2 steps
def test_every_comparison_is_at_equal_steps(preset):
    sz = strategies.sizes(presets.get(preset))
    cfg = strategies.base_config(sz, "m")
    groups = strategies.all_series(sz, preset)
    chain, scratch = groups["iterative"]
    per_round = _steps([chain], cfg)
    assert len(set(per_round.values())) == 1  # every gold round the same size
    one = next(iter(per_round.values()))
    for k, steps in zip(sz.scratch_at, _steps([scratch], cfg).values()):
        assert steps == k * one  # from scratch on all rows of rounds 1..k: the steps of rounds 1..k
    assert set(_steps(groups["self_training"], cfg).values()) == {one}  # capped at a gold round's steps
    quality = _steps(groups["quality"], cfg)
    assert len(quality) == len(sz.seeds) * (len(sz.fractions) + 1) and len(set(quality.values())) == 1
    sql_rounds = _steps(groups["sql"], cfg, {"filter-on", "filter-off", "verified"})
    assert len(sql_rounds) == 3 and len(set(sql_rounds.values())) == 1


def test_round_numbers_follow_where_each_round_starts():
    sz = strategies.sizes(presets.CPU)
    groups = strategies.all_series(sz, "cpu")
    assert list(rounds.round_numbers(groups["iterative"][0]).values()) == [1, 2, 3, 4]
    assert list(rounds.round_numbers(groups["self_training"][0]).values()) == [3, 4]  # on from round 2
    assert set(rounds.round_numbers(groups["quality"][0]).values()) == {5}  # side by side, all from round 4
    assert rounds.round_numbers(groups["sql"][0]) == {"gold": 1, "filter-on": 2, "filter-off": 2, "verified": 2}


def test_a_round_can_start_from_another_series_round(runs_root):
    s = Series("later", "viggo", (Round("r", start="earlier/round-2"),))
    cfg = rounds.round_config(s, 0, train_config.preset("smoke"))
    assert cfg.init_from == str(runs.run_dir("earlier", "round-2"))
    with pytest.raises(RuntimeError, match="not a finished run"):  # the other series has not run
        sft.start_spec(cfg)


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu"])
def test_quality_rows_are_rows_no_other_round_uses_and_exist(preset):
    sz = strategies.sizes(presets.get(preset))
    q = strategies.quality(sz, preset)[0].rounds[0].sources[0]
    assert q.offset >= sz.n_rounds * sz.round_n + sz.st_rounds * sz.st_prompts
    assert len(rounds.source_rows(tasks.get(q.task), q)[0]) == sz.quality_n  # the train split holds them all


def test_the_sql_filter_splits_the_rows_in_two():
    off = rounds.source_rows(tasks.SQL, Source("sql"))[0]
    on, info = rounds.source_rows(tasks.SQL, Source("sql", sql_filter=True))
    flagged = rounds.source_rows(tasks.SQL, Source("sql", flagged_only=True))[0]
    assert len(on) + len(flagged) == len(off) and info["dropped_by_filter"] == len(flagged) > 0
    assert all(tasks.SQL.flagged(r) for r in flagged)
    assert not any(tasks.SQL.flagged(r) for r in on)


class Watch(TrainerCallback):
    """Records the weights a round starts from; can stop a round at a given step (an interruption)."""

    def __init__(self, stop_at: dict | None = None):
        self.start_weights, self.stop_at = [], stop_at or {}

    def on_train_begin(self, args, state, control, model=None, **kw):
        self.start_weights.append(model.model.embed_tokens.weight.detach().clone())

    def on_step_end(self, args, state, control, **kw):
        if self.stop_at.get(args.output_dir.split("/")[-2]) == state.global_step:
            raise KeyboardInterrupt("simulated interruption")


def two_rounds(tiny_model_dir) -> tuple[Series, train_config.TrainConfig]:
    base = train_config.preset("smoke", model=str(tiny_model_dir), bf16=False, max_steps=4, n_val=4,
                               epochs=1, eval_steps=2, eval_limit=2)
    series = Series("two", "viggo", (Round("r1", (Source("viggo", n=8),)),
                                      Round("r2", (Source("viggo", n=8, offset=8),),
                                            self_train=SelfTrain(2, offset=16))))
    return series, base


@pytest.mark.slow
def test_round_two_starts_from_round_one_weights_and_resumes(tiny_model_dir, runs_root, one_thread):
    series, base = two_rounds(tiny_model_dir)
    watch = Watch(stop_at={"r2": 3})
    with pytest.raises(KeyboardInterrupt):
        rounds.run_series(series, base, callbacks=[watch])
    r1, r2 = rounds.round_dir(series, "r1"), rounds.round_dir(series, "r2")
    assert runs.is_done(r1) and not runs.is_done(r2) and runs.last_checkpoint(r2) is not None
    r1_final = load_file(str(r1 / "model" / "model.safetensors"))["model.embed_tokens.weight"]
    base_weights = load_file(str(tiny_model_dir / "model.safetensors"))["model.embed_tokens.weight"]
    assert torch.equal(watch.start_weights[1], r1_final)  # round 2 began from round 1's result
    assert not torch.equal(r1_final, base_weights)  # ... which is not the base model
    data_before = (r2 / "round_data.jsonl").read_text()

    again = Watch()
    rounds.run_series(series, base, callbacks=[again])
    assert len(again.start_weights) == 1  # round 1 was skipped, round 2 resumed
    assert io.read_json(r2 / "summary.json")["resumed_from"] == "checkpoint-2"
    assert (r2 / "round_data.jsonl").read_text() == data_before  # no second self-training pass
    info = io.read_json(r2 / "round.json")
    assert info["self_train"]["prompts"] == 2 and 0 <= info["self_train"]["kept"] <= 2
    rows = rounds.table([series])
    assert [r["name"] for r in rows] == ["r1", "r2"] and all(r["n"] == 2 for r in rows)


@pytest.mark.slow
def test_a_round_trains_the_same_in_its_own_process(tiny_model_dir, runs_root):
    series, base = two_rounds(tiny_model_dir)
    here = Series("here", "viggo", series.rounds[:1])
    apart = Series("apart", "viggo", series.rounds[:1])
    rounds.run_series(here, base, fresh_process=False)
    rounds.run_series(apart, base)  # the default: the round trains in a new Python process
    a, b = (load_file(str(rounds.round_dir(s, "r1") / "model" / "model.safetensors")) for s in (here, apart))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name])
    sa, sb = (io.read_json(rounds.round_dir(s, "r1") / "summary.json") for s in (here, apart))
    assert sa["global_step"] == sb["global_step"] == 4 and sb["eval"]["n"] == 2


def test_callbacks_cannot_run_in_a_round_of_its_own_process(tiny_model_dir, runs_root):
    series, base = two_rounds(tiny_model_dir)
    with pytest.raises(ValueError, match="fresh_process=False"):
        rounds.run_round(series, 0, base, callbacks=[Watch()], fresh_process=True)


@pytest.mark.slow
def test_a_run_that_fails_in_its_own_process_says_which(runs_root):
    cfg = train_config.preset("smoke", model=str(runs_root / "no-such-model"), experiment="x", name="broken")
    with pytest.raises(RuntimeError, match="x/broken failed in its own process"):
        train.run_in_fresh_process(cfg)
