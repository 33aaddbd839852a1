"""A fake OpenAI-compatible chat endpoint for the API client's fault tests, on 127.0.0.1.

No model behind it: it answers `echo: <last message>` (one "token" per word, cut at max_tokens)
and ignores `stop`, as some servers do. Faults are planned in Python:

    with FakeEndpoint(faults=[{"status": 429, "retry_after": "1"}]) as ep:   # first request: 429
        ...  # client pointed at ep.url; ep.requests, ep.max_in_flight, ep.bodies afterwards

`faults` apply to the first requests in turn, `always` to every request after them. A fault is a
dict of: `status` (answer with this HTTP error), `retry_after` (its Retry-After header), `sleep`
(seconds to wait first: past a client's timeout, or to hold a slot open), `body` (answer 200 with
this JSON instead of a completion).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeEndpoint(ThreadingHTTPServer):
    """The server; counts requests and the peak of requests in flight."""

    daemon_threads = True  # a handler still sleeping for a client that gave up must not block exit

    def __init__(self, faults: list[dict] = (), always: dict | None = None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.faults, self.always = list(faults), always or {}
        self.requests = self.in_flight = self.max_in_flight = 0
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v1"

    def __enter__(self) -> "FakeEndpoint":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()

    def arrive(self, body: dict, auth: str | None) -> dict:
        """Count a request in; return its fault ({} for none)."""
        with self.lock:
            n = self.requests
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.bodies.append(body)
            self.auth.append(auth)
        return self.faults[n] if n < len(self.faults) else self.always

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


def completion(body: dict) -> dict:
    """The answer to a chat request, in OpenAI's shape."""
    words = f"echo: {body['messages'][-1]['content']}".split(" ")
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or len(words)
    n_prompt = sum(len(m["content"].split(" ")) for m in body["messages"])
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(words[:limit])},
                         "finish_reason": "length" if len(words) > limit else "stop"}],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": min(limit, len(words)),
                      "total_tokens": n_prompt + min(limit, len(words))}}


class Handler(BaseHTTPRequestHandler):
    """POST /v1/chat/completions only."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        fault = self.server.arrive(body, self.headers.get("Authorization"))
        try:
            time.sleep(fault.get("sleep", 0))
            if "status" in fault:
                extra = {"Retry-After": fault["retry_after"]} if "retry_after" in fault else {}
                self.send(fault["status"], {"error": {"message": "injected fault", "code": fault["status"]}}, extra)
            else:
                self.send(200, fault.get("body") or completion(body))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nobody to answer
        finally:
            self.server.leave()

    def send(self, status: int, obj: dict, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                           **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass
