"""Stage ``dpa_rag.rerank``: the aligned reranker orders each question's retrieved passages and
keeps the best.

Seed step: SEEDS §3.2 step 6 (no released code): rerank the train and test passages with the
aligned reranker and give the reader the top 3 (top 2 for WebQSP). The score is the reranker's
aligned-class logit (``reranker_model.score``, what the rank loss trained); documents are
rendered with the ``passage_template`` and truncated to the ``max_length`` the reranker was
trained with (its ``reranker.json``). Each kept passage keeps its retriever ``score`` and gains
``rerank_score``; ties keep the retriever's order. ``top_k_by_set`` keeps another number for the
sets it names (:func:`~stages.lib.data.set_names.for_set`: a key is a whole word of the row's
``dataset``), as the paper's top-2 for WebQSP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import StageContext, added, nonsemantic, stage
from stages.lib.data.set_names import for_set
from stages.schemas import Model, Retrieved


@dataclass
class RerankConfig:
    top_k: Annotated[int, Ge(1)] | None = 3   # paper: top-3 passages (WebQSP 2); None = all
    top_k_by_set: dict[str, Annotated[int, Ge(1)]] = added({})  # paper: {webqsp: 2}
    batch_size: Annotated[int, Ge(1)] = nonsemantic(64)


@stage("dpa_rag.rerank", version=1, shard_by="retrieved")
def rerank(retrieved: Retrieved, model: Model, cfg: RerankConfig, ctx: StageContext) -> Retrieved:
    """``ctxs`` sorted by the trained reranker's score and cut to ``top_k``."""
    import pyarrow as pa

    from stages.dpa_rag import reranker_model

    table = retrieved.read()
    rows = table.to_pylist()
    reranker = reranker_model.load(model.path, ctx.device)
    queries, passages = [], []
    for row in rows:
        for doc in row["ctxs"] or []:
            queries.append(row["question"])
            passages.append(reranker_model.render(reranker.passage_template, doc))
    scores = iter(reranker_model.score(
        reranker, queries, passages, cfg.batch_size,
        progress=lambda it: ctx.progress(it, desc="rerank (DPA-RAG)")))
    ctxs = []
    for row in rows:
        scored = [{**doc, "rerank_score": next(scores)} for doc in row["ctxs"] or []]
        scored.sort(key=lambda d: -d["rerank_score"])            # stable: ties keep order
        ctxs.append(scored[:for_set(cfg.top_k_by_set, row.get("dataset") or "", cfg.top_k)])
    ctx.log.info("%d questions, %d passages scored, top %s kept%s", len(rows), len(passages),
                 cfg.top_k or "all", f" ({cfg.top_k_by_set} by set)" if cfg.top_k_by_set else "")

    # the input's ctx struct (with any extra fields) plus rerank_score: a list of dicts given
    # to the writer would be cut to Retrieved's declared fields
    column = table.schema.field("ctxs").type.value_type
    fields = [f for f in column if f.name != "rerank_score"]
    ctx_type = pa.list_(pa.struct(fields + [pa.field("rerank_score", pa.float32())]))
    at = table.schema.get_field_index("ctxs")
    return table.set_column(at, "ctxs", pa.array(ctxs, type=ctx_type))
