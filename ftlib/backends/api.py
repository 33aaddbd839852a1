"""Evaluate a model behind any OpenAI-compatible chat endpoint (GPT-4-class APIs, vLLM, llama.cpp,
Ollama, or `python -m ftlib.backends.serve`), the same way the harness evaluates a local model.

Settings come from environment variables, or from a `.env` file at the repository root (git-ignored;
`.env.example` shows the keys); a variable set in the environment wins over the file:

    OPENAI_BASE_URL        endpoint root ending in /v1 (default: OpenAI's)
    OPENAI_API_KEY         bearer key (may be empty for a local server)
    FTLIB_API_MODEL        model name the endpoint knows, e.g. gpt-4o
    FTLIB_API_CONCURRENCY  requests in flight at once (default 4)
    FTLIB_API_TIMEOUT      seconds per request (default 60)
    FTLIB_API_MAX_RETRIES  retries after the first try on 429, 5xx, timeouts (default 6)
    FTLIB_API_TOKEN_PARAM  name of the length limit: max_tokens, or max_completion_tokens
                           for OpenAI's reasoning models

Every answer is cached on disk under `.cache/api/`, keyed by (base URL, model, messages,
parameters): a rerun sends nothing. Decoding is greedy (temperature 0), as for local models.

>>> gen = ChatGenerator(config_from_env(model="gpt-4o"))            # doctest: +SKIP
>>> gen.generate([[{"role": "user", "content": "2+2?"}]], 8, [])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ftlib import io, paths
from ftlib.backends import API_PREFIX, Stats, cut_at_stop, is_api_spec

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504, 529}  # 409/529: some providers' "overloaded"


class ApiError(RuntimeError):
    """A request failed for good (a 4xx other than 429, or retries exhausted)."""


@dataclass(frozen=True)
class ApiConfig:
    """Where and how to call an OpenAI-compatible endpoint."""
    model: str
    base_url: str = DEFAULT_BASE_URL
    api_key: str = field(default="", repr=False)  # never printed
    concurrency: int = 4
    timeout: float = 60.0
    max_retries: int = 6
    backoff: float = 1.0  # first wait in seconds; doubles each retry, with jitter
    max_wait: float = 60.0  # cap on any single wait, Retry-After included
    token_param: str = "max_tokens"
    headers: dict = field(default_factory=dict)  # extra request headers (tests inject faults so)


def read_dotenv(path: str | Path) -> dict[str, str]:
    """Parse a `.env` file of KEY=VALUE lines (# comments, optional quotes, `export ` prefix)."""
    path = Path(path)
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        values[key.strip()] = value.strip().strip("'\"")
    return values


def config_from_env(model: str | None = None, env_file: str | Path | None = None, **overrides) -> ApiConfig:
    """Build an ApiConfig from the environment, then `.env`, then defaults; kwargs win over all."""
    env = {**read_dotenv(env_file or paths.ROOT / ".env"), **os.environ}
    model = model or env.get("FTLIB_API_MODEL")
    if not model:
        raise ApiError("no model name: pass model=... or set FTLIB_API_MODEL (see .env.example)")
    values = {
        "base_url": env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
        "api_key": env.get("OPENAI_API_KEY", ""),
        "concurrency": int(env.get("FTLIB_API_CONCURRENCY", 4)),
        "timeout": float(env.get("FTLIB_API_TIMEOUT", 60)),
        "max_retries": int(env.get("FTLIB_API_MAX_RETRIES", 6)),
        "token_param": env.get("FTLIB_API_TOKEN_PARAM", "max_tokens"),
    }
    return ApiConfig(model=model, **{**values, **overrides})


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number, or an HTTP date (RFC 9110).

    >>> retry_after_seconds("2")
    2.0
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Wait before retry `attempt` (0-based): the server's Retry-After if it gave one, else
    exponential backoff with "equal jitter" so that parallel clients do not retry in lockstep."""
    if retry_after is not None:
        return min(cap, retry_after)
    ceiling = min(cap, base * 2 ** attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class _Retryable(Exception):
    """A failure worth another try: 429, 5xx, a timeout, a dropped connection."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


def as_messages(prompt) -> list[dict]:
    """A chat prompt as a list of messages; a plain string becomes one user message."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


class ResponseCache:
    """One JSON file per request under `root`, named by the hash of everything that decides the answer."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def key(base_url: str, body: dict) -> str:
        """Stable hash of (base URL, model, messages, parameters); the API key is not part of it."""
        canonical = json.dumps({"base_url": base_url.rstrip("/"), "body": body}, sort_keys=True,
                               ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The cached record, or None (a corrupt file counts as a miss and is rewritten)."""
        try:
            return io.read_json(self.path(key))
        except (OSError, ValueError):
            return None

    def put(self, key: str, record: dict) -> None:
        io.write_json(self.path(key), record)


@dataclass
class ApiStats(Stats):
    """Stats (tokens as the endpoint reports them in `usage`, for requests sent) plus request counts."""
    sent: int = 0  # HTTP requests, retries included
    cache_hits: int = 0
    retries: int = 0
    failed: int = 0


class ChatGenerator:
    """Greedy chat completions from an OpenAI-compatible endpoint, cached, retried, bounded.

    Implements ftlib.backends.Generator: `generate(prompts, max_new_tokens, stop)`, where each
    prompt is a list of chat messages (`wants_messages`); a plain string is one user message.
    """

    wants_messages = True

    def __init__(self, config: ApiConfig, cache_dir: str | Path | None = None, use_cache: bool = True):
        self.config = config
        self.name = f"{API_PREFIX}{config.model}"
        self.cache = ResponseCache(cache_dir or paths.cache_dir() / "api") if use_cache else None
        self.stats = ApiStats()
        self._lock = threading.Lock()

    def generate(self, prompts: list, max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        """One completion per prompt, in order. Raises ApiError once all finished if any failed
        (the answers that did arrive are cached, so a rerun only asks for the missing ones)."""
        stop = list(stop or [])
        bodies = [self.request_body(p, max_new_tokens, stop) for p in prompts]
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, self.config.concurrency)) as pool:
            outcomes = list(pool.map(self._complete_or_error, bodies))
        self.stats.seconds += time.perf_counter() - start
        self.stats.prompts += len(prompts)
        errors = [o for o in outcomes if isinstance(o, Exception)]
        if errors:
            raise ApiError(f"{len(errors)} of {len(prompts)} requests failed; first: {errors[0]}")
        return [cut_at_stop(text, stop) for text in outcomes]

    def request_body(self, prompt, max_new_tokens: int, stop: list[str]) -> dict:
        """The JSON body of one chat completion request (greedy)."""
        body = {"model": self.config.model, "messages": as_messages(prompt), "temperature": 0,
                self.config.token_param: max_new_tokens}
        if stop:
            body["stop"] = stop[:4]  # OpenAI accepts at most 4; cut_at_stop applies the rest
        return body

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + n)

    def _count_usage(self, usage: dict | None) -> None:
        usage = usage or {}
        self._count("prompt_tokens", int(usage.get("prompt_tokens") or 0))
        self._count("new_tokens", int(usage.get("completion_tokens") or 0))

    def _complete_or_error(self, body: dict):
        try:
            return self._complete(body)
        except ApiError as e:
            self._count("failed")
            return e

    def _complete(self, body: dict) -> str:
        key = self.cache.key(self.config.base_url, body) if self.cache else ""
        record = self.cache.get(key) if self.cache else None
        if record is not None:
            self._count("cache_hits")  # its tokens are not counted: tokens/s is the endpoint's speed
            return record["text"]
        response = self._post_with_retries(body)
        if not isinstance(response, dict) or not response.get("choices"):
            raise ApiError(f"no choices in the response: {str(response)[:300]}")
        choice = response["choices"][0]
        text = (choice.get("message") or {}).get("content") or ""
        self._count_usage(response.get("usage"))
        if self.cache:
            self.cache.put(key, {"base_url": self.config.base_url, "request": body, "text": text,
                                 "finish_reason": choice.get("finish_reason"),
                                 "usage": response.get("usage"), "created": time.time()})
        return text

    def _post_with_retries(self, body: dict) -> dict:
        cfg = self.config
        for attempt in range(cfg.max_retries + 1):
            try:
                return self._post_once(body)
            except _Retryable as e:
                if attempt == cfg.max_retries:
                    raise ApiError(f"gave up after {attempt + 1} tries: {e}") from None
                self._count("retries")
                time.sleep(backoff_delay(attempt, cfg.backoff, cfg.max_wait, e.retry_after))
        raise AssertionError("unreachable")

    def _post_once(self, body: dict) -> dict:
        cfg = self.config
        headers = {"Content-Type": "application/json", **cfg.headers}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        req = urllib.request.Request(cfg.base_url.rstrip("/") + "/chat/completions",
                                     data=json.dumps(body).encode("utf-8"), headers=headers)
        self._count("sent")
        try:
            with urllib.request.urlopen(req, timeout=cfg.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = f"HTTP {e.code}: {e.read()[:300].decode('utf-8', 'replace')}"
            if e.code in RETRY_STATUSES:
                raise _Retryable(detail, retry_after_seconds(e.headers.get("Retry-After"))) from None
            raise ApiError(detail) from None
        except (TimeoutError, socket.timeout) as e:
            raise _Retryable(f"timed out after {cfg.timeout}s ({e})") from None
        except urllib.error.URLError as e:  # refused, reset, or a timeout while connecting
            raise _Retryable(f"connection failed: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:  # e.g. RemoteDisconnected, IncompleteRead
            raise _Retryable(f"connection dropped: {e!r}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(f"not JSON: {raw[:200]!r}") from None


def from_spec(spec: str, **overrides) -> ChatGenerator:
    """`api:gpt-4o` -> a ChatGenerator for that model, the endpoint and key from env / `.env`.

    `api:` alone takes the model name from FTLIB_API_MODEL.
    """
    if not is_api_spec(spec):
        raise ValueError(f"not an API model spec (expected {API_PREFIX}MODEL): {spec!r}")
    return ChatGenerator(config_from_env(model=spec[len(API_PREFIX):] or None, **overrides))


def main(argv: list[str] | None = None) -> None:
    """`python -m ftlib.backends.api [MODEL] [--prompt TEXT]`: one request, to check the endpoint and key."""
    ap = argparse.ArgumentParser(prog="python -m ftlib.backends.api", description=main.__doc__)
    ap.add_argument("model", nargs="?", help="model name (default: FTLIB_API_MODEL)")
    ap.add_argument("--prompt", default="Say hello in five words.")
    ap.add_argument("--no-cache", action="store_true", help="ask the endpoint even if cached")
    args = ap.parse_args(argv)
    cfg = config_from_env(model=args.model)
    gen = ChatGenerator(cfg, use_cache=not args.no_cache)
    print(f"{cfg.base_url} {cfg.model}: {gen.generate([args.prompt], 32, [])[0]!r}  {gen.stats}")


if __name__ == "__main__":
    main()
