"""``export_llamafactory`` called directly.

Inputs are real handles (files, tables written by the orchestrator's writer) and every output is
written back through it, so a row that does not fit the declared schema fails here.
"""

from __future__ import annotations

import json

from orchestrator.api import Directory
from stages.common.export import ExportConfig, export_llamafactory
from stages.schemas import Chat, Preferences


def chat(qid, task):
    return {"id": qid, "task": task, "messages": [
        {"role": "system", "content": "sys"}, {"role": "user", "content": f"Query: {qid}"},
        {"role": "assistant", "content": "answer"}]}


def pref(qid, task):
    return {"id": qid, "task": task, "prompt": [{"role": "user", "content": f"Query: {qid}"}],
            "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad"}]}


def test_export_llamafactory(env):
    table, written, ctx = env
    sft = table(Chat, [chat("a", "reranker"), chat("b", "generator")])
    prefs = table(Preferences, [pref("c", "generator")])
    path = export_llamafactory(sft, ExportConfig(), ctx("export"), prefs)
    info = json.loads((path / "dataset_info.json").read_text())
    assert set(info) == {"ragline_sft", "ragline_dpo"} and info["ragline_dpo"]["ranking"] is True
    rows = [json.loads(x) for x in (path / "ragline_sft.jsonl").read_text().splitlines()]
    assert rows[0] == {"instruction": "Query: a", "input": "", "output": "answer", "system": "sys"}
    assert "ragline_sft" in (path / "README.md").read_text()
    ref = written(Directory, path)  # the runner's writer accepts (and moves) the directory
    assert ref.kind == "dir"

    split = export_llamafactory(sft, ExportConfig(formatting="sharegpt", name="dyn", split_by_task=True),
                                ctx("export"))
    info = json.loads((split / "dataset_info.json").read_text())
    assert set(info) == {"dyn_reranker_sft", "dyn_generator_sft"}
    assert info["dyn_reranker_sft"]["formatting"] == "sharegpt"
    empty = export_llamafactory(table(Chat, []), ExportConfig(), ctx("export"))
    assert json.loads((empty / "dataset_info.json").read_text()) == {}
