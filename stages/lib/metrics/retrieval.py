"""Retrieval metrics (recall@k, nDCG@k, MRR@k) computed with ``pytrec_eval``.

Inputs are TREC-style dictionaries::

    run   = {qid: {docid: score}}     # higher score = better rank
    qrels = {qid: {docid: relevance}} # graded; relevance > 0 counts as relevant

For each k the run is truncated to its top k documents (ties broken the way trec_eval breaks
them: by docid, descending) and evaluated with ``recall.k``, ``ndcg_cut.k`` and ``recip_rank``;
``recip_rank`` on the truncated run is MRR@k (0 when no relevant document is in the top k).

Which queries count: every query with at least one relevant document in ``qrels``. A query that
is missing from the run (or has an empty ranking) scores 0 on every metric, so a retriever cannot
look better by returning nothing. Queries only in the run are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

DEFAULT_KS = (1, 3, 5, 10, 20)


class RetrievalScores(NamedTuple):
    per_query: dict[str, dict[str, float]]   # qid -> {"recall@5": ..., "ndcg@5": ..., "mrr@5": ...}
    mean: dict[str, float]                   # metric -> mean over the scored queries


def truncate_run(run: Mapping[str, Mapping[str, float]], k: int) -> dict[str, dict[str, float]]:
    """Keep each query's top-k documents (score descending, ties by docid descending as trec_eval).

    >>> truncate_run({"q": {"a": 1.0, "b": 1.0, "c": 3.0}}, 2)
    {'q': {'c': 3.0, 'b': 1.0}}
    >>> truncate_run({"q": {9: 1.0, 10: 1.0}}, 1)     # ids compared as the strings they become
    {'q': {'9': 1.0}}
    """
    out = {}
    for qid, docs in run.items():
        ranked = sorted(docs.items(), key=lambda kv: (kv[1], str(kv[0])), reverse=True)[:k]
        out[qid] = {str(d): float(s) for d, s in ranked}
    return out


def retrieval_scores(run: Mapping[str, Mapping[str, float]],
                     qrels: Mapping[str, Mapping[str, int]],
                     ks: Iterable[int] = DEFAULT_KS) -> RetrievalScores:
    """Per-query and mean recall@k, ndcg@k and mrr@k for each k.

    One query, relevant docs {d1, d3}; ranking d1, d2, d3. At k = 2: recall = 1/2, MRR = 1 (d1 is
    first), nDCG = (1/log2(2)) / (1/log2(2) + 1/log2(3)) = 1 / 1.6309 = 0.6131.

    >>> s = retrieval_scores({"q": {"d1": 3, "d2": 2, "d3": 1}}, {"q": {"d1": 1, "d3": 1}}, ks=[2])
    >>> s.per_query["q"]["recall@2"], s.per_query["q"]["mrr@2"], round(s.mean["ndcg@2"], 4)
    (0.5, 1.0, 0.6131)
    """
    import pytrec_eval

    ks = sorted({int(k) for k in ks})
    qrels = {str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in qrels.items()}
    scored = [q for q, docs in qrels.items() if any(r > 0 for r in docs.values())]
    run = {str(q): docs for q, docs in run.items() if str(q) in qrels and docs}
    per_query: dict[str, dict[str, float]] = {q: {} for q in scored}
    for k in ks:
        evaluator = pytrec_eval.RelevanceEvaluator(
            qrels, {f"recall.{k}", f"ndcg_cut.{k}", "recip_rank"})
        results = evaluator.evaluate(truncate_run(run, k)) if run else {}
        for q in scored:
            res = results.get(q, {})
            per_query[q][f"recall@{k}"] = float(res.get(f"recall_{k}", 0.0))
            per_query[q][f"ndcg@{k}"] = float(res.get(f"ndcg_cut_{k}", 0.0))
            per_query[q][f"mrr@{k}"] = float(res.get("recip_rank", 0.0))
    names = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg", "mrr")]
    mean = {n: (sum(per_query[q][n] for q in scored) / len(scored) if scored else 0.0)
            for n in names}
    return RetrievalScores(per_query, mean)
