"""Stage ``evaluate_retrieval``: the retriever alone, scored on the passages it attached
(``ctxs``), with no generation.

Tuning what retrieval hands the generator (the encoder, ``k``, a query template) needs no
generated answer to score. This step reads a ``retrieve`` output and reports what ``evaluate``
reports of passages: pytrec_eval's recall/nDCG/MRR@k against gold passage ids, for the questions
that have them (``retrieval_k``), and DPR's top-k accuracy against the gold answers
(``answer_recall_k``, on here by default: the figure DPR, Contriever and Atlas report for NQ
and TriviaQA, whose questions name no gold passage). Several evaluation sets get a block each
and their macro average, as in ``evaluate``. A ``k`` larger than the most passages a question
has is scored on the passages there are (R@20 of a 5-passage run is its R@5), with a warning
in the step's log. A step of one's own, added to the DynamicRAG demo on the command line and
run with what it needs, the retrieval chain and no language model (10.8 s from an empty cache
on 2 cores, 2026-12-05)::

    rag run conf/dynamicrag_demo.yaml --until retrieval_eval \\
        '+steps.retrieval_eval={stage: evaluate_retrieval, inputs: {retrieved: retrieve_eval.out}}'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import ConfigError, DataError, StageContext, stage
from stages.lib.metrics.passage_scores import macro_average, mean, score_passages
from stages.schemas import EvalMetrics, Retrieved


@dataclass
class EvaluateRetrievalConfig:
    name: str = ""                       # row label in result tables; "" = the step's name
    retrieval_k: list[Annotated[int, Ge(1)]] = field(default_factory=lambda: [1, 3, 5, 10, 20])
    # DPR's top-k accuracy: a gold answer in the text of one of the first k passages (DPR
    # reports top-20 and top-100; k beyond the passages retrieved scores what there is)
    answer_recall_k: list[Annotated[int, Ge(1)]] = field(default_factory=lambda: [1, 5, 20])

    def __post_init__(self):
        if not self.retrieval_k and not self.answer_recall_k:
            raise ConfigError("evaluate_retrieval: retrieval_k and answer_recall_k are both "
                              "empty, so there is nothing to score; give either one ks")


def labels(names: list[str]) -> dict[str, str]:
    """The result-table columns: each k's recall and answer recall (``R@5``, ``A@20``), then
    nDCG and MRR at the largest k, at most 8 in all: the recalls give way, so that nDCG and MRR
    are always shown (``metrics.json`` has every one).

    >>> list(labels(["recall@1", "ndcg@1", "mrr@1", "recall@5", "ndcg@5", "mrr@5",
    ...              "answer_recall@5"]).values())
    ['R@1', 'R@5', 'A@5', 'nDCG@5', 'MRR@5']
    >>> ks = [1, 3, 5, 10, 20]
    >>> list(labels([f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in ks]
    ...             + [f"answer_recall@{k}" for k in (1, 5, 20)]).values())
    ['R@1', 'R@3', 'R@5', 'R@10', 'R@20', 'A@1', 'nDCG@20', 'MRR@20']
    """
    short = {"recall": "R", "answer_recall": "A", "ndcg": "nDCG", "mrr": "MRR"}
    recalls = [n for n in names if n.split("@")[0] in ("recall", "answer_recall")]
    ranked = [n for n in names if n.split("@")[0] in ("ndcg", "mrr")]
    largest = max((int(n.split("@")[1]) for n in ranked), default=0)
    top = [n for n in ranked if int(n.split("@")[1]) == largest]
    shown = recalls[:8 - len(top)] + top
    return {n: f"{short[n.split('@')[0]]}@{n.split('@')[1]}" for n in shown}


def means(per_question: list[dict], names: list[str]) -> dict[str, float | None]:
    """Each metric's mean over the questions that have it (None where none has).

    >>> means([{"recall@1": 1.0}, {"recall@1": 0.0, "answer_recall@1": 1.0}],
    ...       ["recall@1", "answer_recall@1", "ndcg@1"])
    {'recall@1': 0.5, 'answer_recall@1': 1.0, 'ndcg@1': None}
    """
    return {n: mean([r[n] for r in per_question if r.get(n) is not None]) for n in names}


@stage("evaluate_retrieval", version=4)  # 2: id-less, repeated ids keep ranks
# 3: answer_recall tokenises as DPR's SimpleTokenizer (accented words stay whole)
# 4: nDCG and MRR always among the columns shown
def evaluate_retrieval(retrieved: Retrieved, cfg: EvaluateRetrievalConfig,
                       ctx: StageContext) -> EvalMetrics:
    """Retrieval metrics of the passages each question was given, overall and per set."""
    rows = retrieved.rows()
    per_question = [{"dataset": r.get("dataset") or ""} for r in rows]
    gold_names, recall_names = score_passages(rows, per_question, cfg.retrieval_k,
                                              cfg.answer_recall_k, ctx.log)
    names = gold_names + recall_names
    if not names:
        raise DataError(f"step '{ctx.step}': nothing to score: of {len(rows)} questions, none "
                        "has both passages (ctxs) and gold passage ids (gold) or gold answers",
                        hint="wire a retrieve step's output, on questions with answers or gold ids")
    metrics = {"label": cfg.name or ctx.step, "num_questions": len(rows),
               "avg_passages": mean([len(r.get("ctxs") or []) for r in rows])}
    if gold_names:
        metrics["num_gold_questions"] = sum(bool(r.get("gold")) for r in rows)
    metrics.update(means(per_question, names))
    datasets = sorted({r["dataset"] for r in per_question})
    if len(datasets) > 1:
        in_set = {d: [r for r in per_question if r["dataset"] == d] for d in datasets}
        metrics["by_dataset"] = {d: {"num_questions": len(qs), **means(qs, names)}
                                 for d, qs in in_set.items()}
        metrics["macro"] = macro_average(metrics["by_dataset"])
    metrics["display"] = labels(names)
    ctx.log.info("%s: %d questions: %s", metrics["label"], len(rows),
                 ", ".join(f"{n} {metrics[n]:.4f}" for n in metrics["display"]
                           if metrics[n] is not None))
    return metrics
