"""The OpenAI-compatible backend (ftlib.backends.api, on the `openai` client) against a fake endpoint
on 127.0.0.1 (tests/fault_server.py): answers, retries on 429 / 5xx / timeouts, the disk cache, the
concurrency bound. tests/test_serve.py runs it against a real serving engine.
"""

import socket
import time

import pytest
from fault_server import FakeEndpoint

from ftlib import harness, models
from ftlib.backends import api

PROMPTS = [
    [{"role": "user", "content": "Convert: Dirt: Showdown is a driving game."}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is 2+2?"}],
    "a plain string is sent as one user message",
]


def _generator(url: str, tmp_path, **overrides) -> api.ChatGenerator:
    """A client of the endpoint at `url`, caching under tmp_path."""
    settings = {"concurrency": 2, "timeout": 30.0, "max_retries": 3, **overrides}
    return api.ChatGenerator(api.ApiConfig(model="fake", base_url=url, **settings), cache_dir=tmp_path / "cache")


def test_answers_in_order_greedy_with_the_length_limit(tmp_path):
    with FakeEndpoint() as ep:
        answers = _generator(ep.url, tmp_path, api_key="sk-test").generate(PROMPTS, 5, [])
    assert answers == ["echo: Convert: Dirt: Showdown is", "echo: What is 2+2?",
                       "echo: a plain string is"]
    body = next(b for b in ep.bodies if b["messages"] == PROMPTS[1])
    assert body == {"model": "fake", "messages": PROMPTS[1], "temperature": 0, "max_tokens": 5}
    assert {"role": "user", "content": PROMPTS[2]} in [b["messages"][0] for b in ep.bodies]
    assert ep.auth == ["Bearer sk-test"] * 3


def test_stop_strings_cut_the_answer_even_if_the_server_ignores_them(tmp_path):
    stop = ["<1>", "<2>", "<3>", "<4>", " is "]  # OpenAI takes 4: the client cuts at the fifth itself
    with FakeEndpoint() as ep:
        [answer] = _generator(ep.url, tmp_path).generate(["the sky is blue"], 10, stop)
    assert answer == "echo: the sky"
    assert ep.bodies[0]["stop"] == stop[:4]


def test_reasoning_models_get_max_completion_tokens(tmp_path):
    with FakeEndpoint() as ep:
        _generator(ep.url, tmp_path, token_param="max_completion_tokens").generate(["hi"], 3, [])
    assert ep.bodies[0]["max_completion_tokens"] == 3 and "max_tokens" not in ep.bodies[0]


def test_429_is_retried_and_retry_after_honoured(tmp_path):
    with FakeEndpoint(faults=[{"status": 429, "retry_after": "1"}] * 2) as ep:
        gen = _generator(ep.url, tmp_path)
        start = time.monotonic()
        [answer] = gen.generate(PROMPTS[:1], 4, [])
    assert time.monotonic() - start >= 2.0  # two waits of Retry-After: 1 s, not the client's 0.5 s
    assert answer and gen.stats.retries == 2 and ep.requests == 3


def test_server_error_is_retried_then_succeeds(tmp_path):
    with FakeEndpoint(faults=[{"status": 500}]) as ep:
        gen = _generator(ep.url, tmp_path)
        assert gen.generate(PROMPTS[:1], 4, [])[0]
    assert gen.stats.retries == 1 and ep.requests == 2


def test_persistent_server_error_fails_cleanly_and_caches_nothing(tmp_path):
    with FakeEndpoint(always={"status": 503}) as ep:
        gen = _generator(ep.url, tmp_path, max_retries=2)
        with pytest.raises(api.ApiError, match="1 of 1 requests failed; first: HTTP 503"):
            gen.generate(PROMPTS[:1], 4, [])
    assert ep.requests == 3 and gen.stats.failed == 1
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_client_error_is_not_retried(tmp_path):
    with FakeEndpoint(always={"status": 400}) as ep:
        gen = _generator(ep.url, tmp_path)
        with pytest.raises(api.ApiError, match="HTTP 400"):
            gen.generate(PROMPTS[:1], 4, [])
    assert ep.requests == 1


def test_timeout_is_retried_then_succeeds(tmp_path):
    with FakeEndpoint(faults=[{"sleep": 2}]) as ep:
        gen = _generator(ep.url, tmp_path, timeout=0.5)
        assert gen.generate(PROMPTS[:1], 4, [])[0]
    assert gen.stats.retries == 1 and ep.requests == 2


def test_persistent_timeout_fails_cleanly(tmp_path):
    with FakeEndpoint(always={"sleep": 1}) as ep:
        gen = _generator(ep.url, tmp_path, timeout=0.2, max_retries=1)
        with pytest.raises(api.ApiError, match="timed out after 0.2s"):
            gen.generate(PROMPTS[:1], 4, [])
    assert ep.requests == 2


def test_an_answer_without_choices_is_an_error_and_not_cached(tmp_path):
    with FakeEndpoint(always={"body": {"id": "x", "object": "chat.completion", "choices": []}}) as ep:
        with pytest.raises(api.ApiError, match="no choices in the response"):
            _generator(ep.url, tmp_path).generate(PROMPTS[:1], 4, [])
    assert ep.requests == 1 and not list((tmp_path / "cache").rglob("*.json"))


def test_refused_connection_fails_cleanly(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = _generator(f"http://127.0.0.1:{port}/v1", tmp_path, max_retries=1)
    with pytest.raises(api.ApiError, match="connection failed"):
        gen.generate(PROMPTS[:1], 4, [])


def test_answers_that_arrived_are_cached_when_others_fail(tmp_path):
    with FakeEndpoint(faults=[{}, {"status": 400}, {}]) as ep:  # one at a time: the 2nd prompt fails
        with pytest.raises(api.ApiError, match="1 of 3 requests failed"):
            _generator(ep.url, tmp_path, concurrency=1).generate(PROMPTS, 6, [])
        again = _generator(ep.url, tmp_path)
        assert len(again.generate(PROMPTS, 6, [])) == 3
    assert ep.requests == 4 and again.stats.cache_hits == 2 and again.stats.sent == 1


def test_rerun_is_served_from_the_cache(tmp_path):
    with FakeEndpoint() as ep:
        first = _generator(ep.url, tmp_path).generate(PROMPTS, 6, [])
        again = _generator(ep.url, tmp_path)  # a new process would see the same files
        assert again.generate(PROMPTS, 6, []) == first
        assert ep.requests == 3 and again.stats.sent == 0 and again.stats.cache_hits == 3
        again.generate(PROMPTS[:1], 5, [])  # other parameters: another key
    assert ep.requests == 4


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_is_bounded(tmp_path, concurrency):
    with FakeEndpoint(always={"sleep": 0.3}) as ep:
        gen = _generator(ep.url, tmp_path, concurrency=concurrency)
        assert len(gen.generate([f"question {i}" for i in range(6)], 2, [])) == 6
    assert ep.max_in_flight == concurrency  # reached, never exceeded


def test_harness_evaluates_through_the_api(tmp_path):
    """The evaluation entry point with the API backend: chat messages in, scored predictions out."""
    with FakeEndpoint() as ep:
        gen = _generator(ep.url, tmp_path)
        summary = harness.evaluate(gen, "viggo", "test", "few_shot", limit=3, out_dir=tmp_path / "run")
    assert summary["n"] == 3 and "function" in summary["metrics"]
    assert gen.stats.sent == 3 and gen.stats.new_tokens > 0 and summary["tokens_per_s_this_session"] > 0
    assert ep.bodies[0]["messages"][0]["role"] == "system" and len(ep.bodies[0]["messages"]) > 2
    assert len((tmp_path / "run" / "predictions.jsonl").read_text().splitlines()) == 3


def test_config_from_env_and_dotenv(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nOPENAI_BASE_URL=http://file/v1\nexport OPENAI_API_KEY='sk-file'\n"
                        "FTLIB_API_MODEL=from-file\nFTLIB_API_CONCURRENCY=7\n")
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "FTLIB_API_MODEL", "FTLIB_API_CONCURRENCY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env/v1")  # the environment wins over the file
    cfg = api.config_from_env(env_file=env_file, timeout=5.0)
    assert (cfg.base_url, cfg.api_key, cfg.model, cfg.concurrency, cfg.timeout) == (
        "http://env/v1", "sk-file", "from-file", 7, 5.0)
    assert "sk-file" not in repr(cfg)
    with pytest.raises(api.ApiError, match="FTLIB_API_MODEL"):
        api.config_from_env(env_file=tmp_path / "missing.env")


def test_cache_key_depends_on_everything_that_decides_the_answer():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0, "max_tokens": 4}
    key = api.ResponseCache.key("http://a/v1", body)
    assert key == api.ResponseCache.key("http://a/v1/", dict(reversed(body.items())))
    assert key != api.ResponseCache.key("http://b/v1", body)
    assert key != api.ResponseCache.key("http://a/v1", {**body, "model": "n"})
    assert key != api.ResponseCache.key("http://a/v1", {**body, "max_tokens": 5})


def test_api_model_spec(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    gen = api.from_spec("api:some-model", max_retries=0)
    assert (gen.name, gen.config.model, gen.config.base_url) == ("api:some-model", "some-model", "http://127.0.0.1:9/v1")
    assert api.is_api_spec("api:some-model") and not api.is_api_spec(models.DEFAULT_MODEL)
    with pytest.raises(ValueError, match="not an API model spec"):
        api.from_spec("gpt-4o")
