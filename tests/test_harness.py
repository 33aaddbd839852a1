"""The evaluation entry point: files, resumption, skipping, the summary's CIs."""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from ftlib import data, harness, io, scorers, tasks


class FakeGenerator:
    """Answers with the gold answer for every other prompt; can fail after some calls."""

    wants_messages = True

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.fail_after = fail_after
        self.gold = {tasks.VIGGO.question(r): r["meaning_representation"]
                     for r in data.load_rows("viggo", "test")}

    def generate(self, prompts_: list, max_new_tokens: int, stop=()) -> list[str]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        return [self.gold[m[-1]["content"]] if i % 2 == 0 else "no idea" for i, m in enumerate(prompts_)]


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(harness, "CHUNK", 4)


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_summary_has_every_metric_with_ci_and_n(tmp_path, small_chunks):
    s = harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=10, out_dir=tmp_path)
    assert set(s["metrics"]) == {"function", "attribute_types", "attribute_order", "exact"}
    m = s["metrics"]["exact"]
    assert m["n"] == 10 and m["mean"] == 0.5 and m["ci_low"] < 0.5 < m["ci_high"]
    assert io.read_json(tmp_path / "summary.json") == s
    rec = lines(tmp_path / "predictions.jsonl")[0]
    assert {"input", "reference", "prediction", "scores"} <= set(rec)


def test_resume_after_interruption_without_duplicates(tmp_path, small_chunks):
    with pytest.raises(KeyboardInterrupt):
        harness.evaluate(FakeGenerator(fail_after=2), "viggo", "test", "zero_shot", limit=10, out_dir=tmp_path)
    assert len(lines(tmp_path / "predictions.jsonl")) == 8 and not (tmp_path / "summary.json").exists()
    with (tmp_path / "predictions.jsonl").open("a") as f:
        f.write('{"idx": 8, "predic')  # a line cut short by the interruption
    gen = FakeGenerator()
    s = harness.evaluate(gen, "viggo", "test", "zero_shot", limit=10, out_dir=tmp_path)
    idx = [r["idx"] for r in lines(tmp_path / "predictions.jsonl")]
    assert sorted(idx) == list(range(10)) and gen.calls == 1 and s["n"] == 10


def test_finished_run_is_skipped(tmp_path, small_chunks):
    harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=6, out_dir=tmp_path)
    gen = FakeGenerator(fail_after=0)  # would raise if asked to generate
    assert harness.evaluate(gen, "viggo", "test", "zero_shot", limit=6, out_dir=tmp_path)["n"] == 6


def test_an_edited_builtin_scorer_rescores_the_stored_predictions(tmp_path, small_chunks, monkeypatch):
    """Predictions scored by an earlier version of a built-in task's scoring code (here: one that
    fails everything) are rescored by the current one, without generating again."""
    import dataclasses

    def earlier(prediction, row):
        return dict.fromkeys(tasks.VIGGO.metrics, False)
    monkeypatch.setitem(tasks._REGISTRY, "viggo", dataclasses.replace(
        tasks.VIGGO, score=earlier, scorer_id=scorers.code_id(earlier, tasks.VIGGO.code)))
    before = harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=6, out_dir=tmp_path)
    assert before["metrics"]["exact"]["mean"] == 0.0
    monkeypatch.setitem(tasks._REGISTRY, "viggo", tasks.VIGGO)  # the code as it is now
    after = harness.evaluate(FakeGenerator(fail_after=0), "viggo", "test", "zero_shot", limit=6, out_dir=tmp_path)
    assert after["scorer"] == tasks.VIGGO.scorer_id != before["scorer"]
    assert after["metrics"]["exact"]["mean"] == 0.5  # every other answer is the gold one
    assert {r["scorer"] for r in lines(tmp_path / "predictions.jsonl")} == {tasks.VIGGO.scorer_id}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_disk_while_writing_predictions_names_the_file_and_keeps_what_was_written(
        tmp_path, small_chunks, monkeypatch):
    """The second chunk's lines go to /dev/full (ENOSPC, as on a full disk): the error names
    predictions.jsonl and what to do; once there is space, the same command finishes the rest."""
    real, appends = Path.open, []

    def open_(path, mode="r", *a, **k):
        if path.name == "predictions.jsonl" and mode == "a":
            appends.append(path)
            if len(appends) == 2:
                return real(Path("/dev/full"), mode, *a, **k)
        return real(path, mode, *a, **k)
    monkeypatch.setattr(Path, "open", open_)
    with pytest.raises(io.WriteError, match=rf"cannot write {tmp_path}/predictions\.jsonl: the disk is full .*"
                                            "then run the same command again"):
        harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=10, out_dir=tmp_path)
    monkeypatch.setattr(Path, "open", real)
    assert [r["idx"] for r in lines(tmp_path / "predictions.jsonl")] == [0, 1, 2, 3]
    gen = FakeGenerator()
    s = harness.evaluate(gen, "viggo", "test", "zero_shot", limit=10, out_dir=tmp_path)
    assert s["n"] == 10 and gen.calls == 2  # the 6 items not written: two chunks
    assert sorted(r["idx"] for r in lines(tmp_path / "predictions.jsonl")) == list(range(10))


