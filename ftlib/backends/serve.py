"""Serve a local or fine-tuned model behind an OpenAI-compatible API, with `transformers serve`.

    python -m ftlib.backends.serve smollm2-135m-instruct --port 8000
    # prints: OPENAI_BASE_URL=http://127.0.0.1:8000/v1 FTLIB_API_MODEL=smollm2-135m-instruct ...
    python -m ftlib.harness --model api:smollm2-135m-instruct --task viggo --style few_shot --limit 20

The model spec is resolved as ftlib.models does (an embedded alias is converted from its GGUF once,
a checkpoint folder such as a run's `model/` is used as it is), then `transformers serve` runs in
the folder's parent with the folder's relative name: a server pinned to one model answers only
requests that name it exactly, and a relative name keeps machine paths out of requests and cache
keys. It listens on 127.0.0.1 only (it has no authentication). Other `transformers serve`
options pass through: `python -m ftlib.backends.serve SPEC -- --continuous-batching`.

Clients talk to a guard (`Guard`) in front of the engine: a malformed request or a prompt of the
model's context or more gets a 400 saying what is wrong (the engine answered a bare 500, or generated
for minutes past its context), and max_tokens is cut to what the context leaves. The engine runs as
a child process that SIGTERM or Ctrl-C stops within seconds (`stop`).

In Python (tests, notebooks), `running(spec)` starts it, waits until it answers, and stops it.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Sequence

from ftlib import models

HOST = "127.0.0.1"
READY = re.compile(r"Uvicorn running on http://[\d.]+:(\d+)")  # uvicorn's start line, on stderr
RUN_SUBFOLDERS = {"model", "merged"}  # a training run's checkpoint: keep the run's name in the model name


def command(spec: str, port: int = 8000, dtype: str | None = None,
            extra: Sequence[str] = ()) -> tuple[list[str], Path | None, str]:
    """(`transformers serve` argv, folder to run it in, model name clients send) for a model spec."""
    resolved = models.resolve(spec)
    folder = Path(resolved)
    if not folder.is_dir():  # a hub id: served and named as it is
        cwd, name = None, resolved
    else:
        folder = folder.resolve()
        cwd = folder.parent.parent if folder.name in RUN_SUBFOLDERS else folder.parent
        name = folder.relative_to(cwd).as_posix()
    argv = [sys.executable, "-m", "transformers.cli.transformers", "serve", name,
            "--host", HOST, "--port", str(port), *(["--dtype", dtype] if dtype else []), *extra]
    return argv, cwd, name


# ---- a guard in front of the engine: requests checked before they cost anything -----------------

def check_request(path: str, body: bytes, tokenizer, context: int) -> tuple[str | None, bytes]:
    """(what is wrong, or None; the body to forward) for an OpenAI-style request.

    Refused: a body that is not a JSON object, chat `messages` that are not a list of {role, content}
    turns, a completion `prompt` that is not a string, a max_tokens that is not a positive integer,
    and a prompt of the model's context or more. A max_tokens beyond what the context leaves is cut
    to it, so no request generates for longer than the model can attend.
    """
    if not path.rstrip("/").endswith("completions"):
        return None, body
    try:
        req = json.loads(body or b"null")
    except ValueError:
        return "the body is not valid JSON", body
    if not isinstance(req, dict):
        return "the body must be a JSON object", body
    chat = path.rstrip("/").endswith("chat/completions")
    error, n = _prompt_tokens(req, chat, tokenizer)
    if error:
        return error, body
    for key in ("max_tokens", "max_completion_tokens"):
        v = req.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            return f"'{key}' must be a positive integer, got {v!r}", body
    if n >= context:
        return f"the prompt is {n} tokens; the model's context is {context} tokens", body
    for key in ("max_tokens", "max_completion_tokens"):
        if req.get(key) is not None:
            req[key] = min(req[key], context - n)
    return None, json.dumps(req).encode()


def _prompt_tokens(req: dict, chat: bool, tokenizer) -> tuple[str | None, int]:
    """(what is wrong with the prompt, or None; its length in tokens)."""
    if not chat:
        prompt = req.get("prompt")
        if not isinstance(prompt, str):
            return f"'prompt' must be a string, got {type(prompt).__name__}", 0
        return None, len(tokenizer(prompt, add_special_tokens=False).input_ids)
    messages = req.get("messages")
    ok = isinstance(messages, list) and messages and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages)
    if not ok:
        return ("'messages' must be a non-empty list of {\"role\": ..., \"content\": \"...\"} objects, got "
                f"{json.dumps(messages)[:80] if messages is not None else 'none'}"), 0
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
    return None, len(ids)


class Guard(ThreadingHTTPServer):
    """An HTTP server on HOST:port that checks each request (`check_request`: 400 with the reason)
    and passes the rest to the engine at `upstream` (its port), streaming the answer back."""

    daemon_threads = True

    def __init__(self, upstream: int, tokenizer, context: int, port: int = 0):
        super().__init__((HOST, port), _GuardHandler)
        self.upstream, self.tokenizer, self.context = upstream, tokenizer, context

    def start(self) -> "Guard":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


class _GuardHandler(BaseHTTPRequestHandler):
    server: Guard

    def log_message(self, *args) -> None:  # the engine logs requests already
        pass

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        error, body = check_request(self.path, body, self.server.tokenizer, self.server.context)
        if error:
            data = json.dumps({"error": {"message": error, "type": "invalid_request_error"}}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._forward(body)

    def _forward(self, body: bytes | None) -> None:
        """Send the request on; stream the answer back; drop the engine's connection if the client goes."""
        conn = http.client.HTTPConnection(HOST, self.server.upstream)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(k, v)
            self.end_headers()  # HTTP/1.0: the body ends when the connection closes
            while chunk := resp.read1(65536):
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away
        finally:
            conn.close()


