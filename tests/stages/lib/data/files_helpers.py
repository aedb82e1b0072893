"""What the data reader tests share: writing input files, and expecting a one-line DataError."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import DataError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path, records):
    return write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def raises(match_all, fn, *args, **kwargs):
    """Call ``fn`` expecting a DataError whose one-line message contains every string given."""
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    msg = info.value.message
    assert "\n" not in msg, msg
    for part in match_all:
        assert part in msg, f"{part!r} not in {msg!r}"
    return msg
