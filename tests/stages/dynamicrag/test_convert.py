"""``dynamicrag.convert`` called directly: reranker BC and generator SFT conversations."""

import pytest

from stages.dynamicrag.convert import ConvertConfig, convert
from stages.dynamicrag.prompts import shipped_prompts
from stages.dynamicrag.schemas import BCTargets
from stages.lib.prompts import format_passages
from stages.schemas import Chat, Reranked
from tests.stages.conftest import prompt_file
from tests.stages.dynamicrag.rows import question

PROMPTS = (prompt_file("reranker"), prompt_file("generator"))


def test_convert(env, monkeypatch):
    from orchestrator.artifacts import Table

    table, written, ctx = env
    item = question("a", [False, True, False, True])
    bc_rows = [{**item, "sequence": [4, 2, 1], "sequence_length": 3},
               {**item, "sequence": [], "sequence_length": 0},
               {**item, "sequence": [4], "sequence_length": 1}]       # 4 > num_docs 3: dropped
    sft_rows = [question("s", [True, False, True], answers=["", " Paris "]),
                question("x", [True], answers=[" "])]                 # no usable answer: skipped
    extra = [{"id": "alpaca-1", "task": "alpaca",
              "messages": [{"role": "user", "content": "hi"},
                           {"role": "assistant", "content": "hello"}]}]
    cfg = ConvertConfig(num_docs=3, max_generator_docs=1, seed=0)
    inputs = table(BCTargets, bc_rows), table(Reranked, sft_rows)
    with monkeypatch.context() as m:    # its inputs are streamed: the released file's 100,000
        # BC and SFT questions with 40 passages each are never all Python rows at once
        m.setattr(Table, "rows", lambda *a, **k: pytest.fail("convert read a whole input"))
        out = convert(*inputs, *PROMPTS, cfg, ctx("convert"), extra=table(Chat, extra))
    rows = written(Chat, out)
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == ["a:reranker:0", "alpaca-1", "s:generator"]
    assert [by_id[i]["task"] for i in sorted(by_id)] == ["reranker", "extra", "generator"]
    rer = by_id["a:reranker:0"]["messages"]
    assert [m["role"] for m in rer] == ["system", "user", "assistant"]
    assert rer[2]["content"] == "None"
    assert rer[1]["content"].endswith(format_passages(shipped_prompts().reranker,
                                                    item["ctxs"][:3]))
    gen = by_id["s:generator"]["messages"]
    assert gen[1]["content"].endswith("Retrieved Content:\n1. Topic: T1\nContent: text 1")
    assert gen[2] == {"role": "assistant", "content": "Paris"}
    assert by_id["alpaca-1"]["messages"] == extra[0]["messages"]


def test_convert_reranker_target(env):
    table, written, ctx = env
    item = question("a", [False, True, False, True])
    rows = written(Chat, convert(table(BCTargets, [{**item, "sequence": [4, 2, 1],
                                                    "sequence_length": 3}]),
                                 table(Reranked, []), *PROMPTS, ConvertConfig(),
                                 ctx("convert")))
    assert rows[0]["messages"][2]["content"] == "[4], [2], [1]"


def test_convert_generator_row_lists_a_questions_options(env):
    table, written, ctx = env
    item = {**question("m", [True, False], answers=["B"]), "choices": ["iron", "wood"]}
    rows = written(Chat, convert(table(BCTargets, []), table(Reranked, [item]), *PROMPTS,
                                 ConvertConfig(), ctx("convert")))
    (gen,) = [r["messages"] for r in rows if r["task"] == "generator"]
    assert f"{item['question']}\nA: iron\nB: wood" in gen[1]["content"]
    assert gen[2] == {"role": "assistant", "content": "B"}
