"""stages/dpa_rag/reranker_data.py on data like a user's own real-fact questions (audit
owndata41 F4): most queries have no positive document (the reader is right without documents,
so none is aligned) or no negative one (it is wrong without, so none is unaligned). The step
warns, in counts, when under a quarter of the queries give a row, and when none does its hint
says whether lowering n_positive / n_negative can help at all."""

from __future__ import annotations

import logging

import pytest

from orchestrator.api import DataError
from stages.dpa_rag.reranker_data import RerankerDataConfig, reranker_data
from stages.dpa_rag.schemas import Knowledge

# (outcome, before F1, after F1) per document of one query
RIGHT = [("both_correct", 1.0, 1.0), ("unaligned", 1.0, 0.0), ("both_correct", 1.0, 1.0)]
WRONG = [("aligned", 0.0, 1.0), ("both_incorrect", 0.0, 0.0), ("both_incorrect", 0.0, 0.0)]
BOTH = [("both_correct", 0.5, 1.0), ("unaligned", 1.0, 0.0), ("unaligned", 1.0, 0.0)]
BOTH_ONE_NEGATIVE = [("both_correct", 0.5, 1.0), ("unaligned", 1.0, 0.0),
                     ("both_correct", 1.0, 1.0)]


def knowledge(queries: list[list[tuple]]) -> list[dict]:
    rows = []
    for q, docs in enumerate(queries):
        for rank, (outcome, before_f1, after_f1) in enumerate(docs, 1):
            rows.append({"id": f"q{q}", "dataset": "nq", "question": f"question {q}?",
                         "answers": [f"answer {q}"], "gold": [], "source_id": f"q{q}",
                         "kind": "original", "rank": rank, "before": "b", "before_em": 0.0,
                         "before_f1": before_f1, "after": "a", "after_em": 0.0,
                         "after_f1": after_f1, "category": outcome,
                         "doc": {"id": f"q{q}d{rank}", "title": f"T{rank}",
                                 "text": f"text {q} {rank}", "score": 1.0 - rank / 10}})
    return rows


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_few_surviving_queries_warn_with_the_counts_of_why(model_env, caplog):
    art, ctx = model_env
    cfg = RerankerDataConfig(n_positive=1, valid_fraction=0)   # the demo's n_positive
    with caplog.at_level(logging.INFO):
        rows = reranker_data(art(Knowledge, knowledge([RIGHT] * 6 + [WRONG] * 3 + [BOTH])), cfg,
                             ctx("reranker_data"))
    assert len(rows) == 1
    (warning,) = _warnings(caplog)
    assert warning.startswith("reranker_data: only 1 of 10 queries give the reranker a row "
                              "(1 train, 0 valid): ")
    assert "6 had no positive document (6 of them answered right without documents, so none " \
           "can be aligned), 3 no negative (3 answered wrong without, so none can be " \
           "unaligned), 0 had both sides but fewer than 1 positive / 2 negative" in warning
    assert "more questions the reader gets wrong without documents" in warning
    assert "retrieval.k, which sets steps.preference.n_docs" in warning
    # a quarter or more give a row: the count stays at INFO, as before
    caplog.clear()
    with caplog.at_level(logging.INFO):
        reranker_data(art(Knowledge, knowledge([RIGHT] * 3 + [BOTH])), cfg, ctx("reranker_data"))
    assert not _warnings(caplog)
    assert "4 queries -> 1 train, 0 valid rows; 3 left out" in caplog.text


def test_no_row_says_whether_lowering_the_counts_can_help(model_env):
    art, ctx = model_env
    one_each = RerankerDataConfig(n_positive=1, n_negative=1)
    with pytest.raises(DataError, match="none of 5 queries has 1 positive and 1 negative "
                                        "documents: 3 had no positive") as e:
        reranker_data(art(Knowledge, knowledge([RIGHT] * 3 + [WRONG] * 2)), one_each,
                      ctx("reranker_data"))
    assert e.value.hint.startswith("no query has both a positive and a negative document, so "
                                   "lowering n_positive / n_negative cannot help")
    assert "retrieval.k" in e.value.hint and "lower steps." not in e.value.hint
    # one query has both sides, one negative short of n_negative 2: lowering it helps
    with pytest.raises(DataError,
                       match="1 had both sides but fewer than 1 positive / 2 negative") as e:
        reranker_data(art(Knowledge, knowledge([RIGHT] * 3 + [BOTH_ONE_NEGATIVE])),
                      RerankerDataConfig(n_positive=1), ctx("reranker_data"))
    assert e.value.hint.startswith("1 queries have both sides, too few of one: lower "
                                   "steps.reranker_data.n_positive / n_negative (to 1)")
