"""The OpenAI-compatible client (ftlib.backends.api) against our own server (ftlib.backends.serve), both for real,
on 127.0.0.1: answers, retries on 429 / 5xx / timeouts, the disk cache, the concurrency bound.

Faults are injected per request with the server's `X-Ftlib-Fault` header (see ftlib/backends/serve.py).
"""

import json
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest
import torch

from ftlib import models, paths
from ftlib.backends import api, cut_at_stop, serve

STARTUP_S = 120  # importing torch + transformers on a busy 2-core machine


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    """`python -m ftlib.serve` on a free loopback port, serving the tiny model; stopped after the module."""
    cmd = [sys.executable, "-u", "-m", "ftlib.backends.serve", "--model", str(tiny_model_dir), "--name", "tiny",
           "--port", "0", "--dtype", "float32"]
    proc = subprocess.Popen(cmd, cwd=paths.ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield f"http://127.0.0.1:{_wait_for_port(proc)}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_for_port(proc: subprocess.Popen) -> int:
    """Read the server's ready line ("... on http://127.0.0.1:PORT/v1") within STARTUP_S."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        line = proc.stdout.readline() if ready else ""
        if line.startswith("ftlib.serve:"):
            return int(line.rsplit(":", 1)[1].split("/")[0])
    raise RuntimeError(f"server did not start (exit code {proc.poll()})")


def _stats(base_url: str, reset: bool = False) -> dict:
    root = base_url.removesuffix("/v1")
    req = urllib.request.Request(root + ("/_ftlib/stats/reset" if reset else "/_ftlib/stats"),
                                 method="POST" if reset else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _reset_when_idle(base_url: str, wait_s: float = 10.0) -> None:
    """Zero the server's counters once earlier tests' abandoned (sleeping) requests are done."""
    deadline = time.monotonic() + wait_s
    while _stats(base_url)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.1)
    _stats(base_url, reset=True)


def _generator(base_url, tmp_path, fault: str | None = None, **overrides) -> api.ChatGenerator:
    """A client with fast backoff; `fault` is sent as X-Ftlib-Fault, made unique per call."""
    headers = {"X-Ftlib-Fault": f"{fault},id={uuid.uuid4().hex}"} if fault else {}
    settings = {"concurrency": 2, "timeout": 30.0, "max_retries": 3, "backoff": 0.01, **overrides}
    cfg = api.ApiConfig(model="tiny", base_url=base_url, headers=headers, **settings)
    return api.ChatGenerator(cfg, cache_dir=tmp_path / "api-cache")


PROMPTS = [
    [{"role": "user", "content": "Convert: Dirt: Showdown is a driving game."}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is 2+2?"}],
    "a plain string is sent as one user message",
]


def _local_greedy(model_dir, prompt, max_new_tokens: int) -> str:
    """What the tiny model itself says, greedily, with the chat template: the server must agree."""
    model, tok = models.load(str(model_dir), dtype="float32")
    enc = tok.apply_chat_template(api.as_messages(prompt), add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_models_endpoint_lists_the_served_model(server):
    with urllib.request.urlopen(server + "/models", timeout=10) as resp:
        assert [m["id"] for m in json.loads(resp.read())["data"]] == ["tiny"]


def test_answers_match_local_greedy_generation(server, tiny_model_dir, tmp_path):
    answers = _generator(server, tmp_path).generate(PROMPTS, max_new_tokens=8, stop=[])
    assert answers == [_local_greedy(tiny_model_dir, p, 8) for p in PROMPTS]
    assert all(answers)  # a random model still says something


def test_stop_strings_cut_the_answer(server, tiny_model_dir, tmp_path):
    full = _local_greedy(tiny_model_dir, PROMPTS[0], 12)
    stop = full[len(full) // 2:len(full) // 2 + 3]
    assert stop.strip(), f"pick another prompt: no usable stop string in {full!r}"
    [answer] = _generator(server, tmp_path).generate(PROMPTS[:1], max_new_tokens=12, stop=[stop])
    assert answer == full[:full.find(stop)]


def test_429_is_retried_and_retry_after_honoured(server, tmp_path):
    _reset_when_idle(server)
    gen = _generator(server, tmp_path, fault="status=429,retry_after=1,times=2")
    start = time.monotonic()
    [answer] = gen.generate(PROMPTS[:1], max_new_tokens=4, stop=[])
    assert time.monotonic() - start >= 2.0  # two waits of Retry-After: 1 s, not the 0.01 s backoff
    assert answer and gen.stats.retries == 2
    assert _stats(server)["requests"] == 3


def test_server_error_is_retried_then_succeeds(server, tmp_path):
    gen = _generator(server, tmp_path, fault="status=500,times=1")
    assert gen.generate(PROMPTS[:1], max_new_tokens=4, stop=[])[0]
    assert gen.stats.retries == 1


def test_persistent_server_error_fails_cleanly_and_caches_nothing(server, tmp_path):
    _reset_when_idle(server)
    gen = _generator(server, tmp_path, fault="status=503", max_retries=2)
    with pytest.raises(api.ApiError, match="gave up after 3 tries: HTTP 503"):
        gen.generate(PROMPTS[:1], max_new_tokens=4, stop=[])
    assert _stats(server)["requests"] == 3
    assert not list((tmp_path / "api-cache").rglob("*.json"))


def test_client_error_is_not_retried(server, tmp_path):
    _reset_when_idle(server)
    gen = _generator(server, tmp_path, fault="status=400")
    with pytest.raises(api.ApiError, match="HTTP 400"):
        gen.generate(PROMPTS[:1], max_new_tokens=4, stop=[])
    assert _stats(server)["requests"] == 1 and gen.stats.retries == 0


def test_timeout_is_retried_then_succeeds(server, tmp_path):
    gen = _generator(server, tmp_path, fault="sleep=2,times=1", timeout=0.5)
    assert gen.generate(PROMPTS[:1], max_new_tokens=4, stop=[])[0]
    assert gen.stats.retries == 1


def test_persistent_timeout_fails_cleanly(server, tmp_path):
    gen = _generator(server, tmp_path, fault="sleep=1", timeout=0.2, max_retries=1)
    with pytest.raises(api.ApiError, match="timed out"):
        gen.generate(PROMPTS[:1], max_new_tokens=4, stop=[])


def test_refused_connection_fails_cleanly(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = _generator(f"http://127.0.0.1:{port}/v1", tmp_path, max_retries=1)
    with pytest.raises(api.ApiError, match="connection failed"):
        gen.generate(PROMPTS[:1], max_new_tokens=4, stop=[])


def test_rerun_is_served_from_the_cache(server, tmp_path):
    first = _generator(server, tmp_path).generate(PROMPTS, max_new_tokens=6, stop=[])
    _reset_when_idle(server)
    again = _generator(server, tmp_path)  # a new process would see the same files
    assert again.generate(PROMPTS, max_new_tokens=6, stop=[]) == first
    assert _stats(server)["requests"] == 0
    assert again.stats.sent == 0 and again.stats.cache_hits == len(PROMPTS)
    again.generate(PROMPTS[:1], max_new_tokens=5, stop=[])  # other parameters: another key
    assert _stats(server)["requests"] == 1


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_is_bounded(server, tmp_path, concurrency):
    _reset_when_idle(server)
    prompts = [f"question {i}" for i in range(6)]
    gen = _generator(server, tmp_path, fault="sleep=0.3", concurrency=concurrency)
    assert len(gen.generate(prompts, max_new_tokens=2, stop=[])) == 6
    assert _stats(server)["max_in_flight"] == concurrency  # reached, never exceeded


def test_harness_evaluates_through_the_api(server, tmp_path):
    """The evaluation entry point with the API backend: chat messages in, scored predictions out."""
    harness = pytest.importorskip("ftlib.harness")  # written alongside; absent in older checkouts
    gen = _generator(server, tmp_path)
    summary = harness.evaluate(gen, "viggo", "test", "few_shot", limit=3, out_dir=tmp_path / "run")
    assert summary["n"] == 3 and "function" in summary["metrics"]
    assert gen.stats.sent == 3 and gen.stats.new_tokens > 0
    lines = (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 3


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


@pytest.mark.parametrize("value,expected", [("3", 3.0), ("0.5", 0.5), ("-1", 0.0), (None, None),
                                            ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_parsing(value, expected):
    assert api.retry_after_seconds(value) == expected


def test_backoff_grows_with_jitter_and_is_capped():
    for attempt in range(8):
        ceiling = min(10.0, 0.5 * 2 ** attempt)
        assert ceiling / 2 <= api.backoff_delay(attempt, 0.5, 10.0) <= ceiling
    assert api.backoff_delay(0, 0.5, 10.0, retry_after=4.0) == 4.0
    assert api.backoff_delay(0, 0.5, 10.0, retry_after=400.0) == 10.0


@pytest.mark.parametrize("text,stop,expected", [("a<END>b", ["<END>"], "a"), ("abc", [], "abc"),
                                                ("x\n\ny;z", [";", "\n\n"], "x"), ("abc", [""], "abc")])
def test_cut_at_stop(text, stop, expected):
    assert cut_at_stop(text, stop) == expected


@pytest.mark.slow
def test_embedded_model_through_the_api(tmp_path):
    """The real 135M model behind the server, in this process: a sensible answer comes back."""
    server = serve.make_server(serve.ModelRunner(models.DEFAULT_MODEL))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cfg = api.ApiConfig(model=models.DEFAULT_MODEL, base_url=f"http://127.0.0.1:{server.server_port}/v1")
        gen = api.ChatGenerator(cfg, cache_dir=tmp_path)
        [answer] = gen.generate([[{"role": "user", "content": "What is the capital of France?"}]], 16, [])
        assert "Paris" in answer
    finally:
        server.shutdown()
        server.server_close()


def test_api_model_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    gen = api.from_spec("api:some-model", max_retries=0)
    assert api.is_api_spec("api:some-model") and not api.is_api_spec(models.DEFAULT_MODEL)
    assert (gen.name, gen.config.model, gen.config.base_url) == ("api:some-model", "some-model", "http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="not an API model spec"):
        api.from_spec("gpt-4o")
