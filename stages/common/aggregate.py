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


BATCH_ROWS = 2_000   # question rows held as Python objects at a time (40 passages each)


@stage("aggregate", version=1)
def aggregate(primary: Retrieved, cfg: AggregateConfig, ctx: StageContext,
              secondary: Retrieved | None = None) -> Retrieved:
    """Questions merged by id across retrievers; passages fused and de-duplicated.

    A batch of questions at a time: the DynamicRAG training set (150k questions with 40
    passages each) would take several times its size as Python objects at once. A question
    whose id comes more than once is merged from all its rows, where it first appears."""
    import pyarrow as pa

    inputs = [primary] + ([secondary] if secondary is not None else [])
    repeated = _repeated_ids(inputs)
    merged = {}
    if repeated:   # few, usually none: their rows, in input order, merged whole
        lists = [[r for batch in t.iter_batches(BATCH_ROWS) for r in batch if r["id"] in repeated]
                 for t in inputs]
        merged = {row["id"]: row for row in merge_retrieved(lists, cfg.method, cfg.k, cfg.rrf_k)}
    schema = _output_schema(inputs)
    pieces, before, after = [], 0, 0
    for table in inputs:
        for batch in table.iter_batches(BATCH_ROWS):
            out = []
            for row in batch:
                before += len(row.get("ctxs") or [])
                if row["id"] in repeated:
                    row = merged.pop(row["id"], None)   # its first appearance only
                    if row is None:
                        continue
                else:
                    row = {**row, "ctxs": fuse([list(row.get("ctxs") or [])], cfg.method, cfg.k,
                                               cfg.rrf_k)}
                after += len(row["ctxs"])
                out.append(row)
            pieces.append(pa.Table.from_pylist(out, schema=schema))
    result = pa.concat_tables(pieces) if pieces else schema.empty_table()
    sizes = [t.num_rows for t in inputs]
    ctx.log.info("aggregate (%s%s): %s question rows -> %d questions; %d passages -> %d",
                 cfg.method, f", k={cfg.k}" if cfg.k else "", " + ".join(map(str, sizes)),
                 result.num_rows, before, after)
    if sum(sizes) > result.num_rows:
        ctx.log.info("%d question rows shared an id and were merged", sum(sizes) - result.num_rows)
    return result


def _repeated_ids(inputs: list) -> set[str]:
    """The question ids that come more than once, within an input or across them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.chunked_array([chunk for t in inputs for chunk in t.read(["id"]).column("id").chunks],
                           pa.string())
    counts = pc.value_counts(ids)
    return set(counts.filter(pc.greater(counts.field("counts"), 1)).field("values").to_pylist())


def _output_schema(inputs: list):
    """``Retrieved``'s columns, then the other columns of the inputs (``retrieved_question``,
    ...) as they are typed there."""
    import pyarrow as pa

    extra = pa.unify_schemas([pa.schema([f for f in t.stored_schema()
                                         if f.name not in Retrieved.schema.names])
                              for t in inputs], promote_options="default")
    return pa.schema(list(Retrieved.schema) + list(extra))
