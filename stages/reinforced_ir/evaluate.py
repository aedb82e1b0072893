"""Stage ``reinforced_ir.evaluate``: retrieval quality of a retriever, with or without the
generator's augmentation fused into the query.

The original ships metric helpers but no evaluation driver (SEEDS §5.6). Here: each evaluation
query is embedded (query side) and, when an ``augmented`` table is wired, fused with its greedy
augmentation, q_final = 0.8·E(q) + 0.2·E(topic prefix + G(q)) (:mod:`stages.reinforced_ir.fusion`),
then searched over the corpus index; pytrec_eval scores nDCG@k, MAP@k, Recall@k, P@k and MRR@k
against the queries' ``gold`` passage ids (binary relevance: the load step keeps the ids graded at
least its ``min_qrel_score``, not the grades; the original's pytrec_eval takes the qrels as
given, so on graded qrels such as TREC-COVID's and NFCorpus' its nDCG differs, the rest not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import ConfigError, DataError, StageContext, stage
from stages.reinforced_ir.embed import EncoderConfig
from stages.reinforced_ir.schemas import Augmented
from stages.schemas import Embeddings, EvalMetrics, Model, Questions


@dataclass
class RetrievalEvalConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    # the cutoffs k of every metric (the original's defaults); each >= 1, checked by rag plan
    ks: list[Annotated[int, Ge(1)]] = field(default_factory=lambda: [1, 10])
    query_weight: float = 0.8              # paper: 0.8 raw + 0.2 augmentation
    label: str = ""                        # a name for the results table

    def __post_init__(self):
        if not self.ks:
            raise ConfigError("ks is empty, so there is no cutoff to score at",
                              hint="give one k or more, as the original's ks: [1, 10]")


NO_GOLD_HINT = ("give qrels (data.qrels, or a BEIR folder's qrels/test.tsv) or `gold` ids in "
                "the queries file; if qrels were given, they judge none of these queries: the "
                "qrels' query ids must be the questions' ids (field id, _id, qid, ...; a file "
                "without ids numbers its questions 1, 2, ...), and the load step's warning "
                "shows an id of each side")


def trec_scores(run: dict, qrels: dict, ks: list[int]) -> dict[str, float]:
    """Mean nDCG@k, MAP@k, Recall@k, P@k (pytrec_eval) and MRR@k over queries with a relevant
    document (a query missing from the run scores 0). Every metric ranks equal scores as
    trec_eval does, by docid descending, MRR too (the run cut by ``truncate_run`` of
    :mod:`stages.lib.metrics.retrieval`). The original's ``evaluate_mrr`` kept the retriever's
    order on ties, so on tied scores its MRR@1 could be 1 where its P@1 and Recall@1 were 0.

    >>> r = trec_scores({"q": {"d1": 2.0, "d2": 1.0}}, {"q": {"d2": 1}}, [1, 2])
    >>> r["recall@1"], r["recall@2"], r["mrr@2"], round(r["ndcg@2"], 4)
    (0.0, 1.0, 0.5, 0.6309)
    >>> r = trec_scores({"q": {"d1": 0.9, "d2": 0.9}}, {"q": {"d1": 1}}, [1])   # tied: d2 first
    >>> r["p@1"], r["recall@1"], r["mrr@1"]
    (0.0, 0.0, 0.0)
    """
    import pytrec_eval

    from stages.lib.metrics.retrieval import truncate_run

    measures = {f"{m}.{','.join(map(str, ks))}" for m in ("ndcg_cut", "map_cut", "recall", "P")}
    scored = [q for q, docs in qrels.items() if any(v > 0 for v in docs.values())]
    per = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    out: dict[str, float] = {}
    for k in ks:
        for name, key in (("ndcg", "ndcg_cut"), ("map", "map_cut"), ("recall", "recall"),
                          ("p", "P")):
            out[f"{name}@{k}"] = sum(per.get(q, {}).get(f"{key}_{k}", 0.0)
                                     for q in scored) / len(scored)
        top = truncate_run({q: run.get(q, {}) for q in scored}, k)
        out[f"mrr@{k}"] = sum(
            next((1.0 / rank for rank, d in enumerate(top[q], 1) if qrels[q].get(d, 0) > 0), 0.0)
            for q in scored) / len(scored)
    return out


@stage("reinforced_ir.evaluate", version=2)  # 2: MRR ties as trec_eval; label, display
def evaluate(queries: Questions, index: Embeddings, encoder: Model,
             cfg: RetrievalEvalConfig, ctx: StageContext,
             augmented: Augmented | None = None) -> EvalMetrics:
    """Retrieval metrics of this retriever (and augmentation) on the evaluation queries."""
    from stages.lib.models.search import ShardedIndex
    from stages.reinforced_ir.embed import SideEncoder, matching_index
    from stages.reinforced_ir.fusion import fuse

    given = queries.rows()
    rows = [r for r in given if r["gold"]]
    if not rows:
        raise DataError(f"evaluate: none of the {len(given)} evaluation queries has a gold "
                        f"passage id", hint=NO_GOLD_HINT)
    if len(rows) < len(given):
        ctx.log.info("evaluate: %d of %d queries have no gold passage id (not judged in the "
                     "qrels) and are not scored", len(given) - len(rows), len(given))
    enc = SideEncoder(encoder.path, matching_index(cfg.encoder, index.path), ctx.device)
    q = enc.queries([r["question"] for r in rows])
    if augmented is not None:
        aug = {r["id"]: (r["augmentations"] or [""])[0] for r in augmented.rows()}
        missing = [r["id"] for r in rows if r["id"] not in aug]
        if missing:
            raise DataError(f"evaluate: {len(missing)} evaluation queries have no augmentation "
                            f"(first: {missing[0]}); wire the augment step of these queries")
        q = fuse(q, enc.augmentations([aug[r["id"]] for r in rows]), cfg.query_weight)
    scores, ids = ShardedIndex(index.path).search(q, max(cfg.ks))
    run = {r["id"]: {d: float(s) for d, s in zip(hits, sc)}
           for r, hits, sc in zip(rows, ids, scores)}
    qrels = {r["id"]: {str(g): 1 for g in r["gold"]} for r in rows}
    metrics = trec_scores(run, qrels, sorted(set(cfg.ks)))
    ctx.log.info("%s: %s", cfg.label or ctx.step,
                 ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return {"label": cfg.label or ctx.step, **metrics, "queries": len(rows),
            "augmented": augmented is not None, "display": display(cfg.ks)}


def display(ks: list[int]) -> dict[str, str]:
    """The results table's columns (the README's): nDCG, Recall and MRR at the largest k, and
    Recall@1 when 1 is among the ks; metrics.json has every figure.

    >>> display([1, 10])
    {'ndcg@10': 'nDCG@10', 'recall@10': 'Recall@10', 'recall@1': 'Recall@1', 'mrr@10': 'MRR@10'}
    """
    k = max(ks)
    shown = {f"ndcg@{k}": f"nDCG@{k}", f"recall@{k}": f"Recall@{k}"}
    if 1 in ks and k != 1:
        shown["recall@1"] = "Recall@1"
    return {**shown, f"mrr@{k}": f"MRR@{k}"}
