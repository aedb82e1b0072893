"""Stage ``aggregate``: merge the passages of one or two retrievers per question, de-duplicated.

Seed step: DynamicRAG ``aggregate.py`` (SEEDS 1.3 step 2), which concatenated 32 retrieval shard
files and kept the first row per question id. Here the runner already gathers shards; this stage
is the semantic part: rows with the same question id (within an input and across inputs) are
merged into one, and their ranked passage lists are fused with ``method``:

- ``concat``: the primary's passages, then the secondary's;
- ``interleave``: rank 1 of each list, then rank 2 of each, ...;
- ``rrf``: reciprocal-rank fusion, ``score(d) = sum over lists of 1 / (rrf_k + rank)``
  (``rrf_k = 60``, Cormack et al. 2009); the fused score replaces ``score``.

A passage is the same passage when its ``id`` is (or, without an id, its title and text are);
the first occurrence in the fused order is kept. ``k`` caps the passages kept per question.
With one input, this de-duplicates questions and passages only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import StageContext, stage
from stages.schemas import Retrieved


@dataclass
class AggregateConfig:
    method: Literal["interleave", "concat", "rrf"] = "interleave"
    k: Annotated[int, Ge(1)] | None = None  # passages kept per question; None keeps all
    rrf_k: Annotated[int, Ge(0)] = 60  # the reciprocal-rank-fusion constant


def _doc_key(doc: dict):
    return doc["id"] if doc.get("id") is not None else (doc.get("title"), doc.get("text"))


def fuse(lists: list[list[dict]], method: str = "interleave", k: int | None = None,
         rrf_k: int = 60) -> list[dict]:
    """Fuse ranked passage lists into one, de-duplicated by passage id, at most ``k`` long.

    >>> a = [{"id": "x", "score": 9.0}, {"id": "y", "score": 8.0}]
    >>> b = [{"id": "z", "score": 0.7}, {"id": "x", "score": 0.6}]
    >>> [d["id"] for d in fuse([a, b], "concat")], [d["id"] for d in fuse([a, b], "interleave")]
    (['x', 'y', 'z'], ['x', 'z', 'y'])
    >>> [(d["id"], round(d["score"], 4)) for d in fuse([a, b], "rrf")]
    [('x', 0.0325), ('z', 0.0164), ('y', 0.0161)]
    """
    if method == "concat":
        order = [d for docs in lists for d in docs]
    elif method in ("interleave", "rrf"):
        longest = max((len(docs) for docs in lists), default=0)
        order = [docs[r] for r in range(longest) for docs in lists if r < len(docs)]
    else:
        raise ValueError(f"method must be interleave, concat or rrf, got {method!r}")
    if method == "rrf":
        fused: dict = {}
        for docs in lists:
            seen = set()
            for rank, d in enumerate(docs, 1):
                key = _doc_key(d)
                if key not in seen:  # a list that repeats a passage counts it once, at its best rank
                    seen.add(key)
                    fused[key] = fused.get(key, 0.0) + 1.0 / (rrf_k + rank)
    out, kept = [], set()
    for d in order:
        key = _doc_key(d)
        if key not in kept:
            kept.add(key)
            out.append({**d, "score": fused[key]} if method == "rrf" else dict(d))
    if method == "rrf":
        out.sort(key=lambda d: -d["score"])  # stable: ties keep the interleaved order
    return out[:k] if k else out


def merge_retrieved(inputs: list[list[dict]], method: str = "interleave", k: int | None = None,
                    rrf_k: int = 60) -> list[dict]:
    """Merge question rows of several retrievers by question id and fuse their ``ctxs``.

    Question fields come from the first row with that id; the order of questions is the order
    of first appearance (the primary's first).

    >>> p = [{"id": "q1", "question": "?", "ctxs": [{"id": "a"}, {"id": "b"}]}]
    >>> s = [{"id": "q1", "question": "?", "ctxs": [{"id": "b"}, {"id": "c"}]},
    ...      {"id": "q2", "question": "!", "ctxs": [{"id": "d"}]}]
    >>> [(r["id"], [d["id"] for d in r["ctxs"]]) for r in merge_retrieved([p, s], "concat")]
    [('q1', ['a', 'b', 'c']), ('q2', ['d'])]
    """
    first: dict[str, dict] = {}
    lists: dict[str, list[list[dict]]] = {}
    for rows in inputs:
        for row in rows:
            qid = row["id"]
            if qid not in first:
                first[qid] = row
                lists[qid] = []
            lists[qid].append(list(row.get("ctxs") or []))
    return [{**row, "ctxs": fuse(lists[qid], method, k, rrf_k)} for qid, row in first.items()]


@stage("aggregate", version=1)
def aggregate(primary: Retrieved, cfg: AggregateConfig, ctx: StageContext,
              secondary: Retrieved | None = None) -> Retrieved:
    """Questions merged by id across retrievers; passages fused and de-duplicated."""
    inputs = [primary.rows()] + ([secondary.rows()] if secondary is not None else [])
    sizes = [len(rows) for rows in inputs]
    before = sum(len(r.get("ctxs") or []) for rows in inputs for r in rows)
    out = merge_retrieved(inputs, cfg.method, cfg.k, cfg.rrf_k)
    after = sum(len(r["ctxs"]) for r in out)
    ctx.log.info("aggregate (%s%s): %s question rows -> %d questions; %d passages -> %d",
                 cfg.method, f", k={cfg.k}" if cfg.k else "", " + ".join(map(str, sizes)),
                 len(out), before, after)
    if sum(sizes) > len(out):
        ctx.log.info("%d question rows shared an id and were merged", sum(sizes) - len(out))
    return out
