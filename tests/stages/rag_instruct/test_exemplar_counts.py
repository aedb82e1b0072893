"""stages/rag_instruct/exemplars.py: the summary counts the exemplars kept against the input,
and warns, naming the settings that help, when over a quarter had no retrieved document that
fits their paradigm (audit owndata41 F8: "7 of 7 kept" at INFO when 30 came in)."""

from __future__ import annotations

import logging

from stages.rag_instruct.exemplars import ExemplarsConfig, exemplars
from stages.schemas import Retrieved


def _row(qid: str, answered: bool) -> dict:
    """A question whose first of 4 passages contains its answer, or none of them does."""
    ctxs = [{"id": f"{qid}d{i}", "title": f"T{i}",
             "text": "Velmora is here" if answered and i == 0 else f"filler {i}", "score": 1.0}
            for i in range(4)]
    return {"id": qid, "dataset": "synthkb", "question": f"Where is {qid}?",
            "answers": ["Velmora"], "gold": [], "ctxs": ctxs}


def _run(env, caplog, n_answered: int, n: int) -> list[logging.LogRecord]:
    table, _, ctx = env
    rows = [_row(f"q{i}", i < n_answered) for i in range(n)]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        out = exemplars(ExemplarsConfig(select="has_answer", paradigms=["single_doc_answer"]),
                        ctx("exemplars"), retrieved=table(Retrieved, rows))
    assert len(out) == n_answered
    return [r for r in caplog.records if " kept, by paradigm" in r.getMessage()]


def test_most_exemplars_without_a_fitting_document_warn_and_count_against_the_input(env, caplog):
    (record,) = _run(env, caplog, n_answered=7, n=30)
    text = record.getMessage()
    assert record.levelno == logging.WARNING
    assert text.startswith("exemplars: 7 of 30 kept, by paradigm")
    assert "; 23 had no retrieved document that fits their paradigm (select: has_answer)" in text
    assert "retrieval.exemplar_k; each had at most 4 here" in text
    assert "steps.exemplars.select=relevance" in text


def test_a_few_exemplars_left_out_stay_at_info(env, caplog):
    (record,) = _run(env, caplog, n_answered=9, n=10)
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("exemplars: 9 of 10 kept, by paradigm")
    assert "; 1 had no retrieved document that fits their paradigm" in record.getMessage()
