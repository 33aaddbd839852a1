"""Task rows -> prompts and completions, in every format the project uses.

Styles (what `messages` / `render` take; `TrainConfig.fmt` is one of the two a model is tuned in,
`chat` or `special`; a task's own `fmt` says whether its `chat` style uses the chat template or plain
text):
- `chat`: the fine-tuning format. A short instruction and the input as the user's turn; the
  completion is the gold answer as the assistant's turn. TRL renders both with the model's chat
  template, so the completion ends with the end-of-turn token (EOS for SmolLM2: `<|im_end|>`) and
  the loss goes on the completion only. Evaluate tuned models with this style.
- `zero_shot`: a fair prompt for an untuned model: the output format spelled out in a system turn.
- `few_shot`: `zero_shot` plus worked examples from the TRAIN split as earlier chat turns.
- `few_shot_text`: `few_shot` as plain text, no chat template, for base (pretrained-only) models:
  the instruction, the worked examples as "input / answer label: answer" blocks, then the row.
  A base model does not know chat turns; in a chat transcript it tends to repeat the last example.
- `special`: the case study's format with new tokens instead of an instruction,
  `<START_Q>{question}<END_Q><START_A>{answer}<END_A>`; needs `add_special_tokens` first.
"""

from __future__ import annotations

import functools

from ftlib import tasks
from ftlib.tasks import Task

STYLES = ("chat", "zero_shot", "few_shot", "few_shot_text", "special")  # the one prompt-style vocabulary
TUNED_STYLES = ("chat", "special")  # the styles a model is fine-tuned in (`TrainConfig.fmt`)
RENAMED_STYLES = {"finetuned": "chat"}  # older names, read as these wherever a style comes in (config.json)
SPECIAL_TOKENS = ("<START_Q>", "<END_Q>", "<START_A>", "<END_A>")


def user_text(t: Task, row: dict) -> str:
    """The user's turn of the `chat` style: instruction, then the input."""
    return f"{t.instruction}\n\n{t.question(row)}"


def _shot_answer(t: Task, row: dict) -> str:
    """A worked example's answer (GSM8K drops its calculator notes `<<4*2=8>>` for readability)."""
    return (t.shot_answer or t.reference)(row)


@functools.cache
def few_shot_rows(t: Task) -> tuple[dict, ...]:
    """Worked examples from the TRAIN split, chosen deterministically by the task's declaration
    (ViGGO: the first train row of each of the 9 functions; others: the first few train rows)."""
    rows = t.load("train")
    return tuple(t.few_shot(rows) if callable(t.few_shot) else rows[: t.few_shot])


def _system(t: Task, row: dict) -> str:
    """The untuned prompt's system turn: the task's, plus a row's own (chat rows of a user's task)."""
    return "\n\n".join(x for x in (t.system, row.get("system")) if x)


def messages(t: Task, row: dict, style: str = "chat") -> list[dict]:
    """The chat messages that ask a model for a row's answer (for chat APIs and local models)."""
    if style == "chat":
        own = [{"role": "system", "content": row["system"]}] if row.get("system") else []
        return [*own, {"role": "user", "content": user_text(t, row)}]
    if style not in ("zero_shot", "few_shot"):
        raise ValueError(f"style {style!r} has no chat form; expected one of chat, zero_shot, few_shot "
                         "(few_shot_text and special are for local models)")
    out = [{"role": "system", "content": _system(t, row)}]
    if style == "few_shot":
        for shot in few_shot_rows(t):
            out.append({"role": "user", "content": t.question(shot)})
            out.append({"role": "assistant", "content": _shot_answer(t, shot)})
    out.append({"role": "user", "content": t.question(row)})
    return out


def special_prompt(t: Task, row: dict) -> str:
    """The case study's prompt: `<START_Q>{question}<END_Q><START_A>` (the model writes the rest)."""
    return f"<START_Q>{t.question(row)}<END_Q><START_A>"


def plain_prompt(t: Task, row: dict) -> str:
    """The tuned prompt of a plain-text task (fmt "text"): instruction, the input, the answer label."""
    return f"{t.instruction}\n\n{t.question(row)}\n{t.answer_label}"


