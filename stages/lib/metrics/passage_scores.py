"""Scores of the passages each question was given (its ``ctxs``, in rank order), shared by
``evaluate`` (after generation) and ``evaluate_retrieval`` (the retriever alone).

Each function adds its per-question values to the records of ``per_question`` (one per row, in
the same order) and returns the names it added, so that the caller averages them: pytrec_eval's
recall/nDCG/MRR@k against gold passage ids (:mod:`stages.lib.metrics.retrieval`), and DPR's
top-k accuracy against the gold answers (:mod:`stages.lib.metrics.answer_in_passages`).
"""

from __future__ import annotations

from collections.abc import Sequence

from stages.lib.metrics.answer import usable_golds
from stages.lib.metrics.answer_in_passages import answer_recall
from stages.lib.metrics.retrieval import retrieval_scores


def passages_read(row: dict) -> list[dict]:
    """The passages a question's generator read, in the order it read them: those of
    ``selected`` (1-based positions in ``ctxs``: DynamicRAG's reranker's choice, a top-k run's
    first k) when the row has that field, else all of ``ctxs``. A position outside ``ctxs`` is
    skipped.

    >>> ctxs = [{"id": "d1"}, {"id": "d2"}, {"id": "d3"}]
    >>> [c["id"] for c in passages_read({"ctxs": ctxs, "selected": [3, 1, 9]})]
    ['d3', 'd1']
    >>> [c["id"] for c in passages_read({"ctxs": ctxs})]
    ['d1', 'd2', 'd3']
    """
    ctxs = row.get("ctxs") or []
    if row.get("selected") is None:
        return list(ctxs)
    return [ctxs[i - 1] for i in row["selected"] if 0 < i <= len(ctxs)]


def gold_passage_scores(rows: list[dict], per_question: list[dict],
                        ks: Sequence[int]) -> list[str]:
    """``recall@k``, ``ndcg@k``, ``mrr@k`` of the questions with gold passage ids (``gold``);
    none when no question has any, or ``ks`` is empty. Other questions get None."""
    with_gold = [i for i, r in enumerate(rows) if r.get("gold")]
    if not (with_gold and ks):
        return []
    run, qrels = {}, {}
    for i in with_gold:
        ranked = ranked_ids(rows[i].get("ctxs") or [])
        run[str(i)] = {doc: float(len(ranked) - rank) for rank, doc in enumerate(ranked)}
        qrels[str(i)] = {doc: 1 for doc in rows[i]["gold"]}
    scores = retrieval_scores(run, qrels, ks=ks)
    names = list(scores.mean)
    for i, record in enumerate(per_question):
        values = scores.per_query.get(str(i), {})
        for name in names:
            record[name] = values.get(name)
    return names


def ranked_ids(ctxs: Sequence[dict]) -> list[str]:
    """The passages' ids in rank order, for a run: a passage without an id, or repeating an
    earlier one, keeps its rank under a placeholder that is never gold (dropping it would move
    every later passage up a rank).

    >>> ranked_ids([{"id": None}, {"id": "d1"}, {"id": "d1"}, {"id": "d2"}])
    ['(no id, rank 1)', 'd1', '(d1 again, rank 3)', 'd2']
    """
    out: list[str] = []
    for rank, c in enumerate(ctxs, 1):
        doc = c.get("id")
        if doc is None:
            doc = f"(no id, rank {rank})"
        elif str(doc) in out:
            doc = f"({doc} again, rank {rank})"
        out.append(str(doc))
    return out


def answer_recall_scores(rows: list[dict], per_question: list[dict], ks: Sequence[int],
                         log, retrieved: bool | None = None) -> list[str]:
    """``answer_recall@k`` of the questions with gold answers (others get None); none when
    ``ks`` is empty or no question has passages (a run without retrieval; ``retrieved`` says
    so when ``rows`` hold the passages read, which may be none of those retrieved)."""
    if not ks:
        return []
    if not (any(row.get("ctxs") for row in rows) if retrieved is None else retrieved):
        log.info("answer_recall_k is set, but no question has passages: not computed")
        return []
    names = [f"answer_recall@{k}" for k in ks]
    for row, record in zip(rows, per_question):
        golds = usable_golds(row.get("answers"))
        texts = [c.get("text") or "" for c in row.get("ctxs") or []]
        record.update(answer_recall(golds, texts, ks) if golds else dict.fromkeys(names))
    return names


def ks_beyond_passages(rows: list[dict], settings: dict[str, Sequence[int]]) -> str | None:
    """A warning naming, for each setting, the ks larger than the most passages (``ctxs``) a
    question has: a figure at such a k (``recall@20``, ``answer_recall@20``) scores the passages
    there are, as trec_eval and DPR do, so R@20 of a 5-passage run is its R@5, whatever its
    label suggests. None when every k fits or no question has a passage.

    >>> print(ks_beyond_passages([{"ctxs": [{}] * 5}, {"ctxs": []}],
    ...                          {"retrieval_k": [1, 5, 10, 20], "answer_recall_k": [5]}))
    retrieval_k 10, 20: more than the most passages a question has (5); @k scores those 5
    """
    most = max((len(r.get("ctxs") or []) for r in rows), default=0)
    over = {name: sorted({k for k in ks if k > most}) for name, ks in settings.items()}
    named = ", ".join(f"{name} {', '.join(map(str, ks))}" for name, ks in over.items() if ks)
    if not (most and named):
        return None
    return f"{named}: more than the most passages a question has ({most}); @k scores those {most}"


def score_passages(rows: list[dict], per_question: list[dict], retrieval_k: Sequence[int],
                   answer_recall_k: Sequence[int], log,
                   retrieved: bool | None = None) -> tuple[list[str], list[str]]:
    """Gold-passage scores at ``retrieval_k`` and answer recall at ``answer_recall_k`` written
    into ``per_question`` (:func:`gold_passage_scores`, :func:`answer_recall_scores`), with one
    warning on ``log`` when a k that was scored exceeds the passages a question has
    (:func:`ks_beyond_passages`): the names of each kind of score written."""
    gold_names = gold_passage_scores(rows, per_question, retrieval_k)
    recall_names = answer_recall_scores(rows, per_question, answer_recall_k, log, retrieved)
    beyond = ks_beyond_passages(rows, {"retrieval_k": retrieval_k if gold_names else [],
                                       "answer_recall_k": answer_recall_k if recall_names else []})
    if beyond:   # R@20 of a 5-passage run is its R@5
        log.warning("%s", beyond)
    return gold_names, recall_names


def mean(values: list[float | None]) -> float | None:
    """The mean of the values present (None: a question without that score); None if none.

    >>> mean([1.0, None, 0.0, 0.5]), mean([None]), mean([])
    (0.5, None, None)
    """
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def macro_average(blocks: dict[str, dict]) -> dict:
    """Unweighted mean of each metric over the sets that report it (a set without a value is
    left out, not counted as 0); ``num_sets`` counts every set.

    >>> macro_average({"nq": {"num_questions": 9, "exact_match": 0.5},
    ...                "fever": {"num_questions": 1, "first_char_accuracy": 1.0,
    ...                          "exact_match": 0.1}})
    {'num_sets': 2, 'exact_match': 0.3, 'first_char_accuracy': 1.0}
    """
    names = list(dict.fromkeys(k for b in blocks.values() for k in b if k != "num_questions"))
    out: dict = {"num_sets": len(blocks)}
    for name in names:
        values = [b[name] for b in blocks.values() if b.get(name) is not None]
        out[name] = mean(values)
    return out
