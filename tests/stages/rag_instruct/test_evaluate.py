"""``rag_instruct.evaluate`` called directly on hand-written predictions from three sets."""

from __future__ import annotations

import doctest

import pytest

from orchestrator.api import ConfigError
from stages.rag_instruct import evaluate as evaluate_module
from stages.rag_instruct.evaluate import RagInstructEvaluateConfig, evaluate
from stages.schemas import EvalMetrics, PerQuestion, Predictions

GASES = "Which gas do plants absorb?\nA. oxygen\nB. carbon dioxide\nC. helium"


def row(qid, dataset, answers, prediction, question="q?", selected=(0, 1)):
    return {"id": qid, "dataset": dataset, "question": question, "answers": list(answers),
            "gold": [], "ctxs": [], "selected": list(selected), "selection": "",
            "prediction": prediction}


ROWS = [
    # open QA: right; gold inside a longer word (wrong); no gold (not scored)
    row("p1", "popqa", ["Paris"], "It is Paris.", selected=[0, 1, 2]),
    row("p2", "popqa", ["Lyon"], "Lyonnais cooking."),
    row("p3", "popqa", [], "Who knows."),
    # multiple choice, options in the question: the letter B; no letter, "carbon dioxide" -> B
    row("a1", "arc_challenge", ["B"], "The answer is B.", GASES),
    row("a2", "arc_challenge", ["A"], "They absorb carbon dioxide.", GASES, selected=[]),
    # yes/no: "true" right, "true" for a false claim wrong, "false," right
    row("h1", "pubhealth", ["true"], "True."),
    row("h2", "pubhealth", ["false"], "This is true."),
    row("h3", "pubhealth", ["false"], "False, the claim is misleading."),
]


def test_doctests():
    assert doctest.testmod(evaluate_module).failed == 0


