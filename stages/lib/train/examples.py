"""Table rows -> TRL training examples, checked row by row (errors name the row and its id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.api import DataError
from stages.lib.chat import validate_messages


def row_name(row: Any, index: int) -> str:
    rid = row.get("id") if isinstance(row, dict) else None
    return f"row {index}" + (f" (id {rid!r})" if rid is not None else "")


def sft_examples(rows: Sequence[dict], loss_on: str) -> list[dict]:
    """Chat rows -> TRL examples: prompt-completion for ``loss_on="completion"``, else messages."""
    if rows is None or len(rows) == 0:
        raise DataError("sft: the training set is empty (0 chat rows)",
                        hint="check the step that produces the Chat table")
    examples = []
    for i, row in enumerate(rows):
        where = f"sft {row_name(row, i)}"
        if not isinstance(row, dict) or "messages" not in row:
            raise DataError(f"{where}: missing field 'messages' (expected id, task, messages)")
        msgs = validate_messages(row["messages"], where, "messages")
        last = max((j for j, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None:
            raise DataError(f"{where}: no assistant turn to train on "
                            f"(roles: {[m['role'] for m in msgs]})")
        if loss_on != "completion":
            examples.append({"messages": msgs})
            continue
        if last != len(msgs) - 1:
            raise DataError(f"{where}: the last message must be the assistant answer, got "
                            f"{msgs[-1]['role']!r} after it")
        if last == 0:
            raise DataError(f"{where}: the assistant answer has no prompt before it")
        examples.append({"prompt": msgs[:last], "completion": msgs[last:]})
    return examples


def dpo_examples(rows: Sequence[dict]) -> tuple[list[dict], int]:
    """Preference rows -> TRL conversational pairs, and how many identical pairs were dropped."""
    if rows is None or len(rows) == 0:
        raise DataError("dpo: the training set is empty (0 preference pairs)",
                        hint="check the step that produces the Preferences table (and its task filter)")
    examples, identical = [], 0
    for i, row in enumerate(rows):
        where = f"dpo {row_name(row, i)}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a dict with prompt, chosen, rejected")
        for field in ("prompt", "chosen", "rejected"):
            if field not in row:
                raise DataError(f"{where}: missing field '{field}' (expected id, task, prompt, "
                                "chosen, rejected)")
        pair = {f: validate_messages(row[f], where, f) for f in ("prompt", "chosen", "rejected")}
        if pair["prompt"][-1]["role"] == "assistant":
            raise DataError(f"{where}: the prompt must end with a user turn, not an assistant turn")
        for field in ("chosen", "rejected"):
            if pair[field][-1]["role"] != "assistant":
                raise DataError(f"{where}: '{field}' must end with an assistant turn, got "
                                f"{pair[field][-1]['role']!r}")
        if pair["chosen"] == pair["rejected"]:
            identical += 1
            continue
        examples.append(pair)
    if not examples:
        raise DataError(f"dpo: all {len(rows)} pairs have identical chosen and rejected answers")
    return examples, identical


def prompt_tokens(tokenizer, messages: list[dict]) -> int:
    """Tokens of ``messages`` rendered as a prompt (chat template, generation header included)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def keep_prompt_end(messages: list[dict], tokenizer, max_tokens: int) -> list[dict]:
    """Cut tokens from the start of the messages' content until the rendered prompt has at most
    ``max_tokens`` tokens: the end of the prompt survives, and so does every role header (the
    model still sees a well-formed chat). A message cut to nothing stays, with empty content;
    the headers alone may exceed ``max_tokens`` (then the pair is dropped by ``max_length``).

    Example: a 300-token system prompt plus a 40-token question with ``max_tokens=100`` loses
    the first ~240 content tokens of the system prompt; the question is kept whole.
    """
    out = [dict(m) for m in messages]
    for msg in out:
        for _ in range(3):  # a cut can re-tokenise a token or two longer: cut again
            excess = prompt_tokens(tokenizer, out) - max_tokens
            if excess <= 0:
                return out
            ids = tokenizer(msg["content"], add_special_tokens=False)["input_ids"]
            msg["content"] = tokenizer.decode(ids[excess:]) if excess < len(ids) else ""
            if not msg["content"]:
                break
    return out
