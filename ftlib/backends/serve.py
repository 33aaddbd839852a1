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

Clients talk to a guard (ftlib.backends.guard) in front of the engine: only the routes it checks,
a malformed request, a field of the wrong type or a prompt of the model's context or more gets a 400
saying what is wrong, and max_tokens is cut to what the context leaves. The engine runs as a child
process that SIGTERM, SIGHUP or Ctrl-C stops within seconds (`stop`), and that dies with this
process even when it is killed with SIGKILL (`procs.tied`).

In Python (tests, notebooks), `running(spec)` starts it, waits until it answers, and stops it.
"""

from __future__ import annotations

import argparse
import collections
import re
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from ftlib import procs
from ftlib.backends.guard import HOST, Guard

READY = re.compile(r"Uvicorn running on http://[\d.]+:(\d+)")  # uvicorn's start line, on stderr
RUN_SUBFOLDERS = {"model", "merged"}  # a training run's checkpoint: keep the run's name in the model name


def command(spec: str, port: int = 8000, dtype: str | None = None,
            extra: Sequence[str] = ()) -> tuple[list[str], Path | None, str]:
    """(`transformers serve` argv, folder to run it in, model name clients send) for a model spec."""
    from ftlib import models  # imports torch: seconds that `_serve_until_signal` alone need not pay

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


def guard_for(spec: str, upstream: int, port: int = 0) -> Guard:
    """A Guard for a model spec: its tokenizer and context length, in front of the engine's port."""
    from transformers import AutoConfig

    from ftlib import models

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
    proc = subprocess.Popen(procs.tied(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
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
    """Run the server as a child and stop it within seconds of SIGTERM, SIGHUP or Ctrl-C (`stop`):
    served directly, a server busy generating for a client that is gone ignored SIGTERM for minutes.
    Killed outright (SIGKILL), this process takes the server with it (`procs.tied`)."""
    import signal

    proc = subprocess.Popen(procs.tied(cmd), cwd=cwd)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)  # the terminal closed: nobody is left to stop it
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return stop(proc)


def main(argv: list[str] | None = None) -> None:
    """`python -m ftlib.backends.serve SPEC [--port N] [--dtype D] [-- transformers serve options]`."""
    from ftlib import models

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
