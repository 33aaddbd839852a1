"""Task rows -> prompts and completions, in every format the project uses.

Styles (what `messages` / `render` take):
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

STYLES = ("chat", "zero_shot", "few_shot", "few_shot_text", "special")
SPECIAL_TOKENS = ("<START_Q>", "<END_Q>", "<START_A>", "<END_A>")


def question(task: str, row: dict) -> str:
    """The input part of a row, without any instruction."""
    return tasks.get(task).question(row)


def user_text(task: str, row: dict) -> str:
    """The user's turn of the `chat` style: instruction, then the input."""
    return f"{tasks.get(task).instruction}\n\n{question(task, row)}"


def reference(task: str, row: dict) -> str:
    """The gold answer text a tuned model should produce for a row."""
    return tasks.get(task).reference(row)


def max_new_tokens(task: str) -> int:
    """How many tokens an answer may take (the task's declaration says)."""
    return tasks.get(task).max_new_tokens


def _shot_answer(task: str, row: dict) -> str:
    """A worked example's answer (GSM8K drops its calculator notes `<<4*2=8>>` for readability)."""
    t = tasks.get(task)
    return (t.shot_answer or t.reference)(row)


def few_shot_rows(task: str) -> tuple[dict, ...]:
    """Worked examples from the TRAIN split, chosen deterministically by the task's declaration
    (ViGGO: the first train row of each of the 9 functions; others: the first few train rows)."""
    return _few_shot_rows(tasks.get(task))


@functools.cache
def _few_shot_rows(t: tasks.Task) -> tuple[dict, ...]:
    rows = t.load("train")
    return tuple(t.few_shot(rows) if callable(t.few_shot) else rows[: t.few_shot])


def _system(task: str, row: dict) -> str:
    """The untuned prompt's system turn: the task's, plus a row's own (chat rows of a user's task)."""
    return "\n\n".join(x for x in (tasks.get(task).system, row.get("system")) if x)


def messages(task: str, row: dict, style: str = "chat") -> list[dict]:
    """The chat messages that ask a model for a row's answer (for chat APIs and local models)."""
    if style == "chat":
        own = [{"role": "system", "content": row["system"]}] if row.get("system") else []
        return [*own, {"role": "user", "content": user_text(task, row)}]
    if style not in ("zero_shot", "few_shot"):
        raise ValueError(f"style {style!r} has no chat form; expected one of chat, zero_shot, few_shot "
                         "(few_shot_text and special are for local models)")
    out = [{"role": "system", "content": _system(task, row)}]
    if style == "few_shot":
        for shot in few_shot_rows(task):
            out.append({"role": "user", "content": question(task, shot)})
            out.append({"role": "assistant", "content": _shot_answer(task, shot)})
    out.append({"role": "user", "content": question(task, row)})
    return out


def special_prompt(task: str, row: dict) -> str:
    """The case study's prompt: `<START_Q>{question}<END_Q><START_A>` (the model writes the rest)."""
    return f"<START_Q>{question(task, row)}<END_Q><START_A>"


def plain_prompt(task: str, row: dict) -> str:
    """The tuned prompt of a plain-text task (fmt "text"): instruction, the input, the answer label."""
    t = tasks.get(task)
    return f"{t.instruction}\n\n{question(task, row)}\n{t.answer_label}"


def text_prompt(task: str, row: dict) -> str:
    """The few_shot_text prompt: instruction, worked examples and the row as plain text."""
    label = tasks.get(task).answer_label
    blocks = [f"{question(task, s)}\n{label} {_shot_answer(task, s)}" for s in few_shot_rows(task)]
    return "\n\n".join([_system(task, row), *blocks, f"{question(task, row)}\n{label}"])


def default_bos(tokenizer) -> str:
    """The BOS text the tokenizer adds on its own (Gemma, Llama: yes; SmolLM2: none), since the
    harness encodes rendered prompts without special tokens (a chat template writes its own)."""
    ids = tokenizer("a").input_ids
    adds_bos = bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id
    return tokenizer.bos_token if adds_bos else ""


def render(task: str, row: dict, style: str, tokenizer) -> str:
    """The prompt text a local model continues: the chat template, plain text or the special-token format."""
    if style == "special":
        return special_prompt(task, row)
    if style == "few_shot_text":
        return default_bos(tokenizer) + text_prompt(task, row)
    if style == "chat" and tasks.get(task).fmt == "text":
        return default_bos(tokenizer) + plain_prompt(task, row)
    return tokenizer.apply_chat_template(messages(task, row, style), tokenize=False,
                                         add_generation_prompt=True)


def stop_strings(task: str, style: str) -> list[str]:
    """Strings that end an answer besides EOS (cut from the output, as chat APIs do)."""
    if style == "special":
        return ["<END_A>"]
    if style == "few_shot_text":  # a plain-text answer ends where the next example would start
        return ["\n\n", "\nProblem:"] if tasks.name(task) == "gsm8k" else ["\n"]
    return list(tasks.get(task).stop)


def sft_example(task: str, row: dict, fmt: str = "chat") -> dict:
    """A row as a TRL prompt-completion example.

    `chat` (default): conversational, the template adds the EOS at the end of the completion.
    `special`: plain text; TRL appends the tokenizer's EOS after `<END_A>`.
    A task declared with fmt "text" trains on its plain prompt (TRL appends the EOS).
    """
    if fmt == "special":
        return {"prompt": special_prompt(task, row), "completion": f"{reference(task, row)}<END_A>"}
    if fmt != "chat":
        raise ValueError(f"unknown format {fmt!r}; expected 'chat' or 'special'")
    if tasks.get(task).fmt == "text":
        return {"prompt": plain_prompt(task, row), "completion": " " + reference(task, row)}
    return {"prompt": messages(task, row, "chat"),
            "completion": [{"role": "assistant", "content": reference(task, row)}]}


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
