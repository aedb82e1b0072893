"""Rows the DynamicRAG stage tests build: a reranked question, and one with trajectories."""

from __future__ import annotations


def question(qid, labels, answers=("Paris",), dataset="nq", gold=()):
    """A question whose passages ``{qid}-d1``, ``-d2``... carry the relevance ``labels``."""
    ctxs = [{"id": f"{qid}-d{i}", "title": f"T{i}", "text": f"text {i}", "score": 1.0 / i,
             "relevant": r, "rerank_score": None} for i, r in enumerate(labels, start=1)]
    return {"id": qid, "dataset": dataset, "question": f"question {qid}?", "answers": list(answers),
            "gold": list(gold), "ctxs": ctxs}


def trajectories_row(qid, responses, ids, answers=("Paris",)):
    """A question (passage 1 relevant of 3) with one trajectory per (response, selected ids)."""
    row = question(qid, [True, False, False], answers=answers)
    row["trajectories"] = [{"ids": i, "selection": "", "response": r}
                           for r, i in zip(responses, ids)]
    return row