def text_prompt(t: Task, row: dict) -> str:
    """The few_shot_text prompt: instruction, worked examples and the row as plain text."""
    blocks = [f"{t.question(s)}\n{t.answer_label} {_shot_answer(t, s)}" for s in few_shot_rows(t)]
    return "\n\n".join([_system(t, row), *blocks, f"{t.question(row)}\n{t.answer_label}"])


def default_bos(tokenizer) -> str:
    """The BOS text the tokenizer adds on its own (Gemma, Llama: yes; SmolLM2: none), since the
    harness encodes rendered prompts without special tokens (a chat template writes its own)."""
    ids = tokenizer("a").input_ids
    adds_bos = bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id
    return tokenizer.bos_token if adds_bos else ""


def source(t: Task, row: dict, style: str) -> str | list[dict]:
    """What a row's prompt says under a style before any model's template: `render` without the
    tokenizer (what an evaluation's prompt hash covers, `ftlib.sources`)."""
    if style == "special":
        return special_prompt(t, row)
    if style == "few_shot_text":
        return text_prompt(t, row)
    if style == "chat" and t.fmt == "text":
        return plain_prompt(t, row)
    return messages(t, row, style)


def render(t: Task, row: dict, style: str, tokenizer) -> str:
    """The prompt text a local model continues: the chat template, plain text or the special-token format."""
    if style == "special":
        return special_prompt(t, row)
    if style == "few_shot_text":
        return default_bos(tokenizer) + text_prompt(t, row)
    if style == "chat" and t.fmt == "text":
        return default_bos(tokenizer) + plain_prompt(t, row)
    return tokenizer.apply_chat_template(messages(t, row, style), tokenize=False, add_generation_prompt=True)


def batch(t: Task, rows: list[dict], style: str, tokenizer=None) -> tuple[list, list[str]]:
    """What a generator takes for these rows, and the strings that end an answer: chat messages where
    `tokenizer` is None (a backend that applies the template itself, an API), else the prompt texts
    rendered for that tokenizer."""
    if tokenizer is None:
        return [messages(t, r, style) for r in rows], stop_strings(t, style)
    return [render(t, r, style, tokenizer) for r in rows], stop_strings(t, style)


def stop_strings(t: Task, style: str) -> list[str]:
    """Strings that end an answer besides EOS (cut from the output, as chat APIs do)."""
    if style == "special":
        return ["<END_A>"]
    if style == "few_shot_text":  # a plain-text answer ends where the next example would start
        return list(t.text_stop)
    return list(t.stop)


def sft_example(task: str | Task, row: dict, fmt: str = "chat") -> dict:
    """A row as a TRL prompt-completion example.

    `chat` (default): conversational, the template adds the EOS at the end of the completion.
    `special`: plain text; TRL appends the tokenizer's EOS after `<END_A>`.
    A task declared with fmt "text" trains on its plain prompt (TRL appends the EOS).
    """
    t = tasks.get(task)
    if fmt == "special":
        return {"prompt": special_prompt(t, row), "completion": f"{t.reference(row)}<END_A>"}
    if fmt != "chat":
        raise ValueError(f"unknown format {fmt!r}; expected 'chat' or 'special'")
    if t.fmt == "text":
        return {"prompt": plain_prompt(t, row), "completion": " " + t.reference(row)}
    return {"prompt": messages(t, row, "chat"), "completion": [{"role": "assistant", "content": t.reference(row)}]}


def add_special_tokens(tokenizer, model=None) -> list[int]:
    """Add the case study's four tokens (once) and resize the model's embeddings; return their ids.

    With LoRA, the new embedding rows must be trained and saved too (peft
    `trainable_token_indices=...` with these ids, or `modules_to_save=["embed_tokens", "lm_head"]`).
    """
    tokenizer.add_special_tokens({"extra_special_tokens": list(SPECIAL_TOKENS)},
                                 replace_extra_special_tokens=False)
    if model is not None and model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
