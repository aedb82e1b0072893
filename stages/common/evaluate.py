"""Stage ``evaluate``: answer metrics (and retrieval metrics when gold passages are known).

Seed step: DynamicRAG ``evaluate.py`` / ``metrics.py`` (SEEDS 1.5), Self-RAG's ``match``
(SEEDS 2.7). Metrics are picked by name from :data:`stages.lib.metrics.METRICS`; every value is
a mean over questions on a 0..1 scale:

* ``exact_match``, ``token_f1``: SQuAD EM / F1 on normalized answers, max over golds;
* ``match_pred_in_gold``: DynamicRAG's "match" (the prediction is a substring of a gold);
* ``match_gold_in_pred``: Self-RAG's "accuracy" (a gold is a substring of the prediction),
  here normalized and case-insensitive;
* ``first_char_accuracy`` (FEVER), ``rouge_l`` (ELI5).

Questions without a gold answer are left out of the answer metrics (as in the seeds) and get
null per-question scores; golds are compared stripped of surrounding spaces (" Paris " is
"Paris"), blank ones dropped. The passage metrics score the passages the generator read, in the
order it read them (:func:`~stages.lib.metrics.passage_scores.passages_read`: ``selected``, the
reranker's choice of DynamicRAG or a top-k run's first k; ``ctxs`` when a row has no
``selected``), so a DynamicRAG row's R@1 is its reranker's, not its retriever's; a run in which
no question read a passage gets none. When any question has gold passage ids (``gold``), they
are scored with pytrec_eval: ``recall@k``, ``ndcg@k``, ``mrr@k`` for each k in
``retrieval_k``, averaged over the questions with gold ids. Without gold ids, DPR's top-k
retrieval accuracy (``answer_recall_k``, off by default;
:mod:`stages.lib.metrics.answer_in_passages`) scores the passages by whether a gold answer occurs
in their text: ``answer_recall@k``, averaged over the questions with gold answers.

The metrics also hold ``label`` (``name``, else the step name), ``num_questions``,
``num_scored`` (questions with a gold answer) and ``avg_selected_docs``, so a results table can
put rows like "no retrieval", "top-3" and "DynamicRAG" side by side. All values are scalars
(one table row per evaluation), except ``by_dataset`` and ``macro``: when the questions come
from several datasets (the paper's seven evaluation sets, one file each), one block per set with
that set's metrics (``set_metrics``: the paper reports accuracy for FEVER, ROUGE-L for ELI5, EM
for the others) and its ``avg_selected_docs`` (a set may read its own number of passages, as
DPA-RAG's WebQSP reads 2, and DynamicRAG picks a number per question), and ``macro``, the
unweighted mean over the sets of each metric. With ``set_metrics``, each top-level figure of
``metrics`` is the mean over the questions of the sets that report it (:func:`top_level_means`):
the top-level EM of the paper's seven sets is that of the sets it scores with EM, without
FEVER's labels and ELI5's long answers, which their blocks score with accuracy and ROUGE-L;
null when no set reports it. A run of one set that ``set_metrics`` scores otherwise gets its block too. A ``k``
larger than the most passages a question has is scored on the passages there are, with a
warning in the step's log (R@20 of a 5-passage run is its R@5).

Fixes relative to the seeds: ``token_f1`` is a real token F1 (the seed's ``--metric f1`` zipped
characters); an empty prediction does not "match" every gold; golds come from ``answers`` for
every dataset (ASQA's ``qa_pairs`` short answers are flattened into ``answers`` by the loader
whenever a record has them, even next to ALCE's long-form ``answer``, not chosen by file name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, NamedTuple

from annotated_types import Ge

from orchestrator.api import StageContext, added, stage
from stages.lib.data.set_names import for_set
from stages.lib.metrics.answer import METRICS, check_metric_names, usable_golds
from stages.lib.metrics.passage_scores import (macro_average, mean, passages_read,
                                               score_passages)
from stages.schemas import EvalMetrics, PerQuestion, Predictions


@dataclass
class EvaluateConfig:
    name: str = ""                       # row label in result tables; "" = the step's name
    metrics: list[str] = field(default_factory=lambda: [
        "exact_match", "token_f1", "match_pred_in_gold", "match_gold_in_pred"])
    retrieval_k: list[Annotated[int, Ge(1)]] = field(default_factory=lambda: [1, 3, 5, 10, 20])
    # DPR's top-k accuracy, for questions without gold passage ids (NQ, TriviaQA): the share
    # with a gold answer in the text of one of their first k passages; [1, 5, 20] as DPR
    answer_recall_k: list[Annotated[int, Ge(1)]] = added([])
    # the metrics of the sets whose name contains a key (fever: [first_char_accuracy]); the
    # other sets report ``metrics``. Used for the per-set blocks and their macro average.
    set_metrics: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        check_metric_names(self.metrics, where="metrics")
        for key, names in self.set_metrics.items():
            check_metric_names(names, where=f"set_metrics.{key}")


DISPLAY = {"avg_selected_docs": "docs", "exact_match": "EM", "token_f1": "F1",
           "match_gold_in_pred": "gold⊂pred", "match_pred_in_gold": "pred⊂gold",
           "first_char_accuracy": "acc", "rouge_l": "ROUGE-L", "recall@1": "R@1",
           "answer_recall@5": "A@5", "answer_recall@20": "A@20"}
"""Result-table columns: metric -> label, in order (at most 8 are shown)."""


def display(metrics: dict, configured: list[str]) -> dict[str, str]:
    """The ``display`` block: known metrics present in :data:`DISPLAY` order, then the other
    configured metrics under their own names.

    >>> display({"exact_match": 0.5, "token_f1": 0.6, "recall@1": 1.0, "my_metric": 0.2},
    ...         ["token_f1", "exact_match", "my_metric"])
    {'exact_match': 'EM', 'token_f1': 'F1', 'recall@1': 'R@1', 'my_metric': 'my_metric'}
    """
    shown = {name: label for name, label in DISPLAY.items() if name in metrics}
    return {**shown, **{n: n for n in configured if n in metrics and n not in shown}}


class Evaluation(NamedTuple):
    metrics: EvalMetrics
    per_question: PerQuestion


def _names(cfg: EvaluateConfig) -> list[str]:
    """Every metric computed per question: ``metrics`` then the per-set ones, once each."""
    return list(dict.fromkeys(cfg.metrics + [m for ms in cfg.set_metrics.values() for m in ms]))


def set_metric_names(dataset: str, cfg: EvaluateConfig) -> list[str]:
    """The metrics a set reports: those of the first ``set_metrics`` key that names it (a whole
    word of its name), else ``metrics``.

    >>> cfg = EvaluateConfig(set_metrics={"fever": ["first_char_accuracy"]})
    >>> set_metric_names("fever_dev", cfg), set_metric_names("feverous", cfg) == cfg.metrics
    (['first_char_accuracy'], True)
    """
    return for_set(cfg.set_metrics, dataset, cfg.metrics)


def top_level_means(per_question: list[dict], cfg: EvaluateConfig) -> dict[str, float | None]:
    """Each of ``cfg.metrics`` averaged over the scored questions of the sets that report it
    (:func:`set_metric_names`), not over every question: a set that ``set_metrics`` scores
    with accuracy adds no EM to the top-level EM. None where no set reports a metric.

    >>> cfg = EvaluateConfig(metrics=["exact_match"],
    ...                      set_metrics={"fever": ["first_char_accuracy"]})
    >>> top_level_means([{"dataset": "nq", "exact_match": 1.0},
    ...                  {"dataset": "nq", "exact_match": None},        # no gold answer
    ...                  {"dataset": "fever", "exact_match": 0.0}], cfg)
    {'exact_match': 1.0}
    """
    reports = {d: set_metric_names(d, cfg) for d in {r["dataset"] for r in per_question}}
    return {name: mean([r[name] for r in per_question
                        if name in reports[r["dataset"]] and r[name] is not None])
            for name in cfg.metrics}


def _set_block(dataset: str, per_question: list[dict], cfg: EvaluateConfig,
               retrieval_names: list[str]) -> dict:
    rows = [r for r in per_question if r["dataset"] == dataset]
    return {"num_questions": len(rows),
            "avg_selected_docs": mean([r["num_selected"] for r in rows]),
            **{name: mean([r[name] for r in rows if r[name] is not None])
               for name in set_metric_names(dataset, cfg) + retrieval_names}}


@stage("evaluate", version=10)   # 6: per-set metrics; 7: letter golds, ranks; 8: picked letter
# 9: quoted letters and the pronoun "I" read right; DPR's tokens for answer_recall; golds
#    stripped; with set_metrics, top-level metrics over the sets that report them
# 10: passages scored as the generator read them (``selected``); none scored without retrieval
def evaluate(predictions: Predictions, cfg: EvaluateConfig, ctx: StageContext) -> Evaluation:
    """Mean answer metrics, retrieval metrics when gold ids exist, and per-question scores."""
    rows = predictions.rows()

    per_question, num_scored = [], 0
    for row in rows:
        prediction = row.get("prediction") or ""
        golds = usable_golds(row.get("answers"))
        record = {"id": row["id"], "prediction": prediction, "dataset": row.get("dataset") or "",
                  "num_selected": len(row.get("selected") or [])}
        for name in _names(cfg):
            record[name] = float(METRICS[name](prediction, golds)) if golds else None
        num_scored += bool(golds)
        per_question.append(record)

    retrieved = any(row.get("ctxs") for row in rows)   # without retrieval, R@1 is no 0: none
    if not retrieved and (cfg.retrieval_k or cfg.answer_recall_k):
        ctx.log.info("no question has passages (a run without retrieval): no passage metrics")
    read = [{**row, "ctxs": passages_read(row)} for row in rows]   # what the generator read
    retrieval_names, recall_names = score_passages(
        read, per_question, cfg.retrieval_k if retrieved else [],
        cfg.answer_recall_k if retrieved else [], ctx.log, retrieved)
    passage_names = retrieval_names + recall_names
    metrics = {"label": cfg.name or ctx.step, "num_questions": len(rows),
               "num_scored": num_scored,
               "avg_selected_docs": mean([r["num_selected"] for r in per_question]),
               **top_level_means(per_question, cfg)}
    for name in passage_names:
        metrics[name] = mean([r[name] for r in per_question if r[name] is not None])
    if retrieval_names:
        metrics["num_retrieval_questions"] = sum(bool(r.get("gold")) for r in rows)
    datasets = sorted({r["dataset"] for r in per_question})
    # several evaluation sets in one run (the paper's seven), or one that set_metrics scores
    # with metrics of its own, which are in its block only
    if len(datasets) > 1 or any(set_metric_names(d, cfg) != cfg.metrics for d in datasets):
        metrics["by_dataset"] = {d: _set_block(d, per_question, cfg, passage_names)
                                 for d in datasets}
        metrics["macro"] = macro_average(metrics["by_dataset"])
    # the per-set metrics (FEVER's accuracy, ELI5's ROUGE-L) are in the blocks only: their
    # labels too, so that a table row per set (rag report) shows them
    metrics["display"] = display({**metrics.get("macro", {}), **metrics}, _names(cfg))
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                      if isinstance(v, float) and k in cfg.metrics + passage_names)
    ctx.log.info("%s: %d questions (%d with gold answers): %s", metrics["label"], len(rows),
                 metrics["num_scored"], shown or "no scored question")
    return Evaluation(metrics=metrics, per_question=per_question)
