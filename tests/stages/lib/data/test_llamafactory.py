"""TRL conversational rows → LLaMA-Factory alpaca / sharegpt files and dataset_info.json."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import DataError
from stages.lib.data.llamafactory import (convert, dataset_info_entry, to_alpaca_preference,
                                          to_alpaca_sft, to_sharegpt_preference, to_sharegpt_sft,
                                          write_llamafactory)


def msg(role, content):
    return {"role": role, "content": content}


SFT = {"id": "q1", "task": "generator", "messages": [
    msg("system", "You answer briefly."), msg("user", "u1"), msg("assistant", "a1"),
    msg("user", "u2"), msg("assistant", "a2")]}
PREF = {"id": "q2", "task": "reranker", "prompt": [msg("system", "Rank."), msg("user", "Query: x")],
        "chosen": [msg("assistant", "[1], [2]")], "rejected": [msg("assistant", "None")]}


def test_alpaca_sft_multi_turn_history():
    assert to_alpaca_sft(SFT) == {"instruction": "u2", "input": "", "output": "a2",
                                  "system": "You answer briefly.", "history": [["u1", "a1"]]}


def test_alpaca_preference_explicit_and_implicit_prompt():
    assert to_alpaca_preference(PREF) == {"instruction": "Query: x", "input": "", "chosen": "[1], [2]",
                                          "rejected": "None", "system": "Rank.", "history": []}
    implicit = {"chosen": PREF["prompt"] + PREF["chosen"], "rejected": PREF["prompt"] + PREF["rejected"]}
    assert to_alpaca_preference(implicit) == to_alpaca_preference(PREF)


def test_sharegpt_sft_and_preference():
    assert to_sharegpt_sft(SFT) == {"system": "You answer briefly.", "conversations": [
        {"from": "human", "value": "u1"}, {"from": "gpt", "value": "a1"},
        {"from": "human", "value": "u2"}, {"from": "gpt", "value": "a2"}]}
    assert to_sharegpt_preference(PREF) == {
        "conversations": [{"from": "human", "value": "Query: x"}],
        "chosen": {"from": "gpt", "value": "[1], [2]"}, "rejected": {"from": "gpt", "value": "None"},
        "system": "Rank."}


def test_convert_drops_unused_optional_columns():
    rows = [{"messages": [msg("user", "q"), msg("assistant", "a")]}]
    assert convert(rows, "sft") == [{"instruction": "q", "input": "", "output": "a"}]
    assert convert(rows, "sft", "sharegpt") == [
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]
    with pytest.raises(ValueError, match="kind"):
        convert(rows, "kto")
    with pytest.raises(ValueError, match="formatting"):
        convert(rows, "sft", "openai")


@pytest.mark.parametrize("row, match", [
    ({"id": "r1", "messages": []}, "row 'r1': 'messages' must be a non-empty list"),
    ({"id": "r2", "messages": [msg("user", "q")]}, "row 'r2': messages must be .* ending with assistant"),
    ({"id": "r3", "messages": [msg("assistant", "a"), msg("user", "q")]}, "got roles"),
    ({"id": "r4", "messages": [msg("user", "q"), msg("user", "q"), msg("assistant", "a")]}, "got roles"),
    ({"id": "r5", "messages": [msg("tool", "q")]}, r"messages\[0\] has role 'tool'"),
    ({"id": "r6", "messages": [{"role": "user", "content": 3}]}, r"messages\[0\] \(user\) content must be a string"),
])
def test_sft_errors(row, match):
    with pytest.raises(DataError, match=match):
        to_alpaca_sft(row)


def test_preference_errors():
    bad = {**PREF, "id": "p1", "chosen": [msg("assistant", "a"), msg("assistant", "b")]}
    with pytest.raises(DataError, match="row 'p1': 'chosen' must be one assistant message"):
        to_alpaca_preference(bad)
    implicit = {"id": "p2", "chosen": [msg("user", "x"), msg("assistant", "a")],
                "rejected": [msg("user", "y"), msg("assistant", "b")]}
    with pytest.raises(DataError, match="row 'p2': without 'prompt'"):
        to_sharegpt_preference(implicit)
    ends_with_assistant = {**PREF, "id": "p3", "prompt": [msg("user", "x"), msg("assistant", "a")]}
    with pytest.raises(DataError, match="ending with user"):
        to_alpaca_preference(ends_with_assistant)


def test_dataset_info_entries():
    assert dataset_info_entry("a.jsonl", "sft", "alpaca", ["system", "history"]) == {
        "file_name": "a.jsonl", "formatting": "alpaca",
        "columns": {"prompt": "instruction", "query": "input", "response": "output",
                    "system": "system", "history": "history"}}
    entry = dataset_info_entry("b.jsonl", "dpo", "sharegpt", ["system"])
    assert entry["ranking"] is True
    assert entry["columns"] == {"messages": "conversations", "chosen": "chosen",
                                "rejected": "rejected", "system": "system"}
    assert entry["tags"] == {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                             "assistant_tag": "gpt", "system_tag": "system"}


def test_write_llamafactory_shares_dataset_info(tmp_path):
    sft_path = write_llamafactory(tmp_path / "lf", "ragline_sft", [SFT], "sft")
    pref_path = write_llamafactory(tmp_path / "lf", "ragline_dpo", [PREF, PREF], "preference", "sharegpt")
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    assert set(info) == {"ragline_sft", "ragline_dpo"}
    assert info["ragline_sft"]["file_name"] == sft_path.name == "ragline_sft.jsonl"
    assert "ranking" not in info["ragline_sft"]
    assert info["ragline_sft"]["columns"]["history"] == "history"
    assert info["ragline_dpo"]["ranking"] is True and info["ragline_dpo"]["formatting"] == "sharegpt"
    rows = [json.loads(line) for line in pref_path.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["chosen"] == {"from": "gpt", "value": "[1], [2]"}
    sft_rows = [json.loads(line) for line in sft_path.read_text().splitlines()]
    assert sft_rows == [to_alpaca_sft(SFT)]
    # every column the entry names exists in the records
    for name, path in (("ragline_sft", sft_path), ("ragline_dpo", pref_path)):
        record = json.loads(path.read_text().splitlines()[0])
        assert set(info[name]["columns"].values()) <= set(record)
