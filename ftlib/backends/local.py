"""Fast batched greedy generation for local models (a `Generator`, see ftlib.backends).

What makes `LocalGenerator` fast on a small CPU (measured in benchmarks/generation_speed.py):
- prompts sorted by length, so a batch holds similar lengths and carries little padding;
- the prompt prefix that a whole batch shares (system turn, few-shot examples) is run once and
  its key/value cache copied to every row, instead of being recomputed for each prompt;
- our own decode loop: logits for the last position only, no sampling machinery, and rows that
  finished are dropped from the batch (and its cache) instead of being carried to the end.
Padding sits between the shared prefix and each prompt's own tokens; the attention mask hides it
and position ids come from the mask, so every row sees exactly what it would see alone.

Why our own loop and not transformers' `generate`, static caches, torch.compile or continuous
batching: it was the fastest of them on a small CPU. Batch 48, because larger batches, a little
faster, change more bf16 outputs (the benchmark, the levers tried and the output checks:
docs/measurements.md).
In fp32 every batched engine gives exactly what one-prompt-at-a-time greedy decoding gives
(tests/test_local.py); in bf16 none does, so a bf16 figure depends slightly on the batch size.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from ftlib.backends import Stats, cut_at_stop

MIN_SHARED_PREFIX = 16  # shorter shared prefixes are not worth a separate forward pass


def common_prefix_len(seqs: list[list[int]]) -> int:
    """Length of the token prefix shared by every sequence."""
    n = min(len(s) for s in seqs)
    first = seqs[0]
    for i in range(n):
        if any(s[i] != first[i] for s in seqs[1:]):
            return i
    return n


def shared_prefix_len(seqs: list[list[int]]) -> int:
    """How many leading tokens a batch runs once for all its rows (0: not worth a separate pass)."""
    shared = common_prefix_len(seqs) if len(seqs) > 1 else 0
    shared = min(shared, min(map(len, seqs)) - 1)  # every row keeps >= 1 token of its own
    return shared if shared >= MIN_SHARED_PREFIX else 0


class LocalGenerator:
    """Batched greedy generation with a local transformers causal LM.

    >>> gen = LocalGenerator.from_spec("smollm2-135m-instruct")  # doctest: +SKIP
    >>> gen.generate(["<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n"], 20)  # doctest: +SKIP
    """

    wants_messages = False
    spec: str | None = None

    def __init__(self, model, tokenizer, batch_size: int | None = None, max_batch_tokens: int | None = None,
                 tool: Callable[[str], str | None] | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        # A tool sees the text generated so far whenever it ends in "=" and may dictate what follows
        # (tasks.gsm8k.calculator: the result of a GSM8K note); greedy decoding then goes on from there.
        self.tool = tool
        # A CPU's sweet spot is ~48 rows (benchmarks/generation_speed.py); a GPU wants hundreds.
        on_gpu = self.device.type == "cuda"
        self.batch_size = batch_size or (512 if on_gpu else 48)
        # Caps batch size x (prompt + new tokens): the KV cache read at every step grows with it
        # (this model: ~23 KB per token in bf16, so 1M tokens is ~23 GB of GPU memory).
        self.max_batch_tokens = max_batch_tokens or (1_000_000 if on_gpu else 40_000)
        self.stats = Stats()
        self.truncated: list[bool] = []  # the last generate call's answers that hit max_new_tokens
        self.eos_ids = eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]

    @classmethod
    def from_spec(cls, spec: str, device: str | None = None, dtype=None, **kw) -> "LocalGenerator":
        """Load a model spec (see ftlib.models) on the fastest device and dtype."""
        from ftlib import models

        model, tokenizer = models.load(spec, device=device, dtype=dtype)
        gen = cls(model, tokenizer, **kw)
        gen.spec = spec  # the harness records it in the summary
        return gen

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def generate(self, prompts: list[str], max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        """Greedy completions for rendered prompt strings, in the prompts' order."""
        start = time.perf_counter()
        ids = [self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[str] = [""] * len(ids)
        cut = [False] * len(ids)
        for batch in self._batches(order, ids, max_new_tokens):
            texts, ended = self._generate_batch([ids[i] for i in batch], max_new_tokens, list(stop))
            for i, t, e in zip(batch, texts, ended):
                out[i], cut[i] = t, not e
        self.truncated = cut
        self.stats.prompts += len(ids)
        self.stats.prompt_tokens += sum(map(len, ids))
        self.stats.seconds += time.perf_counter() - start
        return out

    def _batches(self, order: list[int], ids: list[list[int]], max_new: int) -> list[list[int]]:
        """Consecutive (length-sorted) batches within the batch size and token budget."""
        batches, cur = [], []
        for i in order:
            longest = max([len(ids[j]) for j in cur] + [len(ids[i])]) + max_new
            if cur and (len(cur) >= self.batch_size or (len(cur) + 1) * longest > self.max_batch_tokens):
                batches.append(cur)
                cur = []
            cur.append(i)
        return batches + ([cur] if cur else [])

    @torch.inference_mode()
    def _generate_batch(self, seqs: list[list[int]], max_new: int, stop: list[str]) -> tuple[list[str], list[bool]]:
        """Generate for one batch: shared-prefix prefill, then the decode loop. Returns the texts and,
        for each, whether it ended (EOS or a stop string) rather than hitting `max_new`."""
        cache, mask, logits = self._prefill(seqs)
        rows = torch.arange(len(seqs), device=self.device)  # original row of each live row
        new: list[list[int]] = [[] for _ in seqs]
        done = [False] * len(seqs)
        forced: list[list[int]] = [[] for _ in seqs]  # tokens the tool dictates, per row
        for step in range(max_new):
            nxt = logits.argmax(-1)
            for i, r in enumerate(rows.tolist()):
                if forced[r]:
                    nxt[i] = forced[r].pop(0)
            for r, t in zip(rows.tolist(), nxt.tolist()):
                if not done[r]:
                    new[r].append(t)
                    done[r] = t in self.eos_ids or self._stopped(new[r], stop)
                    if self.tool is not None and not done[r] and not forced[r]:
                        forced[r] = list(self._tool_tokens(new[r]))
            live = torch.tensor([not done[r] for r in rows.tolist()], device=self.device)
            if not live.any() or step == max_new - 1:
                break
            if (~live).sum() * 8 >= len(rows):  # dropping rows copies the cache: batch the drops
                keep = live.nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                rows, mask, nxt = rows[keep], mask[keep], nxt[keep]
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            logits = self._step(nxt[:, None], mask, cache)
        self.stats.new_tokens += sum(map(len, new))
        return [self._decode(n, stop) for n in new], done

    def _prefill(self, seqs: list[list[int]]):
        """Run the prompts: the shared prefix once, then each row's own tokens, left-padded."""
        shared = shared_prefix_len(seqs)
        tails = [s[shared:] for s in seqs]
        width = max(map(len, tails))
        cache = None
        if shared:
            prefix = torch.tensor([seqs[0][:shared]], device=self.device)
            cache = self.model(input_ids=prefix, use_cache=True, logits_to_keep=1).cache
            cache.batch_repeat_interleave(len(seqs))
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for i, t in enumerate(tails):
            ids[i, width - len(t):] = torch.tensor(t)
            mask[i, shared + width - len(t):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        return self._forward(ids, mask, cache, width)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, cache, width: int):
        """One forward pass over the last `width` positions; returns (cache, mask, last logits)."""
        pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache,
                         use_cache=True, logits_to_keep=1)
        return out.cache, mask, out.logits[:, -1].float()

    def _step(self, ids: torch.Tensor, mask: torch.Tensor, cache) -> torch.Tensor:
        """One decode step for the live rows; returns their next-token logits."""
        return self._forward(ids, mask, cache, 1)[2]

    def _tool_tokens(self, new_ids: list[int]) -> list[int]:
        """The tokens the tool dictates after this text (none unless the text ends in "=")."""
        if not self.tokenizer.decode(new_ids[-1:]).endswith("="):
            return []
        text = self.tool(self.tokenizer.decode(new_ids[-64:], skip_special_tokens=True))
        return self.tokenizer(text, add_special_tokens=False).input_ids if text else []

    def _stopped(self, new_ids: list[int], stop: list[str]) -> bool:
        """Whether the text so far holds a stop string (only the tail can hold a new one)."""
        if not stop:
            return False
        tail = self.tokenizer.decode(new_ids[-32:], skip_special_tokens=False)
        return any(s in tail for s in stop)

    def _decode(self, new_ids: list[int], stop: list[str]) -> str:
        """Output text: EOS and special tokens dropped, cut before the first stop string."""
        if new_ids and new_ids[-1] in self.eos_ids:
            new_ids = new_ids[:-1]
        if not stop:
            return self.tokenizer.decode(new_ids, skip_special_tokens=True)
        # Stop strings may be special tokens (`<END_A>`): find them before dropping specials.
        text = cut_at_stop(self.tokenizer.decode(new_ids, skip_special_tokens=False), stop)
        for tok in self.tokenizer.all_special_tokens:
            text = text.replace(tok, "")
        return text


def eos_ids(model, tokenizer) -> list[int]:
    """Every token id that ends a generation: the tokenizer's EOS and the model's configured ones."""
    ids = {tokenizer.eos_token_id}
    cfg = getattr(model, "generation_config", None)
    extra = getattr(cfg, "eos_token_id", None) if cfg is not None else None
    ids.update(extra if isinstance(extra, list) else [extra])
    return sorted(i for i in ids if i is not None)
