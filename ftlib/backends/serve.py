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

In Python (tests, notebooks), `running(spec)` starts it, waits until it answers, and stops it.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
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
    argv, cwd, name = command(spec, port, dtype, extra)
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
        yield client_env(found[0], name)
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
    cmd, cwd, name = command(args.model, args.port, args.dtype, argv[cut + 1:])
    print(" ".join(f"{k}={v}" for k, v in client_env(args.port, name).items()), flush=True)
    print(f"(in {cwd or '.'}) transformers {' '.join(cmd[3:])}", flush=True)
    sys.exit(_serve_until_signal(cmd, cwd))


if __name__ == "__main__":
    main()
