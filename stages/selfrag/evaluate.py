"""Stage ``selfrag.evaluate``: Self-RAG's accuracy and retrieval frequency (SEEDS §2.7).

``selfrag_match`` is the paper's "accuracy" (a gold string occurs in the prediction,
case-sensitive, no normalisation; :mod:`stages.selfrag.metrics`), named apart from ragline's
normalised ``match_gold_in_pred``. For FEVER / PubHealth sets, and for ``selfrag_match`` only, a
prediction containing SUPPORTS (checked first) or REFUTES is replaced as a whole by "true" or
"false" (the seed's ``run_short_form.py`` lines 345-348), and so is a gold: the seed's processed
files hold true / false, KILT's FEVER (``output: [{answer: "REFUTES"}]``) the labels, which no
mapped prediction could match (NOT ENOUGH INFO stays as it is, on both sides). The rewrite is
case-sensitive, as the seed's ("supports" stays as it is). The shared metrics below, and the
per-question ``prediction``, see the prediction and the golds as they are, so they agree with
the other evaluations' (``evaluate``, ``rag_instruct.evaluate``) on the same rows: a "supports"
against the gold SUPPORTS is an exact match there, and "SUPPORTS" against the gold "true" is not.
Every metric, ``selfrag_match`` too, sees the golds stripped of surrounding spaces, blank ones
dropped, as the other evaluations do (the seed does not strip: its gold " Paris " is in no
answer).
``retrieval_frequency`` is the share of questions for which the model retrieved (the
``retrieved`` column of ``selfrag.infer``; for other producers such as ``infer_topk``, whether
any passage was read), per set and overall: the seed divided by the number of keys of its
results dict instead of the number of questions. The shared answer metrics
(``metrics``, names of :data:`stages.lib.metrics.answer.METRICS`) are reported beside them, so a
plain-RAG baseline evaluated here lines up in one results table.

ASQA-style rows (those carrying ``qa_pairs`` and/or long-form references: ``annotations``
``[].long_answer`` as in ALCE's data, or ``long_answers``) are also scored with ALCE's ``str_em``
(share of QA pairs whose short answer occurs in the normalised output), ``str_hit`` and
``rouge_lsum`` (ROUGE-Lsum, best reference), the output cleaned as ALCE does (first line,
citations removed; :mod:`stages.lib.metrics.alce`, which says where it differs from ALCE). Those
columns appear only when some row has the references; other rows get null there.

Not computed, and why: ALCE's MAUVE (``compute_mauve``) featurises texts with GPT2-large, and its
citation recall/precision (``compute_autoais``) runs the 11B NLI model
``google/t5_xxl_true_nli_mixture``; both are model-hub downloads (GPT2-large 3 GB, T5-XXL 45 GB,
the latter wanting a large GPU), which this stage does not make. A user who wants them installs
``mauve-text`` (plus ``torch``/``transformers``, already here) and runs ALCE's ``eval.py
--mauve --citations`` on this step's predictions, whose answers carry ALCE-style ``[n]``
citations into the passages listed in ``ctxs`` (ALCE's ``docs``).

Metrics written: ``label``, ``num_questions``, ``num_scored``, each metric's mean, ``by_dataset``
(per set: ``num_questions``, the metrics, ``retrieval_frequency``) and the ``display`` block
(metric -> column label) that result tables read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from orchestrator.api import StageContext, stage
from stages.lib.data.set_names import names_set
from stages.schemas import EvalMetrics, PerQuestion, Predictions

DISPLAY = {"selfrag_match": "match", "retrieval_frequency": "ret. freq",
           "exact_match": "EM", "token_f1": "F1", "str_em": "str-em", "rouge_lsum": "ROUGE-Lsum"}
"""Result-table columns: metric -> label, in order."""
ASQA_METRICS = ("str_em", "str_hit", "rouge_lsum")


@dataclass
class SelfragEvaluateConfig:
    name: str = ""                        # row label in result tables; "" = the step's name
    metrics: list[str] = field(default_factory=lambda: ["exact_match", "token_f1"])
    fever_sets: list[str] = field(default_factory=lambda: ["fever", "pubhealth", "health_claims"])

    def __post_init__(self):
        from stages.lib.metrics.answer import check_metric_names

        check_metric_names(self.metrics, where="metrics")


class SelfragEvaluation(NamedTuple):
    metrics: EvalMetrics
    per_question: PerQuestion


def score_row(row: dict, cfg: SelfragEvaluateConfig) -> dict:
    """Per-question record: selfrag_match (FEVER sets: on the labels rewritten to true / false),
    the shared metrics (on the prediction and golds as they are), whether it retrieved, and
    ALCE's ASQA metrics (None for a row without ASQA references).

    >>> cfg = SelfragEvaluateConfig(metrics=["exact_match"])
    >>> r = score_row({"id": "q", "dataset": "fever", "prediction": "Yes: SUPPORTS",
    ...                "answers": ["true"], "ctxs": []}, cfg)
    >>> r["prediction"], r["selfrag_match"], r["exact_match"], r["retrieved"]
    ('Yes: SUPPORTS', 1.0, 0.0, False)
    >>> r = score_row({"id": "q", "dataset": "fever", "prediction": "supports",  # KILT's golds
    ...                "answers": ["SUPPORTS"]}, cfg)
    >>> r["selfrag_match"], r["exact_match"]        # "supports" is not rewritten: the seed's
    (0.0, 1.0)
    >>> score_row({"id": "q", "prediction": "It was Paris.", "answers": [" Paris "]},
    ...           cfg)["selfrag_match"]                  # golds are stripped (the seed's not)
    1.0
    """
    from stages.lib.metrics.alce import asqa_scores
    from stages.lib.metrics.answer import METRICS, usable_golds
    from stages.selfrag.metrics import fever_prediction, selfrag_match

    dataset = row.get("dataset") or ""
    prediction = row.get("prediction") or ""
    golds = usable_golds(row.get("answers"))    # stripped: " Paris " is in "It was Paris."
    match_prediction, match_golds = prediction, golds
    if any(names_set(key, dataset) for key in cfg.fever_sets):   # SUPPORTS/REFUTES: true/false
        match_prediction = fever_prediction(prediction)
        match_golds = list(dict.fromkeys(fever_prediction(g) for g in golds))
    retrieved = row.get("retrieved")
    record = {"id": row["id"], "prediction": prediction, "dataset": dataset,
              "retrieved": bool(row.get("ctxs")) if retrieved is None else bool(retrieved),
              "selfrag_match": selfrag_match(match_prediction, match_golds) if golds else None}
    for name in cfg.metrics:
        record[name] = float(METRICS[name](prediction, golds)) if golds else None
    return {**record, **asqa_scores(prediction, row)}


def summary(records: list[dict], names: list[str]) -> dict:
    """Means over scored questions and the retrieval frequency over all.

    >>> summary([{"selfrag_match": 1.0, "retrieved": True},
    ...          {"selfrag_match": 0.0, "retrieved": False},
    ...          {"selfrag_match": None, "retrieved": True}], ["selfrag_match"])
    {'num_questions': 3, 'selfrag_match': 0.5, 'retrieval_frequency': 0.6666666666666666}
    """
    from stages.lib.metrics.passage_scores import mean
    from stages.selfrag.metrics import retrieval_frequency

    out: dict = {"num_questions": len(records)}
    for name in names:
        out[name] = mean([r.get(name) for r in records])
    out["retrieval_frequency"] = retrieval_frequency([r["retrieved"] for r in records])
    return out


@stage("selfrag.evaluate", version=7)  # 2: FEVER labels replace it; 3: EM of "A"; 5: picked letter
# 4: FEVER golds given as SUPPORTS / REFUTES (KILT) become true / false, as the prediction does
# 6: that rewrite is for selfrag_match only; the shared metrics see the prediction and golds as
#    they are
# 7: golds stripped of surrounding spaces; the shared metrics read quoted letters ('B') and
#    skip the pronoun "I"
def evaluate(predictions: Predictions, cfg: SelfragEvaluateConfig,
             ctx: StageContext) -> SelfragEvaluation:
    """selfrag_match, the shared answer metrics and the retrieval frequency, per set and overall."""
    records = [score_row(r, cfg) for r in predictions.rows()]
    asqa = [m for m in ASQA_METRICS if any(r[m] is not None for r in records)]
    if not asqa:
        records = [{k: v for k, v in r.items() if k not in ASQA_METRICS} for r in records]
    names = ["selfrag_match"] + [m for m in cfg.metrics if m != "selfrag_match"] + asqa
    metrics = {"label": cfg.name or ctx.step,
               "num_scored": sum(r["selfrag_match"] is not None for r in records),
               **summary(records, names)}
    metrics["by_dataset"] = {d: summary([r for r in records if r["dataset"] == d], names)
                             for d in sorted({r["dataset"] for r in records})}
    metrics["display"] = {**{k: v for k, v in DISPLAY.items() if k in metrics},
                          **{m: m for m in cfg.metrics if m not in DISPLAY}}
    ctx.log.info("%s: %d questions, selfrag_match %s, retrieval frequency %.3f", metrics["label"],
                 len(records), metrics["selfrag_match"], metrics["retrieval_frequency"] or 0.0)
    return SelfragEvaluation(metrics=metrics, per_question=records)
