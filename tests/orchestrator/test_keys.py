"""Cache keys of tasks and the explanation of a changed key."""

from __future__ import annotations

from orchestrator.hashing import key_of
from orchestrator.keys import explain, material, task_key


def test_keys_and_explanations():
    a = material("dpo", 1, {"beta": 0.1}, {"pairs": "h1"}, None)
    b = material("dpo", 2, {"beta": 0.1}, {"pairs": "h2"}, None)
    assert task_key(a) == task_key(dict(a)) and task_key(a) != task_key(b)
    assert explain(a, b, {"pairs": "upstream 'pairs.out'"}) == (
        "code version 1 -> 2; upstream 'pairs.out' changed")
    assert key_of({"b": 1, "a": 2}) == key_of({"a": 2, "b": 1})