def guard_for(spec: str, upstream: int, port: int = 0) -> Guard:
    """A Guard for a model spec: its tokenizer and context length, in front of the engine's port."""
    from transformers import AutoConfig

    resolved = models.resolve(spec)
    tok = models.load_tokenizer(resolved)
    context = getattr(AutoConfig.from_pretrained(resolved), "max_position_embeddings", None) or 2048
    return Guard(upstream, tok, context, port)


def client_env(port: int, name: str) -> dict[str, str]:
    """The settings that point ftlib.backends.api (and any OpenAI client) at the server."""
    # One request at a time: without --continuous-batching the engine generates them one after
    # another anyway, and queued requests only run into the client's timeout and get resent.
    return {"OPENAI_BASE_URL": f"http://{HOST}:{port}/v1", "FTLIB_API_MODEL": name,
            "FTLIB_API_CONCURRENCY": "1"}


@contextmanager
def running(spec: str, port: int = 0, dtype: str | None = None, extra: Sequence[str] = (),
            startup_s: float = 300) -> Iterator[dict[str, str]]:
    """Serve `spec` while the block runs; yields client_env (port 0: a free one is picked)."""
    argv, cwd, name = command(spec, 0, dtype, extra)  # the engine on a free port, behind the guard
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    log: collections.deque[str] = collections.deque(maxlen=40)  # the end of its log, for errors
    ready, found = threading.Event(), []

    def drain() -> None:  # read stderr to the end, so the server never blocks on a full pipe
        for line in proc.stderr:
            log.append(line.rstrip())
            if not found and (m := READY.search(line)):
                found.append(int(m.group(1)))
                ready.set()
        proc.wait()  # stderr closed: the server has exited (before it was ready, if nothing was found)
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not ready.wait(startup_s) or not found:
            raise RuntimeError(f"transformers serve did not start (exit code {proc.poll()}, "
                               f"waited up to {startup_s}s):\n" + "\n".join(log))
        guard = guard_for(spec, found[0], port).start()
        try:
            yield client_env(guard.server_port, name)
        finally:
            guard.shutdown()
            guard.server_close()
    finally:
        stop(proc)


STOP_GRACE_S = 5.0  # uvicorn waits for requests in flight, which may generate for minutes: not that long


def stop(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> int:
    """End a server process: SIGTERM, then SIGKILL if it is still there after `grace_s`; its exit code."""
    proc.terminate()
    try:
        return proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _serve_until_signal(cmd: list[str], cwd: Path | None) -> int:
    """Run the server as a child and stop it within seconds of SIGTERM or Ctrl-C (`stop`): served
    directly, a server busy generating for a client that is gone ignored SIGTERM for minutes."""
    import signal

    proc = subprocess.Popen(cmd, cwd=cwd)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return stop(proc)


def main(argv: list[str] | None = None) -> None:
    """`python -m ftlib.backends.serve SPEC [--port N] [--dtype D] [-- transformers serve options]`."""
    ap = argparse.ArgumentParser(prog="python -m ftlib.backends.serve", description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default=models.DEFAULT_MODEL, help="alias, checkpoint folder or .gguf")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--dtype", help="e.g. float32 (default: the checkpoint's own)")
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--") if "--" in argv else len(argv)  # what follows `--` is transformers serve's
    args = ap.parse_args(argv[:cut])
    upstream = _free_port()
    cmd, cwd, name = command(args.model, upstream, args.dtype, argv[cut + 1:])
    guard = guard_for(args.model, upstream, args.port).start()
    print(" ".join(f"{k}={v}" for k, v in client_env(guard.server_port, name).items()), flush=True)
    print(f"(in {cwd or '.'}) transformers {' '.join(cmd[3:])}, behind a guard on port {guard.server_port}",
          flush=True)
    sys.exit(_serve_until_signal(cmd, cwd))


def _free_port() -> int:
    """A port nobody listens on now (for the engine behind the guard)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
