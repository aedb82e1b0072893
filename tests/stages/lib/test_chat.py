"""Chat message helpers."""

import doctest

import pytest

from orchestrator.api import DataError
from stages.lib import chat
from stages.lib.chat import assistant, plain, validate_messages


def test_doctests():
    assert doctest.testmod(chat).failed == 0


def test_builders():
    assert assistant("x") == {"role": "assistant", "content": "x"}
    assert plain([{"role": "user", "content": "q", "extra": 1}]) == [{"role": "user", "content": "q"}]


@pytest.mark.parametrize("value,match", [
    ([], "row 3: 'messages' must be a non-empty list of {role, content} messages, got list"),
    ("hi", "got str"),
    ([{"role": "user"}], r"messages\[0\] must be a dict with 'role' and 'content'"),
    ([{"role": "tool", "content": "x"}], r"messages\[0\] has role 'tool' \(expected one of"),
    ([{"role": "user", "content": 3}], r"messages\[0\] \(user\) content must be a string, got int"),
])
def test_validate_messages_errors(value, match):
    with pytest.raises(DataError, match=match):
        validate_messages(value, "row 3", "messages")
