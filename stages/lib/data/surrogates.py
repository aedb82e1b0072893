"""Text that cannot be written as UTF-8: JSON allows an escaped half of a surrogate pair
(``"\\ud83d"``, what Python's ``json.dumps`` writes for an emoji cut in half), Python reads it
into a ``str``, and Arrow then refuses the whole table without saying where. The readers check
each record's strings here, so the error names the file, the line and the field."""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.api import DataError

_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(value: Any, key: str = "") -> tuple[str, int, str] | None:
    """The first string in ``value`` (a string, or lists and dicts of them) holding a lone
    surrogate: (its key path, its position, the surrogate as an escape); None when all encode.

    >>> lone_surrogate({"question": "ok", "answers": ["fine", "cut \\ud83d"]})
    ('answers[1]', 4, '\\\\ud83d')
    >>> lone_surrogate(["all", "fine"]) is None
    True
    """
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        return (key, found.start(), f"\\u{ord(found.group()):04x}") if found else None
    if isinstance(value, dict):
        items = ((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{key}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next(filter(None, (lone_surrogate(v, k) for k, v in items)), None)


def check_texts(texts: dict[str, str], where: str) -> None:
    """:func:`check_encodable` for a few plain strings (a passage's title and text), cheaper:
    an ASCII string, most of them, holds no surrogate, and the others are searched in C."""
    if any(not t.isascii() and _SURROGATE.search(t) for t in texts.values()):
        check_encodable(texts, where)


def check_encodable(value: Any, where: str) -> None:
    """Raise a one-line ``DataError`` naming ``where``, the field and the position of the first
    lone surrogate in ``value``. The check of a record that has none (nearly every one) is one
    encoding of its JSON text, in C; only a record that fails is walked to name the field."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
        return
    except UnicodeEncodeError:
        pass
    found = lone_surrogate(value)
    if found is not None:
        key, position, escape = found
        raise DataError(f"{where}: '{key}' holds a lone surrogate {escape} at position {position} "
                        "(half of a character, e.g. an emoji cut in two), which is not UTF-8 "
                        "text; fix or remove it")