def test_other_evaluation_in_folder_is_refused(tmp_path, small_chunks):
    harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=2, out_dir=tmp_path)
    with pytest.raises(ValueError):
        harness.evaluate(FakeGenerator(), "viggo", "test", "few_shot", limit=2, out_dir=tmp_path)


def test_sql_rows_with_unusable_gold_are_left_out_and_counted(tmp_path, monkeypatch, runs_root):
    """The harness scores the prepared split (what training reads): the first 10 usable rows."""
    from ftlib import tasks

    odd_unusable = dataclasses.replace(tasks.SQL, usable=lambda row: row["row_index"] % 2 == 0)
    monkeypatch.setitem(tasks._REGISTRY, "sql", odd_unusable)
    gen = FakeGenerator()
    gen.generate = lambda ps, n, stop=(): ["<SQL>SELECT 1</SQL>"] * len(ps)
    s = harness.evaluate(gen, "sql", "test", "few_shot", limit=10, out_dir=tmp_path)
    raw = data.load_rows("sql", "test")
    evaluated = [json.loads(line)["id"] for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert evaluated == [r["row_index"] for r in raw if r["row_index"] % 2 == 0][:10]
    assert s["n"] == 10 and s["unusable_in_split"] == sum(r["row_index"] % 2 for r in raw)
    judged = round(s["metrics"]["judged"]["mean"] * 10)  # a gold that cannot judge is left out of the headline
    assert 8 <= judged <= 10 and s["metrics"]["execution_match"]["n"] == judged


def test_local_model_end_to_end(tmp_path, tiny_model_dir, one_thread):
    s = harness.evaluate(str(tiny_model_dir), "viggo", "test", "chat", limit=3, out_dir=tmp_path,
                         batch_size=2)
    assert s["n"] == 3 and s["metrics"]["exact"]["n"] == 3 and s["style"] == "chat"
    assert harness.evaluate(str(tiny_model_dir), "viggo", "test", "finetuned", limit=3,
                            out_dir=tmp_path) == s


@pytest.mark.parametrize("limit", [-5, 0])
def test_a_limit_below_one_is_refused(tmp_path, limit, capsys):
    with pytest.raises(ValueError, match=f"limit={limit}: expected an integer >= 1"):
        harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=limit, out_dir=tmp_path / "e")
    with pytest.raises(SystemExit) as e:
        harness.main(["--task", "viggo", "--limit", str(limit), "--out", str(tmp_path / "e")])
    assert e.value.code == 2 and f"--limit {limit}: expected an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("size", ["0", "-5"])
def test_a_batch_size_below_one_is_refused(tmp_path, size, capsys, monkeypatch):
    real, calls = harness.evaluate, []
    monkeypatch.setattr(harness, "evaluate", lambda *a, **k: calls.append(a) or {"metrics": {}})
    with pytest.raises(SystemExit) as e:
        harness.main(["--task", "viggo", "--limit", "2", "--batch-size", size, "--out", str(tmp_path / "e")])
    assert e.value.code == 2 and f"--batch-size {size}: expected an integer >= 1" in capsys.readouterr().err
    assert not calls
    with pytest.raises(ValueError, match=f"batch_size={size}: expected an integer >= 1"):
        real(FakeGenerator(), "viggo", limit=2, out_dir=tmp_path / "e", batch_size=int(size))
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("out, message", [
    ("{tmp}/elsewhere", "--out {tmp}/elsewhere: expected a folder inside the runs folder"),
    ("{runs}/../../x", "--out {runs}/../../x: expected a folder inside the runs folder"),
    ("{runs}/eval/" + "a" * 300, "expected one path component of at most 100 characters"),
])
def test_an_output_folder_outside_runs_is_refused(tmp_path, runs_root, monkeypatch, capsys, out, message):
    """--out names a folder inside the runs folder (FTLIB_RUNS moves that), each part a safe length."""
    monkeypatch.setattr(harness, "evaluate", lambda *a, **k: pytest.fail(f"{out} was accepted"))
    fill = {"tmp": tmp_path, "runs": runs_root}
    with pytest.raises(SystemExit) as e:
        harness.main(["--task", "viggo", "--limit", "2", "--out", out.format(**fill)])
    assert e.value.code == 2 and message.format(**fill) in capsys.readouterr().err


