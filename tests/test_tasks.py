"""Tasks as declarations: the built-in three, and a user's task from JSONL files and a scorer."""

import json
import re

import pytest

from ftlib import harness, prepare, prompts, scorers, tasks, train, train_config
from ftlib.io import DataFormatError

ROWS = [{"prompt": f"What is {a} plus {b}?", "completion": str(a + b)} for a in range(7) for b in range(6)]
SCORER = '''
def score(prediction, reference):
    if "boom" in prediction:
        raise ValueError("cannot read " + prediction)
    return {"same": prediction.strip() == reference, "length": len(prediction) / 10}
'''


def write_task(folder, rows=ROWS, scorer="score.py:score", **extra):
    """A user's task: train/validation/test JSONL, a scorer file and task.json; returns task.json."""
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": rows[:30], "validation": rows[30:36], "test": rows[36:]}
    for split, part in splits.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    (folder / "score.py").write_text(SCORER)
    spec = {"name": "addition", "files": {s: f"{s}.jsonl" for s in splits},
            "instruction": "Add the two numbers.", "scorer": scorer, "max_new_tokens": 8, **extra}
    (folder / "task.json").write_text(json.dumps(spec))
    return folder / "task.json"


class Echo:
    """A generator that answers a fixed text for every prompt."""

    wants_messages = True

    def __init__(self, answers):
        self.answers = answers

    def generate(self, prompts_, max_new_tokens, stop=()):
        return [self.answers(m[-1]["content"]) for m in prompts_]


def test_builtin_tasks_are_declared_once_each():
    assert tasks.names()[:3] == ("viggo", "sql", "gsm8k")
    for t in tasks.BUILTIN:
        assert t.primary in t.metrics and t.title and t.max_new_tokens > 0
        assert tasks.get(t.name) is t
    with pytest.raises(ValueError, match="viggo"):
        tasks.get("nope")


def test_a_builtin_task_scorer_is_identified_by_its_code(tmp_path):
    """scorer_id hashes the score function and the scoring code (its module, ftlib/tasks/sql): an edit to
    that code changes it, and so rescores stored predictions (`harness.score_records`)."""
    ids = {t.name: t.scorer_id for t in tasks.BUILTIN}
    assert all(ids.values()) and len(set(ids.values())) == 3
    assert {"task.py", "match.py", "suite.py"} <= {f.name for f in tasks.SQL.code}
    assert [f.name for f in tasks.VIGGO.code] == ["viggo.py"] and [f.name for f in tasks.GSM8K.code] == ["gsm8k.py"]
    copies = []
    for f in tasks.SQL.code:
        copies.append(tmp_path / f.name)
        copies[-1].write_bytes(f.read_bytes())
    assert scorers.code_id(tasks.SQL.score, copies) == ids["sql"]
    copies[-1].write_text(copies[-1].read_text() + "\n# an edit\n")
    assert scorers.code_id(tasks.SQL.score, copies) != ids["sql"]


def test_a_builtin_scorer_of_a_task_file_is_identified_by_its_code(tmp_path, monkeypatch):
    before = scorers.file_hash("normalized", {}, tmp_path)
    edited = tmp_path / "scorers.py"
    edited.write_text(scorers.SOURCE.read_text() + "\n# an edit\n")
    monkeypatch.setattr(scorers, "SOURCE", edited)
    assert scorers.file_hash("normalized", {}, tmp_path) != before


def test_a_user_task_loads_renders_and_scores_with_its_own_function(tmp_path, runs_root):
    path = write_task(tmp_path / "task")
    t = tasks.get(str(path))
    assert (t.name, t.metrics, t.primary) == ("addition", ("same", "length"), "same")
    row = prepare.load_split(str(path), "test")[0]
    assert row == ROWS[36]
    assert prompts.messages(tasks.get(str(path)), row, "chat") == [
        {"role": "user", "content": f"Add the two numbers.\n\n{row['prompt']}"}]
    assert len(prompts.messages(tasks.get(str(path)), row, "few_shot")) == 2 + 2 * 3  # system, 3 shots, the row
    assert t.score("11", {"completion": "11"}) == {"same": True, "length": 0.2}


