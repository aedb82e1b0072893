"""Chat messages (TRL's conversational format): ``[{"role": ..., "content": ...}, ...]``.

The one place that builds, normalises and validates messages, used by the generators, the
trainers, the LLaMA-Factory export and the recipes' conversation builders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.api import DataError

ROLES = ("system", "user", "assistant")

Message = dict[str, str]


def message(role: str, content: str) -> Message:
    """One message.

    >>> message("user", "who?")
    {'role': 'user', 'content': 'who?'}
    """
    return {"role": role, "content": content}


def assistant(text: str) -> Message:
    """An assistant message: a training target or a completion.

    >>> assistant("[1], [3]")
    {'role': 'assistant', 'content': '[1], [3]'}
    """
    return message("assistant", text)


def plain(conversation: Sequence[dict]) -> list[Message]:
    """Messages reduced to ``role`` and ``content`` (a table row's struct may carry more).

    >>> plain([{"role": "user", "content": "hi", "name": None}])
    [{'role': 'user', 'content': 'hi'}]
    """
    return [message(m["role"], m["content"]) for m in conversation]


def validate_messages(value: Any, where: str, field: str) -> list[Message]:
    """A non-empty message list with known roles and string contents, normalised by
    :func:`plain`; raises ``DataError`` naming ``where`` (a row) and ``field`` otherwise.

    >>> validate_messages([{"role": "user", "content": "hi"}], "row 0", "prompt")
    [{'role': 'user', 'content': 'hi'}]
    >>> validate_messages([{"role": "bot", "content": "hi"}], "row 0", "prompt")
    Traceback (most recent call last):
    ...
    orchestrator.errors.DataError: row 0: prompt[0] has role 'bot' (expected one of ['system', 'user', 'assistant'])
    """
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(f"{where}: '{field}' must be a non-empty list of {{role, content}} "
                        f"messages, got {type(value).__name__}")
    for j, msg in enumerate(value):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise DataError(f"{where}: {field}[{j}] must be a dict with 'role' and 'content'")
        if msg["role"] not in ROLES:
            raise DataError(f"{where}: {field}[{j}] has role {msg['role']!r} (expected one of "
                            f"{list(ROLES)})")
        if not isinstance(msg["content"], str):
            raise DataError(f"{where}: {field}[{j}] ({msg['role']}) content must be a string, "
                            f"got {type(msg['content']).__name__}")
    return plain(value)
