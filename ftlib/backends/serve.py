"""A small OpenAI-compatible server for a local model, on 127.0.0.1 only.

    python -m ftlib.backends.serve --model smollm2-135m-instruct --port 8000
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 FTLIB_API_MODEL=smollm2-135m-instruct ...

Serves `POST /v1/chat/completions` (non-streaming, greedy, the tokenizer's chat template) and
`GET /v1/models`, plus `GET /health`, `GET /_ftlib/stats` and `POST /_ftlib/stats/reset`
(request counters and the peak of requests in flight, for tests).

Why our own and not `transformers serve`: that needs FastAPI and Uvicorn (not in this project's
dependencies) and has no way to make it fail on purpose. Tests need failures on demand, so a
request may carry an `X-Ftlib-Fault` header of comma-separated settings:

    status=429   answer with this HTTP status instead of a completion
    retry_after=1  send this Retry-After header with it
    sleep=2.5    wait this many seconds first (past a client's timeout, or to hold a slot)
    times=2      apply the fault to the first 2 requests carrying this exact header, then answer
                 normally (without `times`: every request)
    id=any       makes the header unique, so each test has its own count
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ftlib import models
from ftlib.backends import cut_at_stop

HOST = "127.0.0.1"  # never another interface: no auth by default, and it runs arbitrary prompts
DEFAULT_MAX_TOKENS = 256
MAX_TOKENS_CAP = 4096


class BadRequest(ValueError):
    """The request body is not a chat completion request we can serve (answered with 400)."""


class ModelRunner:
    """Greedy chat completions from one local model; one request at a time (2 CPU cores)."""

    def __init__(self, spec: str, name: str | None = None, dtype: str | None = None):
        self.model, self.tokenizer = models.load(spec, dtype=dtype)
        self.name = name or spec.rstrip("/").split("/")[-1]
        self._lock = threading.Lock()

    def complete(self, messages: list[dict], max_tokens: int, stop: list[str]) -> dict:
        """Generate an answer: text, finish_reason and token counts."""
        tok = self.tokenizer
        if not tok.chat_template:
            raise BadRequest(f"model {self.name} has no chat template: it cannot serve chat requests")
        enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True).to(self.model.device)
        n_prompt = enc["input_ids"].shape[1]
        extra = {"stop_strings": stop, "tokenizer": tok} if stop else {}
        with self._lock:
            out = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, **extra)
        new = out[0, n_prompt:].tolist()
        text, hit = self.decode(new, stop)
        return {"text": text, "finish_reason": "stop" if hit or len(new) < max_tokens else "length",
                "prompt_tokens": n_prompt, "completion_tokens": len(new)}

    def decode(self, new_ids: list[int], stop: list[str]) -> tuple[str, bool]:
        """Answer text without special tokens, cut before the first stop string (as OpenAI does).

        Stop strings may be special tokens (`<END_A>`), so look for them before dropping specials.
        """
        tok = self.tokenizer
        if not stop:
            return tok.decode(new_ids, skip_special_tokens=True), False
        full = tok.decode(new_ids, skip_special_tokens=False)
        text = cut_at_stop(full, stop)
        hit = len(text) < len(full)
        for special in tok.all_special_tokens:
            text = text.replace(special, "")
        return text, hit


def parse_request(body: dict) -> tuple[list[dict], int, list[str]]:
    """Check a chat completion body; return (messages, max_tokens, stop)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and "role" in m and "content" in m for m in messages):
        raise BadRequest("'messages' must be a non-empty list of {role, content} objects")
    if body.get("stream"):
        raise BadRequest("streaming is not supported by this server")
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is supported")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    if not isinstance(max_tokens, int) or not 0 < max_tokens <= MAX_TOKENS_CAP:
        raise BadRequest(f"max_tokens must be an integer in 1..{MAX_TOKENS_CAP}")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else [s for s in stop if s]
    return messages, max_tokens, stop


class FaultPlan:
    """Counts requests per `X-Ftlib-Fault` header value and says which fault to apply."""

    def __init__(self):
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, header: str | None) -> dict:
        """The fault settings for this request ({} for none), counting it against `times`."""
        if not header:
            return {}
        settings = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        with self._lock:
            n = self._seen[header] = self._seen.get(header, 0) + 1
        if "times" in settings and n > int(settings["times"]):
            return {}
        return settings