def test_accuracy_per_set_and_macro(model_env):
    art, ctx = model_env
    metrics, per_q = evaluate(art(Predictions, ROWS), RagInstructEvaluateConfig(name="3B"),
                              ctx("evaluate"))
    art(EvalMetrics, metrics), art(PerQuestion, per_q)      # both fit their declared types

    by_id = {r["id"]: r for r in per_q}
    assert [by_id[i]["accuracy"] for i in ("p1", "p2", "p3", "a1", "a2", "h1", "h2", "h3")] == \
        [1.0, 0.0, None, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert by_id["a2"]["rule"] == "choice" and by_id["a2"]["choice"] == "B"
    assert by_id["h1"]["rule"] == "yes_no" and by_id["p1"]["rule"] == "open_qa"
    assert by_id["p1"]["choice"] is None and by_id["p3"]["exact_match"] is None

    sets = metrics["by_dataset"]
    assert sets["popqa"] == {"rule": "open_qa", "num_questions": 3, "num_scored": 2,
                             "correct": 1, "accuracy": 0.5, "exact_match": 0.0,
                             "token_f1": 0.25}  # p1: "it is paris" P 1/3, R 1, F1 0.5; p2: 0
    assert sets["arc_challenge"]["accuracy"] == 0.5 and sets["arc_challenge"]["correct"] == 1
    assert sets["pubhealth"]["accuracy"] == pytest.approx(2 / 3)
    assert sets["pubhealth"]["exact_match"] == pytest.approx(1 / 3)      # only "True." is EM

    assert metrics["label"] == "3B"
    assert (metrics["num_questions"], metrics["num_scored"]) == (8, 7)
    assert metrics["accuracy"] == pytest.approx(4 / 7)                  # over the questions
    assert metrics["macro"]["num_sets"] == 3
    assert metrics["macro"]["accuracy"] == pytest.approx((0.5 + 0.5 + 2 / 3) / 3)   # over sets
    assert metrics["avg_selected_docs"] == pytest.approx((3 + 2 * 6 + 0) / 8)
    assert metrics["display"] == {"accuracy": "acc", "exact_match": "EM", "token_f1": "F1",
                                  "avg_selected_docs": "docs"}


def test_one_set_still_has_its_block_and_other_metrics_show_by_name(model_env):
    art, ctx = model_env
    cfg = RagInstructEvaluateConfig(metrics=["match_gold_in_pred"])
    metrics, _ = evaluate(art(Predictions, ROWS[:2]), cfg, ctx("eval_popqa"))
    assert metrics["label"] == "eval_popqa"
    assert list(metrics["by_dataset"]) == ["popqa"]
    # "Lyonnais" holds "lyon" as a substring (match_gold_in_pred) but not as a word (accuracy)
    assert metrics["macro"] == {"num_sets": 1, "accuracy": 0.5, "match_gold_in_pred": 1.0}
    assert metrics["display"] == {"accuracy": "acc", "avg_selected_docs": "docs",
                                  "match_gold_in_pred": "match_gold_in_pred"}


def test_options_field_is_used_when_present(model_env):
    art, ctx = model_env
    rows = [{**row("m1", "medqa", ["C"], "Surely helium"), "options": ["oxygen", "neon", "helium"]}]
    _, per_q = evaluate(art(Predictions, rows), RagInstructEvaluateConfig(), ctx("evaluate"))
    assert per_q[0]["choice"] == "C" and per_q[0]["accuracy"] == 1.0


def test_unknown_metric_is_a_config_error():
    from orchestrator.stage_config import check_step_config

    with pytest.raises(ConfigError, match=r"metrics: unknown \['bleu'\]"):
        RagInstructEvaluateConfig(metrics=["exact_match", "bleu"])
    with pytest.raises(ConfigError, match=r"steps.eval: metrics: unknown \['bleu'\]"):
        check_step_config(RagInstructEvaluateConfig, {"metrics": ["bleu"]}, "steps.eval")


def test_pubhealth_under_the_seeds_file_name_is_a_true_false_set(model_env):
    """The seed names PubHealth's file health_claims_processed: yes/no scoring, and the
    evaluation prompt asks for true or false."""
    from pathlib import Path

    from stages.lib.prompts import generator_messages, load_prompt

    art, ctx = model_env
    _, per_q = evaluate(art(Predictions, [row("hc1", "health_claims_processed", ["false"],
                                              "False.")]),
                        RagInstructEvaluateConfig(), ctx("evaluate"))
    assert (per_q[0]["rule"], per_q[0]["accuracy"]) == ("yes_no", 1.0)
    prompt = load_prompt(Path(__file__).resolve().parents[3] / "conf/prompts/rag_instruct/eval.yaml")
    (msg,) = generator_messages(prompt, "Vitamin C cures colds.", [], "health_claims_processed")
    assert "true or false: Vitamin C cures colds." in msg["content"]


def test_the_loaders_choices_are_the_options(model_env):
    """A row whose options came as ``choices`` (ARC, OpenBookQA, MedQA through the loader) is
    scored against them when its question does not list them."""
    art, ctx = model_env
    rows = [{**row("o1", "openbookqa", ["B"], "They take in carbon dioxide.", "Which gas?"),
             "choices": ["oxygen", "carbon dioxide"]}]
    _, per_q = evaluate(art(Predictions, rows), RagInstructEvaluateConfig(), ctx("evaluate"))
    assert (per_q[0]["choice"], per_q[0]["accuracy"]) == ("B", 1.0)


@pytest.mark.parametrize("dataset", ["obqa", "obqa_test", "my_quiz"])
def test_a_row_with_options_and_a_letter_gold_is_multiple_choice(model_env, dataset):
    """Before: a set named ``obqa`` (the loader's and Self-RAG's name for OpenBookQA), or any
    set no key names, was scored as open QA, where the letter gold "A" word-matches the article
    "a" in an answer that picks B."""
    art, ctx = model_env
    choices = ["a plant", "iron", "glass", "salt"]
    rows = [{**row("x1", dataset, ["A"], "B: a plant is not it, iron is", "Which is a metal?"),
             "choices": choices},
            {**row("x2", dataset, ["B"], "B: iron", "Which is a metal?"), "choices": choices}]
    metrics, per_q = evaluate(art(Predictions, rows), RagInstructEvaluateConfig(),
                              ctx("evaluate"))
    assert [(r["rule"], r["choice"], r["accuracy"]) for r in per_q] == [
        ("choice", "B", 0.0), ("choice", "B", 1.0)]
    assert metrics["by_dataset"][dataset]["rule"] == "choice"


def test_a_row_without_options_or_with_a_text_gold_keeps_its_sets_rule(model_env):
    art, ctx = model_env
    rows = [row("n1", "my_quiz", ["A"], "a plant"),                       # no options
            {**row("n2", "nq", ["iron"], "It is iron."), "choices": ["wood", "iron"]},
            {**row("n3", "pubhealth", ["true"], "True."), "choices": ["true", "false"]}]
    _, per_q = evaluate(art(Predictions, rows), RagInstructEvaluateConfig(), ctx("evaluate"))
    assert [(r["rule"], r["accuracy"]) for r in per_q] == [
        ("open_qa", 1.0), ("open_qa", 1.0), ("yes_no", 1.0)]


def test_an_empty_answer_is_wrong_even_on_the_last_option(model_env):
    art, ctx = model_env
    rows = [row("e1", "arc_challenge", ["C"], "  ", GASES)]
    _, per_q = evaluate(art(Predictions, rows), RagInstructEvaluateConfig(), ctx("evaluate"))
    assert (per_q[0]["choice"], per_q[0]["accuracy"]) == (None, 0.0)
