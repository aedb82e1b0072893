"""``evaluate`` called directly: answer and retrieval metrics, per-question scores."""


import pytest

from orchestrator.api import ConfigError
from stages.common.evaluate import EvaluateConfig, evaluate
from stages.schemas import EvalMetrics, PerQuestion, Predictions


def prediction_row(qid, prediction, answers, gold=(), ctx_ids=(), selected=None, dataset="nq"):
    """A row of ``Predictions``; by default its generator read every passage, in order (as
    ``infer_topk`` records it)."""
    selected = range(1, len(ctx_ids) + 1) if selected is None else selected
    return {"id": qid, "dataset": dataset, "question": "q?", "answers": list(answers),
            "gold": list(gold),
            "ctxs": [{"id": d, "title": "", "text": "", "score": None} for d in ctx_ids],
            "selected": list(selected), "selection": "", "prediction": prediction}


def test_evaluate(env):
    table, written, ctx = env
    rows = [prediction_row("1", "Paris", ["Paris"], gold=["d2"], ctx_ids=["d1", "d2"],
                           selected=[2]),
            prediction_row("2", "the city of Rome", ["Rome", "Roma"], ctx_ids=["d3"],
                           selected=[1, 2, 3], dataset="tqa"),
            prediction_row("3", "", [], dataset="tqa")]                # no gold: not scored
    cfg = EvaluateConfig(name="DynamicRAG", retrieval_k=[1, 2])
    out = evaluate(table(Predictions, rows), cfg, ctx("evaluate"))
    metrics, per_q = written(EvalMetrics, out.metrics), written(PerQuestion, out.per_question)
    assert metrics["label"] == "DynamicRAG"
    assert metrics["num_questions"] == 3 and metrics["num_scored"] == 2
    assert metrics["exact_match"] == pytest.approx(0.5)
    # token F1 of q2: pred [city, of, rome] vs [rome]: P 1/3, R 1, F1 0.5
    assert metrics["token_f1"] == pytest.approx((1 + 0.5) / 2)
    assert metrics["match_pred_in_gold"] == pytest.approx(0.5)
    assert metrics["match_gold_in_pred"] == pytest.approx(1.0)
    assert metrics["avg_selected_docs"] == pytest.approx(4 / 3)
    # retrieval over question 1 only: its generator read d2 (selected [2]), the gold, first
    assert metrics["num_retrieval_questions"] == 1
    assert metrics["recall@1"] == 1.0 and metrics["recall@2"] == 1.0
    assert metrics["mrr@2"] == 1.0
    assert all(not isinstance(v, (dict, list)) for k, v in metrics.items()
               if k not in ("by_dataset", "macro", "display"))
    assert metrics["display"] == {"avg_selected_docs": "docs", "exact_match": "EM", "token_f1": "F1",
                                  "match_gold_in_pred": "gold⊂pred",
                                  "match_pred_in_gold": "pred⊂gold", "recall@1": "R@1"}
    assert metrics["by_dataset"]["nq"]["num_questions"] == 1
    assert metrics["by_dataset"]["tqa"]["exact_match"] == pytest.approx(0.0)
    assert [r["id"] for r in per_q] == ["1", "2", "3"]
    assert per_q[2]["exact_match"] is None and per_q[1]["recall@2"] is None
    assert [(r["dataset"], r["num_selected"]) for r in per_q] == [("nq", 1), ("tqa", 3), ("tqa", 0)]
    assert per_q[0]["mrr@2"] == 1.0


def test_the_per_set_metrics_are_displayed_for_the_rows_of_their_sets(env):
    """FEVER's accuracy is in its block and the macro average only; its label is in ``display``
    (which the blocks share), so a row per set shows it; the top-level row has no such value."""
    table, written, ctx = env
    rows = [prediction_row("1", "Paris", ["Paris"]),
            prediction_row("2", "SUPPORTS it is", ["SUPPORTS"], dataset="fever_dev")]
    cfg = EvaluateConfig(retrieval_k=[], set_metrics={"fever": ["first_char_accuracy"]})
    metrics = written(EvalMetrics, evaluate(table(Predictions, rows), cfg, ctx("ev")).metrics)
    assert metrics["by_dataset"]["fever_dev"]["first_char_accuracy"] == 1.0
    assert "first_char_accuracy" not in metrics
    assert metrics["display"]["first_char_accuracy"] == "acc"
    assert list(metrics["display"])[:3] == ["avg_selected_docs", "exact_match", "token_f1"]


def test_evaluate_without_gold_ids_and_default_label(env):
    table, written, ctx = env
    rows = [prediction_row("1", "Paris", ["Paris"], ctx_ids=["d1"])]
    out = evaluate(table(Predictions, rows), EvaluateConfig(metrics=["rouge_l"]), ctx("eval_nq"))
    metrics = written(EvalMetrics, out.metrics)
    assert metrics["label"] == "eval_nq" and metrics["rouge_l"] == 1.0
    assert "recall@1" not in metrics
    assert metrics["display"] == {"avg_selected_docs": "docs", "rouge_l": "ROUGE-L"}
    with pytest.raises(ConfigError, match=r"metrics: unknown \['em'\]"):
        EvaluateConfig(metrics=["em"])


