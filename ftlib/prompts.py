"""Task rows -> prompts and completions. (Seed version: the harness issue extends this module.)

The fine-tuning format is TRL's conversational prompt-completion: the prompt is a list of chat
messages, the completion is the assistant message. TRL renders both with the model's chat template,
so the completion ends with the template's end-of-turn token (EOS for SmolLM2: `<|im_end|>`), and
puts the loss on the completion only.
"""

from __future__ import annotations

INSTRUCTIONS = {
    "viggo": "Convert this video game sentence into a meaning representation.",
    "sql": "Write the SQLite query that answers the question, using these tables. "
    "Put the query inside <SQL>...</SQL>.",
    "gsm8k": "Solve this math problem step by step. End with '#### ' followed by the final number.",
}


def user_text(task: str, row: dict) -> str:
    """The user's turn for a task row: instruction, then the input."""
    if task == "viggo":
        body = f"Sentence: {row['target']}"
    elif task == "sql":
        body = f"Tables: {row['context']}\nQuestion: {row['question']}"
    elif task == "gsm8k":
        body = f"Problem: {row['question']}"
    else:
        raise ValueError(f"unknown task {task!r}")
    return f"{INSTRUCTIONS[task]}\n\n{body}"


def reference(task: str, row: dict) -> str:
    """The gold answer text a tuned model should produce for a row."""
    if task == "viggo":
        return row["meaning_representation"]
    if task == "sql":
        return f"<SQL>{row['answer']}</SQL>"
    if task == "gsm8k":
        return row["answer"]
    raise ValueError(f"unknown task {task!r}")


def sft_example(task: str, row: dict) -> dict:
    """A row as TRL's conversational prompt-completion example."""
    return {
        "prompt": [{"role": "user", "content": user_text(task, row)}],
        "completion": [{"role": "assistant", "content": reference(task, row)}],
    }