def test_chat_rows_and_a_missing_validation_split(tmp_path, runs_root):
    chat = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": r["prompt"]},
                          {"role": "assistant", "content": r["completion"]}]} for r in ROWS]
    path = write_task(tmp_path / "task", rows=chat, scorer="exact")
    spec = json.loads(path.read_text())
    del spec["files"]["validation"]
    path.write_text(json.dumps(spec))
    train_rows, val = (prepare.load_split(str(path), s) for s in ("train", "validation"))
    assert (len(train_rows), len(val)) == (27, 3)  # the last 10 % of train
    assert val[0]["prompt"] == ROWS[27]["prompt"] and val[0]["system"] == "Be brief."
    assert prompts.messages(tasks.get(str(path)), val[0], "chat")[0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("line, expected", [
    ('{"prompt": "a"}', r"rows\.jsonl:2: missing \['completion'\]"),
    ('{"prompt": "a", "completion": ""}', r"rows\.jsonl:2: 'completion' must be a non-empty string"),
    ('{"prompt": "a", "completion": 3}', r"rows\.jsonl:2: 'completion' must be a non-empty string"),
    ("not json", r"rows\.jsonl:2: expected one JSON object per line"),
    ('{"messages": [{"role": "user", "content": "a"}]}', r"rows\.jsonl:2: 'messages' must be"),
    ('{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}',
     r"rows\.jsonl:2: 'messages' must be"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, '
     '{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}', r"rows\.jsonl:2: only one exchange"),
])
def test_bad_rows_say_file_line_and_what_was_expected(tmp_path, line, expected):
    f = tmp_path / "rows.jsonl"
    f.write_text('{"prompt": "ok", "completion": "ok"}\n' + line + "\n")
    with pytest.raises(DataFormatError, match=expected):
        tasks.read_user_rows(f)


@pytest.mark.parametrize("change, expected", [
    ({"scorer": "nope"}, "unknown scorer 'nope'"),
    ({"scorer": "missing.py:score"}, "scorer file missing.py not found"),
    ({"scorer": "score.py:other"}, "defines no function 'other'"),
    ({"scorer": "regex", "scorer_args": {"patern": "x"}}, "scorer_args .* do not fit scorer 'regex'"),
    ({"primary": "nope"}, "primary metric 'nope'"),
    ({"files": {"train": "train.jsonl"}}, "needs a 'test' file"),
    ({"files": {"train": "train.jsonl", "test": "gone.jsonl"}}, "the test file gone.jsonl does not exist"),
    # a name is one safe path component: folders under runs/ are named after it
    ({"name": "../../data/viggo"}, r"task\.json: 'name' must be letters, digits.*got '\.\./\.\./data/viggo'"),
    ({"name": ""}, r"'name' must be letters"), ({"name": "a/b"}, r"'name' must be .*got 'a/b'"),
    ({"name": ".hidden"}, r"'name' must be"), ({"name": 42}, r"'name' must be .*got 42"),
    ({"name": "a" * 300}, r"'name' must be .*at most 100 characters"),
    # types are checked at the door, naming the key
    ({"files": ["train.jsonl"]}, r"task\.json: 'files' must be an object"),
    ({"files": "train.jsonl"}, r"'files' must be an object"),
    ({"max_new_tokens": "abc"}, r"'max_new_tokens' must be a positive integer; got 'abc'"),
    ({"max_new_tokens": -5}, r"'max_new_tokens' must be a positive integer; got -5"),
    ({"few_shot": "three"}, r"'few_shot' must be an integer >= 0"),
    ({"instruction": ["Add", "them"]}, r"'instruction' must be a non-empty string"),
    ({"stop": "END"}, r"'stop' must be a list of non-empty strings"),
    ({"fmt": "xml"}, r"'fmt' must be 'chat' or 'text'"),
])
def test_bad_task_files_are_refused_with_a_reason(tmp_path, change, expected):
    path = write_task(tmp_path / "task")
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises((DataFormatError, ValueError), match=expected):
        tasks.get(str(path))


@pytest.mark.parametrize("content, expected", [
    (b'{"name": "addition",\n "files": }', r"task\.json:2: expected valid JSON"),
    (b'{"name": "addition",\n "instruction": "caf\xe9"}', r"task\.json:2: expected UTF-8 text, got the byte 0xe9"),
    (b'[1, 2]', r"task\.json: expected a JSON object, got list"),
])
def test_unreadable_task_files_name_the_file_and_line(tmp_path, content, expected):
    path = write_task(tmp_path / "task")
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=expected):
        tasks.get(str(path))


