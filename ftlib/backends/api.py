"""Evaluate a model behind any OpenAI-compatible chat endpoint (GPT-4-class APIs, vLLM, llama.cpp,
Ollama, or a local model served with `python -m ftlib.backends.serve`), the same way the harness
evaluates a local model. Requests go through the `openai` client, which retries 408/409/429/5xx,
timeouts and dropped connections with exponential backoff and honours `Retry-After`.

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
import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import openai

from ftlib import io, paths
from ftlib.backends import API_PREFIX, Stats, cut_at_stop, is_api_spec

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_KEY = "EMPTY"  # the client insists on a key; local servers ignore it (vLLM's convention)


class ApiError(RuntimeError):
    """A request failed for good (a 4xx other than 408/409/429, or retries exhausted)."""


@dataclass(frozen=True)
class ApiConfig:
    """Where and how to call an OpenAI-compatible endpoint."""
    model: str
    base_url: str = DEFAULT_BASE_URL
    api_key: str = field(default="", repr=False)  # never printed
    concurrency: int = 4
    timeout: float = 60.0
    max_retries: int = 6  # the client waits 0.5 s, 1 s, 2 s ... (8 s at most) or what Retry-After says
    token_param: str = "max_tokens"
    headers: dict = field(default_factory=dict)  # extra request headers, e.g. a provider's own


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
    sent: int = 0  # requests sent to the endpoint (cache misses), each counted once however many tries
    cache_hits: int = 0
    retries: int = 0  # extra tries the client made for answers that arrived
    failed: int = 0


def error_text(e: openai.OpenAIError, timeout: float) -> str:
    """A short reason for a failed request: the HTTP status and message, a timeout, or a refusal."""
    if isinstance(e, openai.APIStatusError):  # body: the `error` object of OpenAI's error shape, or all of it
        detail = e.body.get("message", e.body) if isinstance(e.body, dict) else e.body
        return f"HTTP {e.status_code}: {detail}"[:300]
    if isinstance(e, openai.APITimeoutError):
        return f"timed out after {timeout}s"
    if isinstance(e, openai.APIConnectionError):
        return f"connection failed: {e.__cause__ or e}"
    return repr(e)


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
        self.client = openai.OpenAI(base_url=config.base_url, api_key=config.api_key or NO_KEY,
                                    timeout=config.timeout, max_retries=config.max_retries,
                                    default_headers=config.headers)
        self._lock = threading.Lock()

    def generate(self, prompts: list, max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        """One completion per prompt, in order. Raises ApiError once all finished if any failed
        (the answers that did arrive are cached, so a rerun only asks for the missing ones)."""
        stop = list(stop or [])
        bodies = [self.request_body(p, max_new_tokens, stop) for p in prompts]
        start = time.perf_counter()
        # The client is thread-safe; the pool's size is the bound on requests in flight.
        with ThreadPoolExecutor(max_workers=max(1, self.config.concurrency)) as pool:
            outcomes = list(pool.map(self._complete_or_error, bodies))
        self.stats.seconds += time.perf_counter() - start
        self.stats.prompts += len(prompts)
        errors = [o for o in outcomes if isinstance(o, Exception)]
        if errors:
            raise ApiError(f"{len(errors)} of {len(prompts)} requests failed; first: {errors[0]}")
        return [cut_at_stop(text, stop) for text in outcomes]  # servers may ignore `stop`

    def request_body(self, prompt, max_new_tokens: int, stop: list[str]) -> dict:
        """The parameters of one chat completion request (greedy); also the cache key's content."""
        body = {"model": self.config.model, "messages": as_messages(prompt), "temperature": 0,
                self.config.token_param: max_new_tokens}
        if stop:
            body["stop"] = stop[:4]  # OpenAI accepts at most 4; cut_at_stop applies the rest
        return body

    def _count(self, **amounts: int) -> None:
        with self._lock:
            for what, n in amounts.items():
                setattr(self.stats, what, getattr(self.stats, what) + n)

    def _complete_or_error(self, body: dict):
        try:
            return self._complete(body)
        except ApiError as e:
            self._count(failed=1)
            return e

    def _complete(self, body: dict) -> str:
        key = self.cache.key(self.config.base_url, body) if self.cache else ""
        record = self.cache.get(key) if self.cache else None
        if record is not None:
            self._count(cache_hits=1)  # its tokens are not counted: tokens/s is the endpoint's speed
            return record["text"]
        self._count(sent=1)
        try:
            raw = self.client.chat.completions.with_raw_response.create(**body)
            completion = raw.parse()
        except openai.OpenAIError as e:
            raise ApiError(error_text(e, self.config.timeout)) from None
        if not completion.choices:
            raise ApiError(f"no choices in the response: {raw.text[:300]}")
        choice, usage = completion.choices[0], completion.usage
        text = choice.message.content or ""
        self._count(retries=raw.retries_taken, prompt_tokens=usage.prompt_tokens if usage else 0,
                    new_tokens=usage.completion_tokens if usage else 0)
        if self.cache:
            self.cache.put(key, {"base_url": self.config.base_url, "request": body, "text": text,
                                 "finish_reason": choice.finish_reason,
                                 "usage": usage.model_dump() if usage else None, "created": time.time()})
        return text


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
