"""A real serving engine: `transformers serve` (through ftlib.backends.serve) on 127.0.0.1, with the
harness evaluating through it as through any OpenAI-compatible API."""

import json
import re

import pytest
import torch

from ftlib import harness, models
from ftlib.backends import api, serve
from ftlib.backends import guard as guard_module
from ftlib.backends.local import LocalGenerator


@pytest.fixture(scope="module")
def served_tiny(tiny_model_dir):
    """The tiny random model behind `transformers serve`, for the module; yields the client settings."""
    with serve.running(str(tiny_model_dir), dtype="float32") as env:
        yield env


@pytest.fixture
def client_env(served_tiny, tmp_path, monkeypatch):
    """The process environment a user would set: endpoint and model name; the cache in tmp_path."""
    for key, value in {**served_tiny, "OPENAI_API_KEY": "", "FTLIB_CACHE": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(key, value)
    return served_tiny


def test_command_serves_a_folder_by_its_relative_name(tmp_path):
    for folder in (tmp_path / "tiny", tmp_path / "runs" / "viggo-full" / "model"):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    argv, cwd, name = serve.command(str(tmp_path / "tiny"), port=8123)
    assert (cwd, name) == (tmp_path.resolve(), "tiny")
    assert argv[-6:] == ["serve", "tiny", "--host", "127.0.0.1", "--port", "8123"]
    _, cwd, name = serve.command(str(tmp_path / "runs" / "viggo-full" / "model"), dtype="float32")
    assert (cwd, name) == ((tmp_path / "runs").resolve(), "viggo-full/model")
    assert serve.client_env(8123, name) == {"OPENAI_BASE_URL": "http://127.0.0.1:8123/v1",
                                            "FTLIB_API_MODEL": "viggo-full/model", "FTLIB_API_CONCURRENCY": "1"}


def test_main_prints_the_client_settings_then_becomes_the_server(tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "config.json").write_text("{}")
    calls = []
    monkeypatch.setattr(serve, "_serve_until_signal", lambda argv, cwd: calls.extend([cwd, argv]) or 0)
    monkeypatch.setattr(serve, "_free_port", lambda: 9124)  # the engine's, behind the guard
    monkeypatch.setattr(serve, "guard_for", lambda spec, upstream, port: calls.append((upstream, port)) or
                        type("G", (), {"server_port": port, "start": lambda self: self})())
    with pytest.raises(SystemExit) as e:
        serve.main([str(tmp_path / "tiny"), "--port", "8124", "--", "--continuous-batching"])
    assert e.value.code == 0 and calls[0] == (9124, 8124) and calls[1] == tmp_path.resolve()
    assert calls[2][-7:] == ["serve", "tiny", "--host", "127.0.0.1", "--port", "9124", "--continuous-batching"]
    assert "OPENAI_BASE_URL=http://127.0.0.1:8124/v1 FTLIB_API_MODEL=tiny" in capsys.readouterr().out


@pytest.mark.slow
def test_harness_evaluates_through_transformers_serve(client_env, tiny_model_dir, tmp_path, one_thread):
    """Same predictions through the server as from the local generator: the engine applies the
    chat template and decodes greedily as ftlib does."""
    spec = f"api:{client_env['FTLIB_API_MODEL']}"
    served = harness.evaluate(spec, "viggo", "test", "few_shot", limit=3, out_dir=tmp_path / "api")
    model, tok = models.load(str(tiny_model_dir), dtype=torch.float32)
    local = harness.evaluate(LocalGenerator(model, tok), "viggo", "test", "few_shot", limit=3,
                             out_dir=tmp_path / "local")
    assert served["n"] == local["n"] == 3 and served["model"] == spec

    def predictions(run):
        return [json.loads(line)["prediction"] for line in (tmp_path / run / "predictions.jsonl").open()]

    assert predictions("api") == predictions("local")
    assert all(predictions("api"))  # a random model still says something
    assert list((tmp_path / "cache" / "api").rglob("*.json"))  # answers cached: a rerun sends nothing


@pytest.mark.slow
def test_stop_strings_and_a_wrong_model_name(client_env, tiny_model_dir, tmp_path):
    gen = api.from_spec(f"api:{client_env['FTLIB_API_MODEL']}")
    prompt = [{"role": "user", "content": "Convert: Dirt: Showdown is a driving game."}]
    [full] = gen.generate([prompt], 12, [])
    stop = full[len(full) // 2:len(full) // 2 + 3]
    assert stop.strip(), f"pick another prompt: no usable stop string in {full!r}"
    [cut] = gen.generate([prompt], 12, [stop])
    assert cut == full[:full.find(stop)]
    with pytest.raises(api.ApiError, match="HTTP 400"):  # a pinned server answers only to its name
        api.from_spec("api:another-model").generate(["hi"], 4, [])


@pytest.mark.slow
def test_embedded_model_through_transformers_serve(tmp_path):
    """The real 135M model behind the engine: a sensible answer comes back."""
    with serve.running(models.DEFAULT_MODEL) as env:
        cfg = api.ApiConfig(model=env["FTLIB_API_MODEL"], base_url=env["OPENAI_BASE_URL"])
        [answer] = api.ChatGenerator(cfg, cache_dir=tmp_path).generate(
            [[{"role": "user", "content": "What is the capital of France?"}]], 16, [])
    assert "Paris" in answer


@pytest.mark.slow
def test_a_server_that_cannot_start_says_why(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")  # a checkpoint folder without a model
    with pytest.raises(RuntimeError, match=r"did not start \(exit code \d+, .*\):\n.*\S"):
        with serve.running(str(tmp_path / "broken"), startup_s=120):
            pass


# A server busy with a request whose client is gone: it ignores SIGTERM (uvicorn's graceful shutdown
# waits for the request), as `transformers serve` did for over a minute.
DEAF = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(600)")


def test_sigterm_stops_the_server_within_seconds(tmp_path):
    """`python -m ftlib.backends.serve` runs the server as its child: SIGTERM to it ends both."""
    import os
    import signal
    import subprocess
    import sys
    import time

    wrapper = ("import sys; from ftlib.backends import serve; serve.STOP_GRACE_S = 1; "
               f"sys.exit(serve._serve_until_signal([sys.executable, '-c', {DEAF!r}], None))")
    proc = subprocess.Popen([sys.executable, "-c", wrapper], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"  # the (deaf) server is up
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0 and time.monotonic() - t0 < 30
    for pid in map(int, children):  # the server itself is gone too
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_stop_kills_a_server_that_ignores_sigterm():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", DEAF], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert serve.stop(proc, grace_s=0.5) == -9  # SIGKILL after the grace period


@pytest.fixture(scope="module")
def guarded():
    """The guard (embedded tokenizer, a context of 64 tokens) in front of the fake endpoint."""
    from fault_server import FakeEndpoint

    with FakeEndpoint() as ep:
        guard = serve.Guard(ep.server_port, models.load_tokenizer(), context=64).start()
        yield guard, ep
        guard.shutdown()
        guard.server_close()


def _post(port, body, path="/v1/chat/completions"):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=body if isinstance(body, bytes) else json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("body, path, error", [
    ({"model": "m", "messages": "hi"}, "/v1/chat/completions", "'messages' must be a non-empty list"),
    ({"model": "m"}, "/v1/chat/completions", "'messages' must be a non-empty list .* got none"),
    ({"model": "m", "messages": HI, "max_tokens": -5}, "/v1/chat/completions",
     "'max_tokens' must be a positive integer, got -5"),
    ({"model": "m", "messages": [{"role": "user", "content": "word " * 100}]}, "/v1/chat/completions",
     r"the prompt is \d+ tokens; the model's context is 64 tokens"),
    ({"model": "m", "prompt": 5}, "/v1/completions", "'prompt' must be a string, got int"),
    (b"{not json", "/v1/chat/completions", "not valid JSON"),
])
def test_bad_requests_get_400_with_the_reason(guarded, body, path, error):
    guard, ep = guarded
    before = ep.requests
    status, answer = _post(guard.server_port, body, path)
    assert status == 400 and re.search(error, answer["error"]["message"])
    assert ep.requests == before  # never reached the engine


def test_good_requests_pass_with_max_tokens_cut_to_the_context(guarded):
    guard, ep = guarded
    status, answer = _post(guard.server_port, {"model": "m", "messages": HI, "max_tokens": 100000})
    assert status == 200 and answer["choices"][0]["message"]["content"] == "echo: hi"
    prompt = len(models.load_tokenizer().apply_chat_template(HI, tokenize=True, add_generation_prompt=True,
                                                               return_dict=False))
    assert ep.bodies[-1]["max_tokens"] == 64 - prompt  # what the context leaves, not 100,000


@pytest.mark.parametrize("field, value, error", [
    ("temperature", "hot", "'temperature' must be a number from 0 to 2, got str \"hot\""),
    ("temperature", 7, "'temperature' must be a number from 0 to 2, got 7"),
    ("stop", 5, "'stop' must be a string or a list of strings, got int 5"),
    ("seed", "x", "'seed' must be an integer, got str \"x\""),
    ("max_tokens", True, "'max_tokens' must be a positive integer, got bool true"),
    ("top_p", [1], "'top_p' must be a number from 0 to 1, got list"),
    ("stream", "yes", "'stream' must be true or false"),
    ("generation_config", '{"max_new_tokens": 100000}', "'generation_config' is not accepted"),
])
def test_wrong_field_types_get_400_with_the_field(guarded, field, value, error):
    guard, ep = guarded
    before = ep.requests
    status, answer = _post(guard.server_port, {"model": "m", "messages": HI, field: value})
    assert status == 400 and error in answer["error"]["message"]
    assert ep.requests == before


LONG = "word " * 100  # over the guard's context of 64 tokens


@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions?x=1", {"messages": [{"role": "user", "content": LONG}]}),
    ("/v1/chat/completions/", {"messages": [{"role": "user", "content": LONG}]}),
    ("//v1//chat/completions", {"messages": [{"role": "user", "content": LONG}]}),
    ("/v1/completions?stream=true", {"prompt": LONG}),
    ("/v1/responses", {"input": LONG}),
    ("/v1/responses/?x=1", {"input": [{"role": "user", "content": LONG}]}),
    ("/v1/responses", {"input": "hi", "instructions": LONG}),
    ("/v1/responses", {"input": [{"role": "user", "content": [{"type": "input_text", "text": LONG}]}]}),
])
def test_every_route_and_query_variant_goes_through_the_guard(guarded, path, body):
    guard, ep = guarded
    before = ep.requests
    status, answer = _post(guard.server_port, {"model": "m", **body}, path)
    assert status == 400
    assert re.search(r"the prompt is \d+ tokens; the model's context is 64", answer["error"]["message"])
    assert ep.requests == before


@pytest.mark.parametrize("path", ["/load_model", "/reset", "/v1/Chat/Completions", "/v1/systemone"])
def test_routes_the_guard_does_not_check_are_not_forwarded(guarded, path):
    guard, ep = guarded
    before = ep.requests
    status, answer = _post(guard.server_port, {"model": "m", "messages": HI}, path)
    assert status == 404 and "/v1/chat/completions" in answer["error"]["message"]
    assert ep.requests == before


def test_a_good_request_with_a_query_string_and_a_trailing_slash_passes(guarded):
    guard, ep = guarded
    status, answer = _post(guard.server_port, {"model": "m", "messages": HI}, "/v1/chat/completions/?x=1")
    assert status == 200 and answer["choices"][0]["message"]["content"] == "echo: hi"


def _raw(port: int, head: str, body: bytes = b"", timeout: float = 10) -> bytes:
    """Send a hand-written request; return whatever comes back before the server closes or `timeout`."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
                if b"\r\n\r\n" in got:
                    break
        except TimeoutError:
            pass
        return got


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "5000"])  # 5000: more than the body sends
def test_a_bad_content_length_gets_400_at_once(guarded, monkeypatch, length):
    import time

    monkeypatch.setattr(guard_module, "BODY_TIMEOUT_S", 1.0)
    guard, ep = guarded
    before = ep.requests
    body = json.dumps({"model": "m", "messages": HI}).encode()
    t0 = time.monotonic()
    head = (f"POST /v1/chat/completions HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            f"Content-Length: {length}\n")
    answer = _raw(guard.server_port, head, body)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert time.monotonic() - t0 < 8 and ep.requests == before


def test_the_engine_dies_with_the_server():
    """`python -m ftlib.backends.serve` killed outright (SIGKILL) or hung up on (SIGHUP): its engine is
    not left running. Both at once: each wrapper takes seconds to import."""
    import os
    import signal
    import subprocess
    import sys
    import time

    wrapper = ("import sys; from ftlib.backends import serve; serve.STOP_GRACE_S = 1; "
               f"sys.exit(serve._serve_until_signal([sys.executable, '-c', {DEAF!r}], None))")
    servers = [subprocess.Popen([sys.executable, "-c", wrapper], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    engines = []
    try:
        for proc in servers:
            assert proc.stdout.readline().strip() == "ready"
            pgrep = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
            engines += map(int, pgrep.stdout.split())
        assert len(engines) == 2 and all(map(_alive, engines))
        for proc, sig in zip(servers, (signal.SIGKILL, signal.SIGHUP)):
            proc.send_signal(sig)
        for proc in servers:
            proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while any(map(_alive, engines)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e for e in engines if _alive(e)] == []
    finally:  # whatever the outcome, leave nothing running
        for proc in servers:
            proc.kill()
        for pid in filter(_alive, engines):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_a_wrong_method_is_405_and_an_engine_that_is_gone_502(guarded):
    import http.client

    guard, _ = guarded
    conn = http.client.HTTPConnection("127.0.0.1", guard.server_port, timeout=30)
    conn.request("GET", "/v1/chat/completions")
    resp = conn.getresponse()
    assert resp.status == 405 and "use POST" in json.loads(resp.read())["error"]["message"]
    closed = serve._free_port()  # nobody listens there
    orphan = serve.Guard(closed, models.load_tokenizer(), context=64).start()
    try:
        status, answer = _post(orphan.server_port, {"model": "m", "messages": HI})
    finally:
        orphan.shutdown()
        orphan.server_close()
    assert status == 502 and f"the engine on port {closed} did not answer" in answer["error"]["message"]

