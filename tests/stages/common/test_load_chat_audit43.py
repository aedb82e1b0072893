"""``load_chat``: Alpaca ``history``, non-string fields, fields not read and the ids of a one-line
array (data audit 43, finding 9)."""

import json
import logging

import pytest

from orchestrator.api import DataError, File
from orchestrator.artifacts import Ref
from stages.common.load_chat import LoadChatConfig, load_chat
from stages.schemas import Chat


def file(path):
    return File(Ref("file", File.type_name(), "hash", [str(path)]))


def test_alpaca_history_becomes_the_earlier_turns(env, tmp_path):
    """Data audit 43, finding 9: LLaMA-Factory's alpaca ``history`` (which ragline's own
    ``to_alpaca_sft`` writes) was dropped without a word: the row held only the last turn."""
    _, written, ctx = env
    path = tmp_path / "alpaca_hist.json"
    path.write_text(json.dumps([{"instruction": "And in 2008?", "input": "", "output": "12",
                                 "system": "Answer briefly.",
                                 "history": [["How many in 2007?", "10"], ["And 2006?", "9"]]}]))
    rows = written(Chat, load_chat(LoadChatConfig(), ctx("chat"), data=file(path)))
    assert [(m["role"], m["content"]) for m in rows[0]["messages"]] == [
        ("system", "Answer briefly."), ("user", "How many in 2007?"), ("assistant", "10"),
        ("user", "And 2006?"), ("assistant", "9"), ("user", "And in 2008?"),
        ("assistant", "12")]


@pytest.mark.parametrize("record, message", [
    ({"instruction": "Add", "input": 5, "output": "y"},
     r"a.jsonl line 1: 'input' must be a string, got int \(5\)"),
    ({"instruction": "x", "output": "y", "system": ["a"]},
     r"a.jsonl line 1: 'system' must be a string, got list"),
    ({"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}],
      "system": 3}, r"a.jsonl line 1: 'system' must be a string, got int"),
    ({"instruction": "x", "output": "y", "history": [["only one"]]},
     r"a.jsonl line 1: history\[0\] must be a pair of strings"),
    ({"instruction": "x", "output": "y", "history": "earlier"},
     r"a.jsonl line 1: 'history' must be a list of \[instruction, output\] pairs"),
])
def test_non_string_fields_are_refused_naming_line_and_key(env, tmp_path, record, message):
    """Data audit 43, finding 9: an ``input`` of 5 was dropped without a word, and a non-string
    ``system`` failed later at the Chat schema check without file or line."""
    _, _, ctx = env
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(DataError, match=message) as err:
        load_chat(LoadChatConfig(), ctx("chat"), data=file(path))
    assert "\n" not in str(err.value)


def test_one_line_array_ids_and_fields_not_read(env, tmp_path, caplog):
    """Data audit 43, finding 9: every record of a one-line JSON array got the id ``alpaca-1``,
    and fields the reader does not take (``text``, ``id``) were dropped without a warning."""
    _, written, ctx = env
    path = tmp_path / "one_line.json"
    path.write_text(json.dumps([{"instruction": f"q{i}", "output": f"a{i}", "text": "formatted"}
                                for i in range(3)] + [{"instruction": "q", "output": "a",
                                                       "id": "x7"}]))
    with caplog.at_level(logging.WARNING, logger="test.chat"):
        rows = written(Chat, load_chat(LoadChatConfig(), ctx("chat"), data=file(path)))
    assert [r["id"] for r in rows] == ["alpaca-1", "alpaca-2", "alpaca-3", "alpaca-4"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "not read, dropped: id (in 1 of 4 records), text (in 3 of 4 records)" in warnings[0]
    path.write_text(json.dumps([{"instruction": "x", "output": "y"},
                                {"instruction": "x", "input": 5, "output": "y"}]))
    with pytest.raises(DataError, match=r"one_line.json line 1, element 2: 'input' must be"):
        load_chat(LoadChatConfig(), ctx("chat"), data=file(path))
