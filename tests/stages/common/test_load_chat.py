"""``load_chat``: Alpaca instruction data as Chat rows (the paper's joint SFT data)."""

import json

import pytest

from orchestrator.api import DataError, File
from orchestrator.artifacts import Ref
from stages.common.load_chat import LoadChatConfig, load_chat
from stages.schemas import Chat


def file(path):
    return File(Ref("file", File.type_name(), "hash", [str(path)]))


def test_alpaca_records_become_chat_rows(env, tmp_path):
    _, written, ctx = env
    path = tmp_path / "alpaca_data_cleaned_system.json"
    path.write_text(json.dumps([
        {"instruction": "Give a synonym.", "input": "happy", "output": "glad",
         "system": "You are a helpful assistant."},
        {"instruction": "Name a colour.", "input": "", "output": "Blue."},
        {"instruction": "Count.", "output": "1 2 3"}], indent=1))
    rows = written(Chat, load_chat(LoadChatConfig(max_rows=2), ctx("alpaca"), data=file(path)))
    assert [r["task"] for r in rows] == ["alpaca", "alpaca"]
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]
    assert rows[0]["messages"][1]["content"] == "Give a synonym.\nhappy"
    assert rows[1]["messages"] == [{"role": "user", "content": "Name a colour."},
                                   {"role": "assistant", "content": "Blue."}]
    assert load_chat(LoadChatConfig(), ctx("alpaca")) == []          # nothing wired: no rows


def test_bad_records_name_the_line(env, tmp_path):
    _, _, ctx = env
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"instruction": "x", "output": "y"}) + "\n"
                    + json.dumps({"instruction": "x"}) + "\n")
    with pytest.raises(DataError, match=r"a.jsonl line 2: 'output' must be a non-empty string"):
        load_chat(LoadChatConfig(), ctx("alpaca"), data=file(path))


def test_alpaca_as_the_hub_serves_it_in_parquet(env, tmp_path):
    """Before: the Hub's Alpaca (``train-00000-of-00001.parquet``: instruction, input, output,
    text) failed at line 1 with "invalid JSON"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, written, ctx = env
    records = [{"instruction": "Give a synonym.", "input": "happy", "output": "glad",
                "text": "Below is an instruction ..."},
               {"instruction": "Name a colour.", "input": "", "output": ""}]
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    with pytest.raises(DataError, match=r"train-00000-of-00001.parquet row 2: 'output' must be"):
        load_chat(LoadChatConfig(), ctx("alpaca"), data=file(path))
    rows = written(Chat, load_chat(LoadChatConfig(max_rows=1), ctx("alpaca"), data=file(path)))
    assert [(r["id"], r["messages"][0]["content"]) for r in rows] == [
        ("alpaca-1", "Give a synonym.\nhappy")]


def test_sharegpt_and_chat_messages_records(env, tmp_path):
    """LLaMA-Factory's ShareGPT (``conversations`` of ``{from, value}``) and chat ``messages``
    (TRL, OpenAI, most chat sets on the Hub), beside Alpaca in one file. Before: "'instruction'
    must be a non-empty string"."""
    _, written, ctx = env
    path = tmp_path / "mix.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."},
                           {"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}],
         "system": "Be brief."},
        {"messages": [{"role": "user", "content": "Name a colour."},
                      {"role": "assistant", "content": "Blue."}]},
        {"instruction": "Count.", "output": "1 2 3"}]) + "\n")
    rows = written(Chat, load_chat(LoadChatConfig(), ctx("alpaca"), data=file(path)))
    assert [[m["role"] for m in r["messages"]] for r in rows] == [
        ["system", "user", "assistant", "user", "assistant"], ["user", "assistant"],
        ["user", "assistant"]]
    assert rows[0]["messages"][0]["content"] == "Be brief." and rows[1]["id"] == "alpaca-2"

    turns = [{"from": "human", "value": "x"}, {"from": "function_call", "value": "{}"}]
    path.write_text(json.dumps({"conversations": turns}) + "\n")
    with pytest.raises(DataError, match=r"mix.jsonl line 1: conversations\[1\] must be \{from, "
                                        r"value\} with from one of human, user, gpt"):
        load_chat(LoadChatConfig(), ctx("alpaca"), data=file(path))
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n")
    with pytest.raises(DataError, match=r"mix.jsonl line 1: the conversation must end with a "
                                        r"non-empty assistant turn \(it ends with 'user'\)"):
        load_chat(LoadChatConfig(), ctx("alpaca"), data=file(path))
