"""Stage ``rag_instruct.evaluate``: RAG-Instruct's per-set accuracy (SEEDS §4.6, seed step
``eval/eval_sglang.py`` + ``eval/scorer.py``, step 7 of §4.3).

Each question is scored by the rule of its set (:mod:`stages.rag_instruct.scorer`): multiple
choice (``choice_sets``), ConvFinQA's digit match (``numeric_sets``), yes/no
(``yes_no_sets``), else the open-QA word match; the longest key found in a set's name decides.
A row that has ``options`` or ``choices`` and only option letters as golds is multiple choice
whatever its set's name (:func:`stages.rag_instruct.scorer.letter_golds`): a letter gold "A"
under the open-QA rule would match the article "a". A multiple-choice row's options are its
``options``, else its ``choices`` (the loader's, in letter order), else the option lines of its
question.
The paper's tables report this accuracy per set and their average over the sets, so the stage
writes:

* ``accuracy`` per question (1.0 / 0.0; null without a gold answer), with the ``rule`` used and,
  for multiple choice, the ``choice`` (the predicted letter);
* ``label``, ``num_questions``, ``num_scored`` (questions with a gold), ``accuracy`` (over all
  scored questions), the shared answer metrics of ``metrics`` (names of
  :data:`stages.lib.metrics.answer.METRICS`, computed beside so a row lines up with the other
  evaluations), ``avg_selected_docs`` (mean number of passages the model was given);
* ``by_dataset``: per set its ``rule``, ``num_questions``, ``num_scored``, ``correct``,
  ``accuracy`` and the shared metrics (always present, even for one set);
* ``macro``: the unweighted mean over the sets of each of those (``num_sets`` beside), the
  paper's average column;
* ``display``: the results-table columns (metric -> label).

Differences from the seed, and why:

* The seed's evaluation script also serves the model (SGLang, sampling at temperature 0.5,
  top-p 0.9) and writes the prompts; here the predictions come from the recipe's inference
  step, and this stage only scores them.
* A set matching none of the keys is scored as open QA instead of stopping the run
  (``ValueError('wrong')`` in the seed); the rule is chosen by a configured key occurring in the
  set's name, not by the seed's fixed file names, and a row with options and letter golds is
  multiple choice under any name (the seed knows its multiple-choice sets by file name only).
* Questions without a gold answer are left out of the accuracy (the seed counts them wrong),
  blank golds are ignored, and golds are stripped of surrounding spaces (the seed's gold
  " Paris " does not match "It was Paris.").
* The seed's files of 20 right and 20 wrong examples per set are not written: the per-question
  table holds every prediction with its score and rule.
* Smaller scorer differences are listed in :mod:`stages.rag_instruct.scorer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from orchestrator.api import StageContext, stage
from stages.lib.metrics.passage_scores import mean
from stages.rag_instruct.scorer import CHOICE_SETS
from stages.schemas import EvalMetrics, PerQuestion, Predictions

DISPLAY = {"accuracy": "acc", "exact_match": "EM", "token_f1": "F1", "avg_selected_docs": "docs"}
"""Result-table columns: metric -> label, in order; other configured metrics under their names."""


@dataclass
class RagInstructEvaluateConfig:
    name: str = ""                        # row label in result tables; "" = the step's name
    # a set whose name contains one of these keys (ignoring case) is scored with that rule (the
    # longest key found decides: "pubmedqa" is yes/no, not "medqa"); any other set as open QA
    choice_sets: list[str] = field(default_factory=lambda: list(CHOICE_SETS))
    numeric_sets: list[str] = field(default_factory=lambda: ["convfinqa"])
    # PubHealth under its own name or the seed's file name (health_claims_processed)
    yes_no_sets: list[str] = field(
        default_factory=lambda: ["pubmedqa", "pubhealth", "health_claims", "hotpotqa"])
    metrics: list[str] = field(default_factory=lambda: ["exact_match", "token_f1"])

    def __post_init__(self):
        from stages.lib.metrics.answer import check_metric_names

        check_metric_names(self.metrics, where="metrics")


class RagInstructEvaluation(NamedTuple):
    metrics: EvalMetrics
    per_question: PerQuestion


def score_row(row: dict, cfg: RagInstructEvaluateConfig) -> dict:
    """Per-question record: the set's rule, the predicted letter (multiple choice), accuracy and
    the shared metrics (None without a gold answer).

    >>> cfg = RagInstructEvaluateConfig(metrics=["exact_match"])
    >>> r = score_row({"id": "q1", "dataset": "arc_challenge", "answers": ["B"], "selected": [0],
    ...                "question": "Pick:\\nA: red\\nB: blue", "prediction": "It is blue."}, cfg)
    >>> r["rule"], r["choice"], r["accuracy"], r["exact_match"], r["num_selected"]
    ('choice', 'B', 1.0, 0.0, 1)

    A set no key names, with options and a letter gold, is multiple choice all the same:

    >>> r = score_row({"id": "q2", "dataset": "my_quiz", "answers": ["A"], "question": "Q?",
    ...                "choices": ["a plant", "iron"], "prediction": "B: a plant is not"}, cfg)
    >>> r["rule"], r["choice"], r["accuracy"]
    ('choice', 'B', 0.0)
    """
    from stages.lib.metrics.answer import METRICS, usable_golds
    from stages.rag_instruct.scorer import (
        CHOICE,
        letter_golds,
        option_map,
        predicted_letter,
        score,
        scorer_for,
    )

    dataset = row.get("dataset") or ""
    prediction = row.get("prediction") or ""
    golds = usable_golds(row.get("answers"))    # stripped, as the scorer compares them
    given = row.get("options") or row.get("choices")
    rule = scorer_for(dataset, cfg)
    if rule != CHOICE and letter_golds(golds, option_map(given)):
        rule = CHOICE                     # options and a letter gold: whatever the set's name
    options = option_map(given, row.get("question") or "") if rule == CHOICE else {}
    record = {"id": row["id"], "prediction": prediction, "dataset": dataset, "rule": rule,
              "choice": predicted_letter(prediction, options) if rule == CHOICE else None,
              "num_selected": len(row.get("selected") or []),
              "accuracy": float(score(rule, prediction, golds, options)) if golds else None}
    for name in cfg.metrics:
        record[name] = float(METRICS[name](prediction, golds)) if golds else None
    return record


def set_block(records: list[dict], names: list[str]) -> dict:
    """One set's figures: rule, counts, accuracy, and the mean of each of ``names`` (the shared
    metrics) over its scored questions.

    >>> b = set_block([{"rule": "open_qa", "accuracy": 1.0, "exact_match": 1.0},
    ...                {"rule": "open_qa", "accuracy": 0.0, "exact_match": 0.0},
    ...                {"rule": "open_qa", "accuracy": None, "exact_match": None}],
    ...               ["exact_match"])
    >>> b["num_questions"], b["num_scored"], b["correct"], b["accuracy"], b["exact_match"]
    (3, 2, 1, 0.5, 0.5)
    """
    scored = [r["accuracy"] for r in records if r["accuracy"] is not None]
    return {"rule": records[0]["rule"], "num_questions": len(records), "num_scored": len(scored),
            "correct": int(sum(scored)), "accuracy": mean(scored),
            **{name: mean([r[name] for r in records]) for name in names}}


def macro(blocks: dict[str, dict], names: list[str]) -> dict:
    """Unweighted mean over the sets of each metric (sets without a value left out).

    >>> macro({"popqa": {"accuracy": 0.5}, "arc": {"accuracy": 1.0}, "x": {"accuracy": None}},
    ...       ["accuracy"])
    {'num_sets': 3, 'accuracy': 0.75}
    """
    return {"num_sets": len(blocks),
            **{name: mean([b[name] for b in blocks.values()]) for name in names}}


@stage("rag_instruct.evaluate", version=5)  # 2: EM/F1 of option letters; 3: F1 of the picked letter
# 4: obqa is a choice set, as is any row with options and letter golds; empty output picks none
# 5: golds stripped; the shared metrics read quoted letters ('B') and skip the pronoun "I"
def evaluate(predictions: Predictions, cfg: RagInstructEvaluateConfig,
             ctx: StageContext) -> RagInstructEvaluation:
    """The paper's accuracy per set (rule by set name), its macro average, and the shared
    answer metrics beside."""
    records = [score_row(r, cfg) for r in predictions.rows()]
    names = ["accuracy", *cfg.metrics]
    metrics = {"label": cfg.name or ctx.step, "num_questions": len(records),
               "num_scored": sum(r["accuracy"] is not None for r in records),
               **{name: mean([r[name] for r in records]) for name in names},
               "avg_selected_docs": mean([r["num_selected"] for r in records])}
    datasets = sorted({r["dataset"] for r in records})
    metrics["by_dataset"] = {d: set_block([r for r in records if r["dataset"] == d], cfg.metrics)
                             for d in datasets}
    metrics["macro"] = macro(metrics["by_dataset"], names)
    metrics["display"] = {**{k: v for k, v in DISPLAY.items() if k in metrics},
                          **{m: m for m in cfg.metrics if m not in DISPLAY}}
    figures = ", ".join(f"{n} {metrics[n]:.4f}" for n in names if metrics[n] is not None)
    ctx.log.info("%s: %d questions (%d scored) in %d sets: %s; macro accuracy %s", metrics["label"],
                 len(records), metrics["num_scored"], len(datasets), figures or "nothing scored",
                 "n/a" if metrics["macro"]["accuracy"] is None
                 else f"{metrics['macro']['accuracy']:.4f}")
    return RagInstructEvaluation(metrics=metrics, per_question=records)