def test_a_bad_utf8_byte_in_a_row_names_file_and_line(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_bytes(b'{"prompt": "ok", "completion": "ok"}\n{"prompt": "caf\xe9", "completion": "x"}\n')
    with pytest.raises(DataFormatError, match=r"rows\.jsonl:2: expected UTF-8 text, got the byte 0xe9"):
        tasks.read_user_rows(f)


def test_a_traversing_task_name_writes_nothing_outside_runs(tmp_path, runs_root):
    path = write_task(tmp_path / "task", name="../../data/viggo")
    with pytest.raises(DataFormatError, match="'name' must be"):
        prepare.prepare(str(path))
    assert not (runs_root.parent / "data").exists() and not runs_root.exists()


def test_a_raising_scorer_is_reported_not_fatal(tmp_path, runs_root, capsys):
    path = write_task(tmp_path / "task")
    t = tasks.get(str(path))
    answer = {r["prompt"]: r["completion"] for r in ROWS}
    gen = Echo(lambda p: "boom" if p.endswith(("plus 0?", "plus 1?")) else answer[p.split("\n\n")[-1]])
    s = harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    test_rows = prepare.load_split(str(path), "test")
    booms = sum(r["prompt"].endswith(("plus 0?", "plus 1?")) for r in test_rows)
    assert booms and s["scorer_errors"] == booms and s["n"] == len(test_rows)
    assert s["metrics"]["same"]["mean"] == pytest.approx((len(test_rows) - booms) / len(test_rows))
    lines = [json.loads(x) for x in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert sum(r.get("scorer_error", "").startswith("ValueError: cannot read boom") for r in lines) == booms
    assert "the scorer raised on" in capsys.readouterr().out
    assert s["task"] == str(path) and t.name == "addition"


def _answers():
    answer = {r["prompt"]: r["completion"] for r in ROWS}
    return Echo(lambda p: answer[p.split("\n\n")[-1]])


def _scorer(body):
    """A score.py whose score(prediction, reference) declares metric 'same' and runs `body` for
    item "6 plus 1" (every other item scores normally)."""
    return ("import math, sys\n"
            "def score(prediction, reference):\n"
            "    if prediction == '7' and reference == '7':\n"
            f"        {body}\n"
            "    return {'same': prediction.strip() == reference}\n")


@pytest.mark.parametrize("body, error", [
    ("while True: pass", "timeout: no result within 1 s"),
    ("sys.exit(3)", "SystemExit: 3"),
    ("return {'same': 'yes'}", "metric 'same' is 'yes'; expected a bool or a finite number"),
    ("return {'same': None}", "metric 'same' is None; expected"),
    ("return {'same': 10 ** 400}", "metric 'same' is 1000"),
    ("return {'same': math.nan}", "metric 'same' is nan; expected"),
    ("return 'yes'", "returned str 'yes'; expected a dict"),
])
def test_a_hostile_scorer_costs_its_item_not_the_evaluation(tmp_path, runs_root, monkeypatch, capsys, body, error):
    monkeypatch.setattr(harness, "SCORE_TIMEOUT_S", 1.0)
    path = write_task(tmp_path / "task", metrics=["same"])
    (tmp_path / "task" / "score.py").write_text(_scorer(body))
    s = harness.evaluate(_answers(), str(path), "test", "chat", out_dir=tmp_path / "eval")
    lines = [json.loads(x) for x in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert s["n"] == len(lines) == len(ROWS) - 36 and s["scorer_errors"] == 1  # every prediction kept
    bad = [r for r in lines if "scorer_error" in r]
    assert bad[0]["prediction"] == "7" and bad[0]["scorer_error"].startswith(error)
    assert bad[0]["scores"] == {"same": False}
    assert s["metrics"]["same"]["mean"] == pytest.approx((s["n"] - 1) / s["n"])  # finite, not nan
    assert f"first on item {bad[0]['idx']}: {error}" in capsys.readouterr().out


def test_a_scorer_that_hangs_on_the_probe_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(scorers, "PROBE_TIMEOUT_S", 0.5)
    path = write_task(tmp_path / "task")
    (tmp_path / "task" / "score.py").write_text("def score(p, r):\n    while True: pass\n")
    with pytest.raises(DataFormatError, match=r"task\.json: the scorer failed on a probe \(timeout"):
        tasks.get(str(path))


def test_a_changed_scorer_rescores_the_stored_predictions(tmp_path, runs_root):
    path = write_task(tmp_path / "task", metrics=["same"])
    (tmp_path / "task" / "score.py").write_text(_scorer("return {'same': 'yes'}"))
    gen = _answers()
    first = harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    assert first["scorer_errors"] == 1
    (tmp_path / "task" / "score.py").write_text(_scorer("return {'same': True}"))  # fixed

    def no_generation(*a, **k):
        raise AssertionError("the stored predictions must be rescored, not generated again")
    gen.generate = no_generation
    fixed = harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    assert fixed["scorer_errors"] == 0 and fixed["metrics"]["same"]["mean"] == 1.0
    assert fixed["scorer"] != first["scorer"]
    lines = (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == fixed["n"] and all(json.loads(x)["scorer"] == fixed["scorer"] for x in lines)


def test_a_prompt_over_the_context_is_refused_before_generation(tmp_path, tiny_model_dir, runs_root, one_thread):
    from ftlib.backends.local import LocalGenerator

    rows = ROWS[:36] + [{"prompt": "plus " * 2100, "completion": "0"}] + ROWS[37:]  # test item 0: ~2100 tokens
    path = write_task(tmp_path / "task", rows=rows)
    gen = LocalGenerator.from_spec(str(tiny_model_dir))  # a context of 2048 tokens
    calls = []
    gen.generate = lambda *a, **k: calls.append(a) or []
    with pytest.raises(ValueError, match=r"item 0: its prompt is \d+ tokens and its answer may take 8, over the "
                                         r"model's context of 2048 tokens"):
        harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    assert not calls and not (tmp_path / "eval" / "predictions.jsonl").exists()


def test_changed_files_are_prepared_again(tmp_path, runs_root):
    path = write_task(tmp_path / "task")
    assert len(prepare.load_split(str(path), "test")) == len(ROWS) - 36
    write_task(tmp_path / "task", rows=ROWS[:40])
    assert len(prepare.load_split(str(path), "test")) == 4


def test_a_user_task_trains_and_is_scored_by_its_scorer(tmp_path, tiny_model_dir, runs_root):
    path = write_task(tmp_path / "task")
    cfg = train_config.preset("smoke", task=str(path), model=str(tiny_model_dir), bf16=False, experiment="mine",
                              max_steps=2, n_train=8, n_val=2, eval_limit=3)
    folder = train.run(cfg)
    assert folder.name == "addition-full-smoke"
    s = json.loads((folder / "eval" / "summary.json").read_text())
    assert s["n"] == 3 and set(s["metrics"]) == {"same", "length"} and s["primary"] == "same"
    assert json.loads((folder / "data.json").read_text())["n_train"] == 8


@pytest.mark.parametrize("name, args, pred, ref, expected", [
    ("exact", {}, " yes ", "yes", {"exact": True}),
    ("exact", {}, "Yes", "yes", {"exact": False}),
    ("normalized", {}, "The  END!", "the end", {"normalized": True}),
    ("number", {}, "it is 1,000.0 in all", "1000", {"number": True}),
    ("number", {}, "no number", "3", {"number": False}),
    ("json_fields", {}, '{"a": 1, "b": [2]}', '{"b": [2], "a": 1}', {"valid_json": True, "fields": True}),
    ("json_fields", {"fields": ["a"]}, '{"a": 2}', '{"a": 1}', {"valid_json": True, "fields": False}),
    ("json_fields", {}, "not json", '{"a": 1}', {"valid_json": False, "fields": False}),
    ("json_fields", {}, "[1]", '{"a": 1}', {"valid_json": False, "fields": False}),
    ("regex", {"pattern": r"\(([A-D])\)"}, "I pick (B).", "(B)", {"regex": True, "found": True}),
    ("regex", {"pattern": r"\(([A-D])\)"}, "B", "(B)", {"regex": False, "found": False}),
])
def test_builtin_scorers(tmp_path, name, args, pred, ref, expected):
    score, metrics = scorers.build(name, args, tmp_path)
    assert score(pred, ref) == expected and tuple(expected) == metrics


def test_viggo_voice_files_are_what_the_script_makes_and_gold_passes_its_scorer():
    import runpy

    from ftlib import evals, paths

    script = runpy.run_path(str(paths.ROOT / "scripts" / "make_viggo_voice.py"))
    made = script["train_rows"]()
    shipped = [json.loads(x) for x in (paths.ROOT / "data/viggo_voice/train.jsonl").read_text().splitlines()]
    assert made == shipped
    acts = [r["prompt"].split("(")[0] for r in shipped[:9]]
    assert acts == list(tasks.viggo.VIGGO_FUNCTIONS)  # the few-shot prompt shows every dialogue act once
    t = tasks.get("data/viggo_voice/task.json")
    gold = evals.summarize([t.score(r["completion"], r) for r in prepare.load_split(t, "validation")])
    assert gold["voice"]["mean"] > 0.98 and gold["all_slots"]["mean"] > 0.97  # the scorer's docstring
    assert t.score("Sure, here it is: " + shipped[0]["completion"], shipped[0])["voice"] is False
    assert t.score("A game.", shipped[0])["slots"] < 0.2


def test_response_time_is_measured_once_per_condition(tmp_path, tiny_model_dir, runs_root):
    from ftlib import latency

    path = write_task(tmp_path / "task")
    out = tmp_path / "latency.json"
    r = latency.measure(str(tiny_model_dir), str(path), "few_shot", limit=4, latency_items=2, out=out)
    assert r["n"] == 4 and r["latency_items"] == 2 and r["latency_ci_low"] <= r["latency_s"] <= r["latency_ci_high"]
    assert 0 < r["new_tokens"] <= tasks.get(str(path)).max_new_tokens
    assert r["answers_per_s"] > 0 and r["cpu_kind"] in ("AMX", "AVX-512-BF16", "AVX2", "other")
    assert r["matmul_gflops"] > 0 and r["matmul_dtype"] in ("bfloat16", "float32")  # the CPU's speed, named
    short = latency.measure(str(tiny_model_dir), str(path), "chat", limit=4, latency_items=2, fresh_process=False)
    assert set(short) == set(r)  # the same figures in this process as in a fresh one
    assert r["prompt_tokens"] > short["prompt_tokens"]  # three worked examples cost tokens
    out.write_text(json.dumps({**r, "latency_s": -1}))
    assert latency.measure(str(tiny_model_dir), str(path), "few_shot", out=out)["latency_s"] == -1  # read back


def test_a_plan_runs_and_reports_a_user_task(tmp_path, tiny_model_dir, runs_root):
    import dataclasses

    from ftlib import presets, report, reproduce

    path = str(write_task(tmp_path / "task"))
    mine = dataclasses.replace(presets.SMOKE, name="mine", plan=presets.Plan(
        "mine", "smoke", tasks=(path,), eval_limit={path: 2},
        train_overrides={path: dict(max_steps=1, n_train=4, n_val=2, bf16=False)}))
    model = str(tiny_model_dir)
    reproduce.compute(mine, path, model)
    found = report.evaluations(mine, model)
    assert sorted(label for _, label in found) == ["fine-tuned", "untuned-few_shot", "untuned-zero_shot"]
    rows = report.numeric_rows(report.score_rows(found))
    assert {r["metric"] for r in rows} == {"same"} and all(r["n"] == 2 for r in rows)
    assert report.error_kinds(path, report.predictions(found[(path, "fine-tuned")])).total() == 2


def _docs_example_task(tmp_path):
    """The module docs/tasks.md shows as a new built-in task, imported from where the test wrote it."""
    import importlib.util
    import re

    from ftlib import paths

    code = re.search(r"```python\n(.*?)```", (paths.ROOT / "docs" / "tasks.md").read_text(), re.S).group(1)
    (tmp_path / "reverse.py").write_text(code)
    spec = importlib.util.spec_from_file_location("reverse_task", tmp_path / "reverse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Reverser:
    """A generator that reverses the word of each prompt: right on every item."""

    wants_messages = True

    def generate(self, prompts_: list, max_new_tokens: int, stop=()) -> list[str]:
        return [m[-1]["content"].split("Word: ")[-1][::-1] for m in prompts_]


def test_a_new_builtin_task_is_one_module_and_one_registry_line(tmp_path, runs_root, monkeypatch):
    """docs/tasks.md's worked example: its module, registered (the registry line), goes through the
    generic pipeline (prompts, prepared splits, harness, report, rescoring) and no stage names it."""
    from ftlib import report
    from ftlib.experiments import sweep

    module = _docs_example_task(tmp_path)
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))  # this test's registry only
    t = tasks.register(module.TASK)
    assert tasks.get("reverse") is t and "reverse" in tasks.names() and t.scorer_id
    msgs = prompts.messages(t, t.load("test")[0], "few_shot")
    assert [m["content"] for m in msgs[1:5]] == ["Word: lora", "arol", "Word: token", "nekot"]
    assert msgs[-1]["content"] == "Word: model"
    assert prepare.load_split(t, "test") == t.load("test") and prepare.read_stats(t)["test"]["kept"] == 2
    summary = harness.evaluate(Reverser(), "reverse", "test", "chat", out_dir=tmp_path / "eval")
    assert summary["primary"] == "exact" and summary["metrics"]["exact"]["mean"] == 1.0 and summary["n"] == 2
    records = report.predictions(tmp_path / "eval")
    assert report.error_kinds(t, records) == {"correct": 2}
    assert [t.score(r["prediction"], t.record_row(r)) for r in records] == [r["scores"] for r in records]
    with pytest.raises(ValueError, match="no sweep grid"):
        sweep.grid("reverse")


def test_the_pipeline_calls_a_tasks_hooks_and_names_no_task(tmp_path, runs_root, monkeypatch):
    """prepare's audit and filter, the rounds' corruption and extra metrics come from the Task's hooks:
    the toy task of docs/tasks.md with hooks of its own gets them, without a stage knowing its name."""
    import dataclasses

    from ftlib.experiments import rounds

    t = dataclasses.replace(
        _docs_example_task(tmp_path).TASK, name="reverse_hooked",
        audit=lambda rows: {"rows": len(rows)}, flagged=lambda r: r["word"] == "model",
        corrupt=lambda rows, fraction, seed: [{**r, "reversed": "x", "corrupted": True} for r in rows],
        rounds_metrics=("exact",))
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))
    tasks.register(t)
    prepare.prepare(t, sql_filter_varchar_numbers=True)
    stats = prepare.read_stats(t)
    assert stats["test"]["audit"] == {"rows": 2} and stats["test"]["kept"] == 1  # "model" flagged and dropped
    rows, info = rounds.source_rows(t, rounds.Source(t.name, split="train", corrupt=0.5))
    assert info["corrupted"] == 4 and {r["reversed"] for r in rows} == {"x"}
    rows, _ = rounds.source_rows(t, rounds.Source(t.name, split="validation", flagged_only=True))
    assert rows == []  # nothing flagged in validation
    summary = {"metrics": {"exact": {"mean": 0.5, "ci_low": 0.2, "ci_high": 0.8, "n": 4}}}
    row = rounds._score_row("s", 1, "r", summary, t)
    assert (row["score"], row["score_ci_low"], row["exact"], row["exact_ci_high"], row["n"]) == (0.5, 0.2, 0.5, 0.8, 4)
    plain = tasks.register(dataclasses.replace(t, name="reverse_plain", corrupt=None))
    with pytest.raises(ValueError, match="corrupt"):  # a task without the hook: the stage says so
        rounds.source_rows(plain, rounds.Source(plain.name, corrupt=0.5))


@pytest.mark.parametrize("metrics", [["ok"], None])
def test_a_scorers_text_beside_its_metrics_is_kept_not_summarized(tmp_path, runs_root, metrics):
    """A scorer returning {"ok": 1, "why": "some text"}: the text stays in predictions.jsonl, the
    summary holds the metric (it once failed on float("some text"), on every rerun)."""
    path = write_task(tmp_path / "task", **({"metrics": metrics} if metrics else {}))
    (tmp_path / "task" / "score.py").write_text(
        "def score(prediction, reference):\n"
        "    return {'ok': int(prediction.strip() == reference), 'why': 'compared ' + prediction}\n")
    assert tasks.get(str(path)).metrics == ("ok",)
    s = harness.evaluate(_answers(), str(path), "test", "chat", out_dir=tmp_path / "eval")
    assert s["metrics"]["ok"]["mean"] == 1.0 and set(s["metrics"]) == {"ok"} and s["scorer_errors"] == 0
    lines = [json.loads(x) for x in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert all(r["scores"]["why"] == "compared " + r["prediction"] for r in lines)


@pytest.mark.parametrize("top, error", [
    ("while True: pass", r"task\.json: loading score\.py did not finish within 1 s"),
    ("raise RuntimeError('no config here')", r"task\.json: loading score\.py failed: RuntimeError: no config here"),
])
def test_loading_a_scorer_file_is_bounded_like_scoring(tmp_path, top, error):
    """A score.py that loops (or raises) at its top level fails with one line naming it, within the
    bound, instead of hanging the harness at import with no output."""
    import subprocess
    import sys
    import time

    path = write_task(tmp_path / "task")
    (tmp_path / "task" / "score.py").write_text(f"{top}\n\ndef score(p, r):\n    return {{'same': p == r}}\n")
    code = ("import sys; from ftlib import scorers, tasks; scorers.LOAD_TIMEOUT_S = 1.0\n"
            "try:\n    tasks.get(sys.argv[1])\nexcept tasks.user.DataFormatError as e:\n    sys.exit(f'error: {e}')")
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and time.monotonic() - t0 < 30
    assert re.search(error, done.stderr), done.stderr


def _edit_test_rows(folder, change):
    """Rewrite a task's test.jsonl with `change(row)` applied to every row."""
    path = folder / "test.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(change(r)) + "\n" for r in rows))


@pytest.mark.parametrize("drop_summary", [False, True])
def test_edited_references_are_rescored_not_reused(tmp_path, runs_root, capsys, drop_summary):
    """An evaluation, then the test references edited (here: every one made wrong), then the same
    command into the same folder: the new references and their scores, not the old ones, with or
    without summary.json; the predictions are rescored, not generated again, and that is said."""
    path = write_task(tmp_path / "task", metrics=["same"])
    (tmp_path / "task" / "score.py").write_text(_scorer("pass"))
    gen = _answers()
    first = harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    assert first["metrics"]["same"]["mean"] == 1.0
    _edit_test_rows(tmp_path / "task", lambda r: {**r, "completion": r["completion"] + "0"})
    if drop_summary:
        (tmp_path / "eval" / "summary.json").unlink()
    gen.generate = lambda *a, **k: pytest.fail("only the references changed: rescore, do not generate")
    again = harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    assert again["metrics"]["same"]["mean"] == 0.0 and again["sources"]["rows"] != first["sources"]["rows"]
    lines = [json.loads(x) for x in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert all(r["reference"].endswith("0") and r["scores"] == {"same": False} for r in lines)
    assert f"{len(lines)} items' rows changed since they were scored: rescoring them" in capsys.readouterr().out


def test_an_edited_input_or_prompt_regenerates_just_those_items(tmp_path, runs_root, capsys):
    path = write_task(tmp_path / "task", metrics=["same"])
    gen = _answers()
    harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    asked = []
    real = gen.generate
    gen.generate = lambda ps, *a, **k: asked.extend(ps) or real(ps, *a, **k)
    _edit_test_rows(tmp_path / "task", lambda r: {**r, "prompt": r["prompt"].replace("6 plus 1", "2 plus 5")})
    s = harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    assert [m[-1]["content"].split("\n\n")[-1] for m in asked] == ["What is 2 plus 5?"]
    assert "1 items' prompts changed since they were generated: generating them again" in capsys.readouterr().out
    assert s["n"] == len(ROWS) - 36 and s["metrics"]["same"]["mean"] == 1.0
    spec = json.loads(path.read_text())
    path.write_text(json.dumps({**spec, "instruction": "Add them up."}))  # every prompt changes
    asked.clear()
    harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    assert len(asked) == len(ROWS) - 36


def test_predictions_from_before_the_hashes_are_kept_when_their_rows_match(tmp_path, runs_root):
    """A folder written before items carried hashes: items whose stored input and reference match the
    rows are kept (no generation); one whose reference differs is rescored."""
    path = write_task(tmp_path / "task", metrics=["same"])
    gen = _answers()
    harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    pred = tmp_path / "eval" / "predictions.jsonl"
    old = [{k: v for k, v in json.loads(x).items() if k not in ("row_sha", "prompt_sha")}
           for x in pred.read_text().splitlines()]
    old[0]["reference"] = "stale"
    pred.write_text("".join(json.dumps(r) + "\n" for r in old))
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    summary.pop("sources")
    (tmp_path / "eval" / "summary.json").write_text(json.dumps(summary))
    gen.generate = lambda *a, **k: pytest.fail("the stored predictions match their rows")
    s = harness.evaluate(gen, str(path), "test", "chat", out_dir=tmp_path / "eval")
    assert s["metrics"]["same"]["mean"] == 1.0 and "sources" in s
    assert all("row_sha" in json.loads(x) for x in pred.read_text().splitlines())
    assert json.loads(pred.read_text().splitlines()[0])["reference"] != "stale"
