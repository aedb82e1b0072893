"""``dpa_rag.reranker_data`` and ``dpa_rag.prealign`` read the preference knowledge one query at
a time (memory audit 44: at the paper's 212,000 queries x 100 documents, both held the 21
million rows as Python dicts, about 72-77 GB; at 6,000 queries x 100 documents of 100 words,
2.0 GB against 0.22 GB now, outputs identical). A query whose rows are not together is named."""

from __future__ import annotations

import pytest

from orchestrator.api import DataError
from orchestrator.artifacts import Table
from stages.dpa_rag.prealign import PrealignConfig, prealign
from stages.dpa_rag.reranker_data import RerankerDataConfig, reranker_data
from stages.dpa_rag.schemas import Knowledge
from tests.stages.conftest import prompt_file
from tests.stages.dpa_rag.test_data_stages import knowledge


def test_the_knowledge_is_never_read_whole(model_env, monkeypatch):
    art, ctx = model_env
    table = art(Knowledge, knowledge(6))

    def whole(*args, **kwargs):
        raise AssertionError("the whole knowledge table was read as Python rows")

    monkeypatch.setattr(Table, "rows", whole)
    rows = reranker_data(table, RerankerDataConfig(), ctx("reranker_data"))
    assert [r["id"] for r in rows] == [f"q{q}" for q in range(6)]
    chat = prealign(table, prompt_file("prealign", "dpa_rag"), PrealignConfig(per_query=1),
                    ctx("prealign"))
    assert [r["id"].split("@")[0] for r in chat] == [f"q{q}" for q in range(6)]


def test_a_query_whose_rows_are_apart_is_named(model_env):
    art, ctx = model_env
    rows = knowledge(2)
    apart = rows[:1] + rows[len(rows) // 2:] + rows[1:len(rows) // 2]   # q0, q1..., q0 again
    for run in (lambda t: reranker_data(t, RerankerDataConfig(), ctx("reranker_data")),
                lambda t: prealign(t, prompt_file("prealign", "dpa_rag"), PrealignConfig(),
                                   ctx("prealign"))):
        with pytest.raises(DataError, match="the documents of query 'q0' are not together"):
            run(art(Knowledge, apart))


def test_generator_data_streams_its_queries(model_env, monkeypatch):
    """Memory audit 44, finding 6: ``generator_data`` held every (augmented) query as a Python
    row (about 11 GB for the paper's 1.27M augmented queries); it reads them a batch at a time."""
    from stages.dpa_rag.generator_data import GeneratorDataConfig, generator_data
    from stages.schemas import Retrieved

    art, ctx = model_env
    docs = [{"id": f"d{i}", "title": f"T{i}", "text": f"passage {i}", "score": 0.5}
            for i in range(3)]
    table = art(Retrieved, [{"id": f"q{i}", "dataset": "nq", "question": f"who {i}?",
                             "answers": [f"A{i}"], "gold": [], "ctxs": docs,
                             "kind": "original"} for i in range(5)])
    monkeypatch.setattr(Table, "rows", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("the queries were read whole as Python rows")))
    out = generator_data(table, prompt_file("rag", "common"), GeneratorDataConfig(k=2),
                         ctx("generator_data"))
    assert [r["messages"][-1]["content"] for r in out] == [f"A{i}" for i in range(5)]