def test_evaluate_config_is_checked_at_plan_time():
    from orchestrator.stage_config import check_step_config

    with pytest.raises(ConfigError, match=r"steps.eval: metrics: unknown \['em'\]"):
        check_step_config(EvaluateConfig, {"metrics": ["em"]}, "steps.eval")
    with pytest.raises(ConfigError, match=r"steps.eval.retrieval_k\[1\]"):
        check_step_config(EvaluateConfig, {"retrieval_k": [1, 0]}, "steps.eval")


def test_display_doctest():
    import doctest

    from stages.common import evaluate as module

    assert doctest.testmod(module).failed == 0


def test_one_block_per_set_with_its_metrics_and_the_macro_average(env):
    table, written, ctx = env
    rows = [prediction_row("nq/0", "Paris", ["Paris"], selected=[1]),
            prediction_row("nq/1", "Rome", ["Paris"], selected=[1, 2]),   # a set's docs: its mean
            prediction_row("fever/0", "refutes", ["REFUTES"], dataset="fever", selected=[1, 2, 3]),
            prediction_row("eli5/0", "the cat sat on the mat", ["the cat lay on the mat"],
                           dataset="eli5", selected=[2, 1])]
    cfg = EvaluateConfig(metrics=["exact_match"], set_metrics={
        "fever": ["first_char_accuracy"], "eli5": ["rouge_l"]})
    metrics = written(EvalMetrics, evaluate(table(Predictions, rows), cfg, ctx("e")).metrics)
    assert metrics["by_dataset"] == {
        "eli5": {"num_questions": 1, "avg_selected_docs": 2.0, "rouge_l": pytest.approx(5 / 6)},
        "fever": {"num_questions": 1, "avg_selected_docs": 3.0, "first_char_accuracy": 1.0},
        "nq": {"num_questions": 2, "avg_selected_docs": 1.5, "exact_match": 0.5}}
    # unweighted over sets: each metric averaged over the sets that report it
    assert metrics["macro"] == {"num_sets": 3, "avg_selected_docs": pytest.approx(13 / 6),
                                "exact_match": 0.5, "first_char_accuracy": 1.0,
                                "rouge_l": pytest.approx(5 / 6)}
    with pytest.raises(ConfigError, match=r"unknown \['acc'\]"):
        EvaluateConfig(set_metrics={"fever": ["acc"]})


def test_an_unknown_set_metric_names_its_set():
    from orchestrator.stage_config import check_step_config

    with pytest.raises(ConfigError, match=r"^steps.eval: set_metrics.fever: unknown \['acc'\]; "
                                          r"known: exact_match, first_char_accuracy, "):
        check_step_config(EvaluateConfig, {"set_metrics": {"fever": ["acc"]}}, "steps.eval")


def test_answer_recall_scores_passages_without_gold_ids(env):
    """DPR's top-k accuracy: a gold answer in the text of one of the first k passages; a
    question without answers is left out, one without passages scores 0."""
    table, written, ctx = env
    texts = {"d1": "Marie Curie won two Nobel prizes.", "d2": "Wilhelm Röntgen won in 1901.",
             "d3": "Rome is the capital of Italy."}

    def row(qid, answers, ctx_ids, dataset):
        r = prediction_row(qid, "x", answers, ctx_ids=ctx_ids, dataset=dataset)
        for c in r["ctxs"]:
            c["text"] = texts[c["id"]]
        return r

    rows = [row("1", ["Röntgen"], ["d1", "d2"], "nq-test"), row("2", ["Roma"], ["d3"], "nq-test"),
            row("3", ["Rome"], ["d3", "d1"], "trivia-test"), row("4", [], ["d1"], "trivia-test"),
            row("5", ["Paris"], [], "trivia-test")]
    cfg = EvaluateConfig(metrics=["exact_match"], answer_recall_k=[1, 5])
    out = evaluate(table(Predictions, rows), cfg, ctx("eval_dpr"))
    metrics, per_q = written(EvalMetrics, out.metrics), written(PerQuestion, out.per_question)
    assert [r["answer_recall@1"] for r in per_q] == [0.0, 0.0, 1.0, None, 0.0]
    assert [r["answer_recall@5"] for r in per_q] == [1.0, 0.0, 1.0, None, 0.0]
    assert metrics["answer_recall@1"] == pytest.approx(1 / 4)
    assert metrics["answer_recall@5"] == pytest.approx(2 / 4)
    assert metrics["by_dataset"]["trivia-test"]["answer_recall@5"] == pytest.approx(1 / 2)
    assert metrics["macro"]["answer_recall@5"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert metrics["display"]["answer_recall@5"] == "A@5"
    assert "recall@1" not in metrics      # no gold ids: pytrec_eval's metrics stay out
    assert "num_retrieval_questions" not in metrics


def test_answer_recall_is_off_by_default_and_skipped_without_passages(env):
    table, written, ctx = env
    rows = [prediction_row("1", "Paris", ["Paris"], ctx_ids=["d1"])]
    metrics = written(EvalMetrics, evaluate(table(Predictions, rows), EvaluateConfig(),
                                            ctx("ev")).metrics)
    assert not any(k.startswith("answer_recall") for k in metrics)
    no_passages = [prediction_row("1", "Paris", ["Paris"])]      # the no-retrieval baseline
    cfg = EvaluateConfig(answer_recall_k=[1])
    metrics = written(EvalMetrics, evaluate(table(Predictions, no_passages), cfg,
                                            ctx("ev")).metrics)
    assert "answer_recall@1" not in metrics
