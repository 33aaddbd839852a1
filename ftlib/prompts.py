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
import re

STYLES = ("chat", "zero_shot", "few_shot", "few_shot_text", "special")
SPECIAL_TOKENS = ("<START_Q>", "<END_Q>", "<START_A>", "<END_A>")

# Gold answers' token lengths on the test sets (99th pct / max): viggo 73/80, sql 127/179 (plus
# the <SQL> tags), gsm8k 287/415. The caps leave room for the 99th percentile and then some;
# longer outputs are almost always a model that never stops.
MAX_NEW_TOKENS = {"viggo": 96, "sql": 160, "gsm8k": 320}

INSTRUCTIONS = {
    "viggo": "Convert this video game sentence into a meaning representation.",
    "sql": "Write the SQLite query that answers the question, using these tables. "
    "Put the query inside <SQL>...</SQL>.",
    "gsm8k": "Solve this math problem step by step. End with '#### ' followed by the final number.",
}

VIGGO_FUNCTIONS = ("inform", "request", "give_opinion", "confirm", "verify_attribute", "suggest",
                   "request_explanation", "recommend", "request_attribute")
VIGGO_ATTRIBUTES = ("name", "exp_release_date", "release_year", "developer", "esrb", "rating",
                    "genres", "player_perspective", "has_multiplayer", "platforms",
                    "available_on_steam", "has_linux_release", "has_mac_release", "specifier")

SYSTEM = {
    "viggo": (
        "Given a target sentence about video games, construct the underlying meaning representation "
        "of the input sentence as a single function with attributes and attribute values.\n"
        f"The function must be one of: {', '.join(VIGGO_FUNCTIONS)}.\n"
        f"The attributes must be one of: {', '.join(VIGGO_ATTRIBUTES)}.\n"
        "List the attributes in that order, each as attribute[value], and only those the sentence "
        "mentions. Answer with the meaning representation only, on one line, like "
        "request(has_multiplayer[yes], specifier[fast-paced])."
    ),
    "sql": (
        "You write SQLite queries. Given CREATE TABLE statements and a question, answer with one "
        "SQL query that answers the question, inside <SQL>...</SQL>, and nothing else."
    ),
    "gsm8k": (
        "You solve grade-school math word problems. Reason step by step, then write the final "
        "answer as a number on its own line after '#### ', for example:\n#### 42"
    ),
}
# few_shot_text: the line that introduces an answer
ANSWER_LABEL = {"viggo": "Meaning representation:", "sql": "Query:", "gsm8k": "Solution:"}
FEW_SHOT_COUNT = {"sql": 3, "gsm8k": 3}  # viggo: one per function (9), as in the case study


def question(task: str, row: dict) -> str:
    """The input part of a row, without any instruction."""
    if task == "viggo":
        return f"Sentence: {row['target']}"
    if task == "sql":
        return f"Tables: {row['context']}\nQuestion: {row['question']}"
    if task == "gsm8k":
        return f"Problem: {row['question']}"
    raise ValueError(f"unknown task {task!r}")


def user_text(task: str, row: dict) -> str:
    """The user's turn of the `chat` style: instruction, then the input."""
    return f"{INSTRUCTIONS[task]}\n\n{question(task, row)}"


def reference(task: str, row: dict) -> str:
    """The gold answer text a tuned model should produce for a row."""
    if task == "viggo":
        return row["meaning_representation"]
    if task == "sql":
        return f"<SQL>{row['answer']}</SQL>"
    if task == "gsm8k":
        return row["answer"]
    raise ValueError(f"unknown task {task!r}")


def _shot_answer(task: str, row: dict) -> str:
    """A worked example's answer; GSM8K's calculator notes `<<4*2=8>>` are dropped for readability."""
    ans = reference(task, row)
    return re.sub(r"<<[^>]*>>", "", ans) if task == "gsm8k" else ans


@functools.cache
def few_shot_rows(task: str) -> tuple[dict, ...]:
    """Worked examples from the TRAIN split, chosen deterministically.

    ViGGO: the first train row of each of the 9 functions (in the functions' listed order).
    SQL and GSM8K: the first few train rows.
    """
    from ftlib import data

    rows = data.load_rows(task, "train")
    if task == "viggo":
        first = {}
        for r in rows:
            first.setdefault(r["meaning_representation"].split("(", 1)[0].strip(), r)
        return tuple(first[f] for f in VIGGO_FUNCTIONS)
    return tuple(rows[: FEW_SHOT_COUNT[task]])


def messages(task: str, row: dict, style: str = "chat") -> list[dict]:
    """The chat messages that ask a model for a row's answer (for chat APIs and local models)."""
    if style == "chat":
        return [{"role": "user", "content": user_text(task, row)}]
    if style not in ("zero_shot", "few_shot"):
        raise ValueError(f"style {style!r} has no chat form; expected one of chat, zero_shot, few_shot "
                         "(few_shot_text and special are for local models)")
    out = [{"role": "system", "content": SYSTEM[task]}]
    if style == "few_shot":
        for shot in few_shot_rows(task):
            out.append({"role": "user", "content": question(task, shot)})
            out.append({"role": "assistant", "content": _shot_answer(task, shot)})
    out.append({"role": "user", "content": question(task, row)})
    return out


def special_prompt(task: str, row: dict) -> str:
    """The case study's prompt: `<START_Q>{question}<END_Q><START_A>` (the model writes the rest)."""
    return f"<START_Q>{question(task, row)}<END_Q><START_A>"


def text_prompt(task: str, row: dict) -> str:
    """The few_shot_text prompt: instruction, worked examples and the row as plain text."""
    blocks = [f"{question(task, s)}\n{ANSWER_LABEL[task]} {_shot_answer(task, s)}" for s in few_shot_rows(task)]
    return "\n\n".join([SYSTEM[task], *blocks, f"{question(task, row)}\n{ANSWER_LABEL[task]}"])


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
    return tokenizer.apply_chat_template(messages(task, row, style), tokenize=False,
                                         add_generation_prompt=True)


def stop_strings(task: str, style: str) -> list[str]:
    """Strings that end an answer besides EOS (cut from the output, as chat APIs do)."""
    if style == "special":
        return ["<END_A>"]
    if style == "few_shot_text":  # a plain-text answer ends where the next example would start
        return ["\n\n", "\nProblem:"] if task == "gsm8k" else ["\n"]
    return []


def sft_example(task: str, row: dict, fmt: str = "chat") -> dict:
    """A row as a TRL prompt-completion example.

    `chat` (default): conversational, the template adds the EOS at the end of the completion.
    `special`: plain text; TRL appends the tokenizer's EOS after `<END_A>`.
    """
    if fmt == "special":
        return {"prompt": special_prompt(task, row), "completion": f"{reference(task, row)}<END_A>"}
    if fmt != "chat":
        raise ValueError(f"unknown format {fmt!r}; expected 'chat' or 'special'")
    return {
        "prompt": [{"role": "user", "content": user_text(task, row)}],
        "completion": [{"role": "assistant", "content": reference(task, row)}],
    }


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