def test_a_second_evaluation_of_a_busy_folder_is_refused(tmp_path, small_chunks):
    """While one process evaluates into a folder (here: holds its lock), another is refused and
    writes nothing there; once it is free the evaluation runs, each item once."""
    import os

    with io.folder_lock(tmp_path, "an evaluation"):
        with pytest.raises(io.FolderBusy, match=f"held by process {os.getpid()}"):
            harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=6, out_dir=tmp_path)
        assert not (tmp_path / "predictions.jsonl").exists()
    harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=6, out_dir=tmp_path)
    assert [r["idx"] for r in lines(tmp_path / "predictions.jsonl")] == list(range(6))


class BudgetGenerator(FakeGenerator):
    """Records the budget it was given; says every other answer hit it."""

    def generate(self, prompts_: list, max_new_tokens: int, stop=()) -> list[str]:
        self.budget = max_new_tokens
        self.truncated = [i % 2 == 1 for i in range(len(prompts_))]
        return super().generate(prompts_, max_new_tokens, stop)


def test_a_token_budget_is_used_recorded_and_never_mixed(tmp_path, small_chunks):
    gen = BudgetGenerator()
    s = harness.evaluate(gen, "viggo", "test", "zero_shot", limit=8, out_dir=tmp_path, max_new_tokens=300)
    assert gen.budget == 300 and s["max_new_tokens"] == 300
    assert s["truncated"] == 0.5
    assert [r["truncated"] for r in lines(tmp_path / "predictions.jsonl")] == [False, True] * 4
    with pytest.raises(ValueError, match="holds an evaluation"):  # another budget: not the same evaluation
        harness.evaluate(BudgetGenerator(), "viggo", "test", "zero_shot", limit=8, out_dir=tmp_path)
    other = BudgetGenerator()
    harness.evaluate(other, "viggo", "test", "zero_shot", limit=8, out_dir=tmp_path / "default")
    assert other.budget == tasks.VIGGO.max_new_tokens
    with pytest.raises(ValueError, match="max_new_tokens"):
        harness.evaluate(BudgetGenerator(), "viggo", "test", "zero_shot", limit=8, out_dir=tmp_path / "x",
                         max_new_tokens=0)


def test_a_backend_that_cannot_tell_leaves_truncated_unknown(tmp_path, small_chunks):
    s = harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=4, out_dir=tmp_path)
    assert s["truncated"] is None and all(r["truncated"] is None for r in lines(tmp_path / "predictions.jsonl"))


class Counting(FakeGenerator):
    """A FakeGenerator that counts the prompts it answers."""

    spec = "FakeGenerator"  # the same model, as the folder's config.json names it

    def __init__(self):
        super().__init__()
        self.prompts = 0

    def generate(self, prompts_, max_new_tokens, stop=()):
        self.prompts += len(prompts_)
        return super().generate(prompts_, max_new_tokens, stop)


@pytest.mark.parametrize("bad", [b'{"idx": 4, "predic\n', b"\xff\xfe garbage\n", b'{"idx": 4, "x": "\\ud800"}\n'])
def test_a_corrupt_line_in_the_middle_of_predictions_costs_only_its_item(tmp_path, small_chunks, capsys, bad):
    """Line 5 of 10 is damaged (cut, not UTF-8, not Unicode): it is named, its item alone is
    generated again, and the 5 good rows after it are kept (they were once dropped silently)."""
    harness.evaluate(FakeGenerator(), "viggo", "test", "zero_shot", limit=10, out_dir=tmp_path)
    (tmp_path / "summary.json").unlink()
    path = tmp_path / "predictions.jsonl"
    raw = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(raw[:4] + [bad] + raw[5:]))
    gen = Counting()
    s = harness.evaluate(gen, "viggo", "test", "zero_shot", limit=10, out_dir=tmp_path)
    assert gen.prompts == 1 and s["n"] == 10
    assert sorted(r["idx"] for r in lines(path)) == list(range(10))
    assert f"{path}:5: " in capsys.readouterr().out
