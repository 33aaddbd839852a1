"""Where answers come from: the interface every generation backend shares, and the backends.

- `local`: batched greedy generation with a local transformers model (`LocalGenerator`);
- `api`: any OpenAI-compatible chat endpoint through the `openai` client (`ChatGenerator`);
- `serve`: serve a local or fine-tuned model behind that API with `transformers serve`.

The harness talks to a `Generator`: anything with `wants_messages` and
`generate(prompts, max_new_tokens, stop) -> list[str]`. A local model takes rendered prompt
strings (`wants_messages = False`); a chat API backend takes lists of chat messages
(`wants_messages = True`). Both cut the output before the first stop string, as chat APIs do.

    from ftlib import backends
    gen = backends.from_spec("smollm2-135m-instruct")   # or "api:gpt-4o"

This module imports no torch: `ftlib.backends.api` works without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

API_PREFIX = "api:"  # a model spec `api:gpt-4o` means "this model behind the configured endpoint"


class Generator(Protocol):
    """What the harness needs from a backend."""

    wants_messages: bool  # True: prompts are chat message lists; False: rendered strings

    def generate(self, prompts: list, max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        """One greedy completion per prompt, in the prompts' order."""
        ...


@dataclass
class Stats:
    """Running totals, for tokens/s figures."""

    prompts: int = 0
    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds else 0.0


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the earliest stop string (empty strings ignored); all of it if none occurs.

    >>> cut_at_stop("a<END_A>b</SQL>", ["</SQL>", "<END_A>"])
    'a'
    """
    return text[:min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))]


def is_api_spec(spec: str) -> bool:
    """True for model specs of the form `api:MODEL`."""
    return spec.startswith(API_PREFIX)


def from_spec(model: str | Generator, **kw) -> Generator:
    """A Generator for a model spec (`api:NAME` -> chat API, anything else -> local), or as given."""
    if not isinstance(model, str):
        return model
    if is_api_spec(model):
        from ftlib.backends import api

        return api.from_spec(model)
    from ftlib.backends.local import LocalGenerator

    return LocalGenerator.from_spec(model, **kw)