class Stats:
    """Thread-safe counters: every request, completions served, requests in flight and the peak."""

    def __init__(self):
        self.values = {"requests": 0, "completions": 0, "in_flight": 0, "max_in_flight": 0}
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            v = self.values
            v["requests"] += 1
            v["in_flight"] += 1
            v["max_in_flight"] = max(v["max_in_flight"], v["in_flight"])

    def leave(self, completed: bool) -> None:
        with self._lock:
            self.values["in_flight"] -= 1
            self.values["completions"] += int(completed)

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.values)

    def reset(self) -> dict:
        """Zero the counters (the peak restarts from what is in flight now); return the old ones."""
        with self._lock:
            old = dict(self.values)
            self.values.update(requests=0, completions=0, max_in_flight=self.values["in_flight"])
            return old


class Handler(BaseHTTPRequestHandler):
    """Routes requests; the server object carries the runner, the fault plan and the stats."""

    server_version = "ftlib-serve/0.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        srv = self.server
        routes = {
            "/v1/models": lambda: {"object": "list", "data": [
                {"id": srv.runner.name, "object": "model", "created": 0, "owned_by": "ftlib"}]},
            "/health": lambda: {"status": "ok"},
            "/_ftlib/stats": srv.stats.snapshot,
        }
        route = routes.get(self.path.split("?")[0].rstrip("/"))
        if route is None:
            return self.send_error_json(HTTPStatus.NOT_FOUND, f"no route {self.path}")
        self.send_json(HTTPStatus.OK, route())

    def do_POST(self) -> None:  # noqa: N802
        if self.path.rstrip("/") == "/_ftlib/stats/reset":
            return self.send_json(HTTPStatus.OK, self.server.stats.reset())
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self.send_error_json(HTTPStatus.NOT_FOUND, f"no route {self.path}")
        self.server.stats.enter()
        completed = False
        try:
            completed = self.chat_completion()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nobody to answer
        finally:
            self.server.stats.leave(completed)

    def chat_completion(self) -> bool:
        """Answer one chat completion request (or the injected fault); True if a completion was sent."""
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)  # read the body first: closing on unread data resets the socket
        if srv.api_key and self.headers.get("Authorization") != f"Bearer {srv.api_key}":
            self.send_error_json(HTTPStatus.UNAUTHORIZED, "invalid API key")
            return False
        fault = srv.faults.next(self.headers.get("X-Ftlib-Fault"))
        time.sleep(float(fault.get("sleep", 0)))
        if "status" in fault:
            extra = {"Retry-After": fault["retry_after"]} if "retry_after" in fault else {}
            self.send_error_json(int(fault["status"]), "injected fault", extra)
            return False
        try:
            messages, max_tokens, stop = parse_request(json.loads(raw or b"{}"))
            result = srv.runner.complete(messages, max_tokens, stop)
        except (BadRequest, ValueError) as e:
            self.send_error_json(HTTPStatus.BAD_REQUEST, str(e))
            return False
        self.send_json(HTTPStatus.OK, completion_response(srv.runner.name, result))
        return True

    def send_json(self, status: int, obj: dict, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, status: int, message: str, headers: dict | None = None) -> None:
        """An error in OpenAI's shape: {"error": {"message", "type", "code"}}."""
        kind = "rate_limit_error" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
        self.send_json(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)


def completion_response(model: str, result: dict) -> dict:
    """A chat.completion object in OpenAI's shape."""
    usage = {"prompt_tokens": result["prompt_tokens"], "completion_tokens": result["completion_tokens"]}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "usage": usage,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result["text"]},
                     "finish_reason": result["finish_reason"]}],
    }


def make_server(runner: ModelRunner, port: int = 0, api_key: str | None = None,
                verbose: bool = False) -> ThreadingHTTPServer:
    """A threaded server on 127.0.0.1:`port` (0 picks a free one: see `server.server_port`)."""
    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True  # a client that hung up must not keep the process alive
    server.runner, server.api_key, server.verbose = runner, api_key, verbose
    server.faults, server.stats = FaultPlan(), Stats()
    return server


def main(argv: list[str] | None = None) -> None:
    """`python -m ftlib.backends.serve --model SPEC [--port N]`: serve until interrupted."""
    ap = argparse.ArgumentParser(prog="python -m ftlib.backends.serve", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=models.DEFAULT_MODEL, help="alias, checkpoint folder or .gguf")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    ap.add_argument("--name", help="model name clients send (default: the spec's last part)")
    ap.add_argument("--dtype", help="e.g. float32 (default: fastest for the device)")
    ap.add_argument("--api-key", help="require this bearer key (default: none)")
    ap.add_argument("--verbose", action="store_true", help="log every request")
    args = ap.parse_args(argv)
    runner = ModelRunner(args.model, name=args.name, dtype=args.dtype)
    server = make_server(runner, args.port, args.api_key, args.verbose)
    # Tests read this line to learn the port: keep its shape.
    print(f"ftlib.serve: {runner.name} on http://{HOST}:{server.server_port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
