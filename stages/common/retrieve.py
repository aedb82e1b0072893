"""Stage ``retrieve``: top-k passages per question from a dense index.

Seed step: DynamicRAG ``retriever.py`` (SEEDS 1.3 step 1; the Contriever retriever of SEEDS 0.1
shared by Self-RAG and RAG-Instruct): the query is encoded like the passages (Contriever: mean
pooling, 512 tokens, batch 64), searched by exact inner product (faiss flat index), and the top
``n_docs`` passages become ``ctxs`` (the script keeps 50; the README says 40). The query is the
row's ``retrieved_question`` when it has one (DynamicRAG's training file), else its ``question``
(``query_template`` formats another one from the row's fields).

Questions that arrive with passages (the evaluation files' ``ctxs``, ASQA's ``docs``, the released
training file's retrieved docs) keep them as shipped, in their order and number, as the original
evaluation did; ``shipped_ctxs: replace`` retrieves for them too.

Fixes relative to the seeds: every passage keeps its retrieval ``score`` (Self-RAG's and
DynamicRAG's copies dropped it, RAG-Instruct's spelled it ``socre``); the query encoder's pooling
and normalisation are checked against the index's ``meta.json`` instead of silently mismatching;
and sharding over questions replaces the 8-process bash loop and its ``aggregate.py`` (which read
32 hard-coded split files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import ConfigError, DataError, StageContext, nonsemantic, stage
from stages.schemas import Embeddings, Model, Passages, Questions, Retrieved


@dataclass
class RetrieveConfig:
    k: Annotated[int, Ge(1)] = 50  # passages per question (script: n_docs 50; README: 40)
    search: Literal["exact", "faiss"] = "exact"  # exact (blocked inner product) | faiss
    faiss_factory: str = "Flat"           # faiss index_factory string (Flat = exact, the seeds')
    nprobe: Annotated[int, Ge(1)] = 32  # IVF lists probed (faiss IVF factories)
    faiss_gpu: bool = False               # move the faiss index to the GPUs
    pooling: Literal["mean", "cls"] | None = None  # must match the index; None = the index's
    normalize: bool | None = None         # must match the index; None = the index's
    max_length: Annotated[int, Ge(1)] = 512  # query tokens (Contriever: question_maxlength 512)
    query_template: str | None = None     # None: the row's retrieved_question if any, else question
    shipped_ctxs: Literal["keep", "replace"] = "keep"  # rows that arrive with passages keep them
    lowercase: bool = False               # Contriever's --lowercase
    batch_size: int = nonsemantic(64)     # Contriever: per_gpu_batch_size 64


def _resolve(name: str, wanted, meta: dict):
    """The config value checked against the index's meta.json (None: take the index's)."""
    built = meta.get(name)
    if wanted is None:
        if built is None:
            raise ConfigError(f"retrieve: the index has no meta.json '{name}'; set {name} in the "
                              f"retrieve step")
        return built
    if built is not None and wanted != built:
        raise ConfigError(f"retrieve: {name}={wanted!r} does not match the index, built with "
                          f"{name}={built!r}; set {name}: {built} (or rebuild the index)")
    return wanted


def _query_text(template: str | None, row: dict, lowercase: bool) -> str:
    if template is None:
        text = row.get("retrieved_question") or row["question"]
        return text.lower() if lowercase else text
    try:
        text = template.format(**{k: ("" if v is None else v) for k, v in row.items()})
    except KeyError as e:
        raise ConfigError(f"retrieve: query_template {template!r} names the field {e} that the "
                          f"question rows lack; fields: {sorted(row)}") from None
    return text.lower() if lowercase else text


@stage("retrieve", version=1, shard_by="questions")
def retrieve(questions: Questions, index: Embeddings, encoder: Model, corpus: Passages,
             cfg: RetrieveConfig, ctx: StageContext) -> Retrieved:
    """Encode this shard's questions, search the index, attach the top-k passages as ``ctxs``."""
    import time

    import pyarrow as pa
    import pyarrow.compute as pc

    from stages.lib.models.encoders import Encoder
    from stages.lib.models.search import ShardedIndex

    rows = all_rows = questions.rows()
    shipped = [r for r in rows if r.get("ctxs")] if cfg.shipped_ctxs == "keep" else []
    if shipped:
        ctx.log.info("%d of %d questions arrive with their passages and keep them "
                     "(shipped_ctxs: keep)", len(shipped), len(rows))
        rows = [r for r in rows if not r.get("ctxs")]
    if not rows:
        return shipped
    idx = ShardedIndex(index.path)
    pooling = _resolve("pooling", cfg.pooling, idx.meta)
    normalize = _resolve("normalize", cfg.normalize, idx.meta)

    start = time.perf_counter()
    enc = Encoder(encoder.path, pooling=pooling, normalize=normalize,
                  max_length=cfg.max_length, device=ctx.device)
    texts = [_query_text(cfg.query_template, r, cfg.lowercase) for r in rows]
    query_emb = enc.encode(texts, batch_size=cfg.batch_size,
                           progress=lambda it: ctx.progress(it, desc="encode questions"))
    scores, hits = idx.search(query_emb, cfg.k, method=cfg.search, factory=cfg.faiss_factory,
                              nprobe=cfg.nprobe, use_gpu=cfg.faiss_gpu, device=ctx.device)
    ctx.log.info("searched %d shard(s) for %d questions in %.1f s", len(idx.shards), len(rows),
                 time.perf_counter() - start)

    # the passages of the hits only: positions of the needed ids in the corpus' id column
    needed = sorted({pid for h in hits for pid in h})
    corpus_ids = corpus.read(columns=["id"]).column("id")
    pos = pc.index_in(pa.array(needed, pa.string()), value_set=corpus_ids).to_pylist()
    missing = [pid for pid, p in zip(needed, pos) if p is None]
    if missing:
        raise DataError(f"retrieve: {len(missing)} passage ids of the index are not in the "
                        f"corpus (first: {missing[0]!r}); was the index built from this corpus?")
    passages = corpus.read(columns=["title", "text"]).take(pa.array(pos, pa.int64())).to_pylist()
    by_id = dict(zip(needed, passages))

    out = []
    for row, hit_ids, hit_scores in zip(rows, hits, scores):
        ctxs = [{"id": pid, "title": by_id[pid]["title"], "text": by_id[pid]["text"],
                 "score": float(s)} for pid, s in zip(hit_ids, hit_scores)]
        out.append({**row, "ctxs": ctxs})
    if shipped:   # back in input order
        order = {r["id"]: i for i, r in enumerate(all_rows)}
        out = sorted(shipped + out, key=lambda r: order[r["id"]])
    return out
