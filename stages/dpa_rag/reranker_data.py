"""Stage ``dpa_rag.reranker_data``: the reranker's training rows from the preference knowledge.

Seed step: SEEDS 3.2 step 5, the input of ``train_bge_joined.py``: per query one point-wise pair
(``classification: {text, label}``, label 1 positive, 2 negative), a pair-wise list of 4
documents best first (``rank_list``) and contrastive groups of 2 positives and 2 negatives. How
those rows were built from the preference knowledge was not released; here:

* each document's side is :func:`stages.dpa_rag.categories.side`: aligned documents are
  positive, unaligned ones negative, and a both-correct or both-incorrect document is positive
  when it raises the answer's token F1 (``after_f1 > before_f1``), negative when it lowers it,
  unused when it leaves it as it was. The released labelled rows
  (``data/example_valid_dataset.jsonl``, ``data/example_test_dataset.jsonl``) follow this rule in
  all 40 rows, both-correct rows labelled negative and both-incorrect rows labelled positive
  among them; ``strict: true`` uses aligned and unaligned documents only;
* ``positive``: a query's best ``n_positive`` positive documents, best first by
  :func:`stages.dpa_rag.categories.preference_key`; ``negative``: ``n_negative`` negative
  ones, the unaligned first, then the others, each by retrieval rank: the hard negatives, the
  ones a reranker of the top-k must push down (a document far down the list that does not help
  teaches little). A query short of either group is left out (counted in the log by cause: no
  positive, no negative, too few; a WARNING when under a quarter of the queries give a row);
* ``rank_list``: the positives then the negatives, each group best first by
  :func:`~stages.dpa_rag.categories.preference_key` (4 documents, as released);
* the point-wise pair is the first positive (label 1) or the first negative picked (label 0),
  drawn with the seed per query (the seed's class id ``2 - label`` maps 1 -> 1, 2 -> 0).

A ``valid_fraction`` of the original queries (seeded) goes to ``split: valid`` with all their
augmentations, so no augmented copy of a validation query is trained on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge, Interval

from orchestrator.api import DataError, StageContext, stage
from stages.dpa_rag.categories import preference_key, side
from stages.dpa_rag.knowledge_rows import queries
from stages.dpa_rag.schemas import Knowledge, RerankerData


@dataclass
class RerankerDataConfig:
    n_positive: Annotated[int, Ge(1)] = 2   # released rows: 2 positive documents
    n_negative: Annotated[int, Ge(1)] = 2   # released rows: 2 negative documents
    strict: bool = False                    # true: aligned / unaligned documents only
    valid_fraction: Annotated[float, Interval(ge=0.0, lt=1.0)] = 0.1  # of the original queries
    seed: Annotated[int, Ge(0)] = 42  # the seed's seed


def query_groups(docs: list[dict], n_positive: int, n_negative: int,
                 strict: bool) -> tuple[list[dict], list[dict]] | None:
    """The positive documents (best first) and the negative ones (in the order picked: the
    unaligned, then the others, each by retrieval rank) of one query, or None when it has too
    few of either. Sides by :func:`~stages.dpa_rag.categories.side`.

    >>> docs = [{"category": c, "before_f1": b, "after_f1": a, "rank": i} for i, (c, b, a) in
    ...     enumerate([("both_incorrect", 0.0, 0.5), ("aligned", 0.0, 1.0),
    ...                ("both_correct", 1.0, 0.4), ("both_correct", 0.5, 1.0),
    ...                ("unaligned", 1.0, 0.0), ("both_incorrect", 0.0, 0.0)], 1)]
    >>> pos, neg = query_groups(docs, 2, 2, strict=False)
    >>> [(d["category"], d["rank"]) for d in pos + neg]
    [('aligned', 2), ('both_correct', 4), ('unaligned', 5), ('both_correct', 3)]
    >>> query_groups(docs, 2, 2, strict=True) is None
    True
    """
    if strict:
        docs = [d for d in docs if d["category"] in ("aligned", "unaligned")]
    sides = [side(d) for d in docs]
    pos = sorted((d for d, s in zip(docs, sides) if s > 0), key=preference_key)[:n_positive]
    neg = sorted((d for d, s in zip(docs, sides) if s < 0),
                 key=lambda d: (d["category"] != "unaligned", d.get("rank") or 0))[:n_negative]
    if len(pos) < n_positive or len(neg) < n_negative:
        return None
    return pos, neg


@stage("dpa_rag.reranker_data", version=2)
def reranker_data(knowledge: Knowledge, cfg: RerankerDataConfig,
                  ctx: StageContext) -> RerankerData:
    """One training row per query with enough positive and negative documents; the knowledge
    is read one query at a time (:mod:`stages.dpa_rag.knowledge_rows`)."""
    import pyarrow.compute as pc

    sources = sorted(pc.unique(knowledge.read(["source_id"]).column("source_id")).to_pylist())
    pick = random.Random(cfg.seed)
    valid = set(pick.sample(sources, round(cfg.valid_fraction * len(sources))))
    out, queries_seen = [], 0
    short_by = dict.fromkeys(("no_positive", "right", "no_negative", "wrong", "few"), 0)
    sides = {1: [0, 0], -1: [0, 0], 0: [0, 0]}
    for qid, docs in queries(knowledge):
        queries_seen += 1
        count_short(short_by, docs, cfg)
        count_sides(sides, docs, cfg.strict)
        groups = query_groups(docs, cfg.n_positive, cfg.n_negative, cfg.strict)
        if groups is None:
            continue
        pos, neg = groups
        label = pick.random() < 0.5
        out.append({"id": qid, "query": docs[0]["question"],
                    "split": "valid" if docs[0]["source_id"] in valid else "train",
                    "cls_doc": (pos[0] if label else neg[0])["doc"], "cls_label": int(label),
                    "rank_list": [d["doc"] for d in pos + sorted(neg, key=preference_key)],
                    "positive": [d["doc"] for d in pos], "negative": [d["doc"] for d in neg]})
    ctx.log.info("reranker data: documents by side: %s", _sides_text(sides))
    if not out:
        raise DataError(f"step '{ctx.step}': none of {queries_seen} queries has "
                        f"{cfg.n_positive} positive and {cfg.n_negative} negative documents: "
                        f"{_short_text(short_by, cfg)}", hint=_none_hint(short_by, cfg, ctx))
    train = sum(r["split"] == "train" for r in out)
    if len(out) * 4 < queries_seen:
        ctx.log.warning("%s: only %d of %d queries give the reranker a row (%d train, %d valid): "
                        "%s; more rows come from %s", ctx.step, len(out), queries_seen, train,
                        len(out) - train, _short_text(short_by, cfg), MORE)
    else:
        ctx.log.info("reranker data: %d queries -> %d train, %d valid rows; %d left out (fewer "
                     "than %d positive / %d negative documents)", queries_seen, train,
                     len(out) - train, queries_seen - len(out), cfg.n_positive, cfg.n_negative)
    return out


MORE = ("more questions the reader gets wrong without documents (only they can have an aligned, "
        "positive document) and more documents per query (retrieval.k, which sets "
        "steps.preference.n_docs)")


def count_short(count: dict[str, int], docs: list[dict], cfg: RerankerDataConfig) -> None:
    """Add to ``count`` why this query would be left out: ``no_positive`` (``right``: it was
    answered right without documents, so none of its documents is aligned), ``no_negative``
    (``wrong``: answered wrong without, so none is unaligned), or ``few``: both sides, but
    fewer than ``n_positive`` / ``n_negative``.

    >>> q = lambda *cs: [{"category": c, "before_f1": 0.5, "after_f1": 0.5} for c in cs]
    >>> count = dict.fromkeys(("no_positive", "right", "no_negative", "wrong", "few"), 0)
    >>> for docs in (q("both_correct", "unaligned"), q("aligned"), q("aligned", "unaligned")):
    ...     count_short(count, docs, RerankerDataConfig())
    >>> count
    {'no_positive': 1, 'right': 1, 'no_negative': 1, 'wrong': 1, 'few': 1}
    """
    used = [d for d in docs if d["category"] in ("aligned", "unaligned")] if cfg.strict \
        else docs
    sides = [side(d) for d in used]
    pos, neg = sides.count(1), sides.count(-1)
    right = any(d["category"] in ("both_correct", "unaligned") for d in docs)
    count["no_positive"] += not pos
    count["right"] += not pos and right
    count["no_negative"] += not neg
    count["wrong"] += not neg and not right
    count["few"] += bool(pos and neg) and (pos < cfg.n_positive or neg < cfg.n_negative)


def _short_text(c: dict[str, int], cfg: RerankerDataConfig) -> str:
    """The counts of :func:`_short_by` in words (for the log and the error)."""
    return (f"{c['no_positive']} had no positive document ({c['right']} of them answered right "
            f"without documents, so none can be aligned), {c['no_negative']} no negative "
            f"({c['wrong']} answered wrong without, so none can be unaligned), {c['few']} had "
            f"both sides but fewer than {cfg.n_positive} positive / {cfg.n_negative} negative")


def _none_hint(c: dict[str, int], cfg: RerankerDataConfig, ctx: StageContext) -> str:
    """What can help when no query gives a row: lowering n_positive / n_negative only where some
    query has documents on both sides."""
    strict = ", or set strict: false (middle outcomes count too)" if cfg.strict else ""
    if not c["few"]:
        return ("no query has both a positive and a negative document, so lowering "
                f"n_positive / n_negative cannot help; rows come from {MORE}{strict}")
    return (f"{c['few']} queries have both sides, too few of one: lower "
            f"steps.{ctx.step}.n_positive / n_negative (to 1), or give {MORE}{strict}")


def count_sides(count: dict[int, list[int]], docs: list[dict], strict: bool) -> None:
    """Add this query's documents to ``count``: side (1 positive, -1 negative, 0 unused) ->
    [documents that are aligned or unaligned, middle outcomes]."""
    for d in docs:
        middle = d["category"] not in ("aligned", "unaligned")
        count[0 if strict and middle else side(d)][middle] += 1


def _sides_text(count: dict[int, list[int]]) -> str:
    """How many documents are positive, negative or unused, and how many of the first two are
    middle outcomes (for the log).

    >>> docs = [{"category": c, "before_f1": b, "after_f1": a} for c, b, a in [
    ...     ("aligned", 0, 1), ("both_correct", 1, .5), ("both_incorrect", 0, 0)]]
    >>> count = {1: [0, 0], -1: [0, 0], 0: [0, 0]}
    >>> count_sides(count, docs, strict=False)
    >>> _sides_text(count)
    'positive 1 (0 middle), negative 1 (1 middle), unused 1'
    """
    return (f"positive {sum(count[1])} ({count[1][1]} middle), negative {sum(count[-1])} "
            f"({count[-1][1]} middle), unused {sum(count[0])}")
