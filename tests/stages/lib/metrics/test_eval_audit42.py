"""The evaluation audit 42's findings (/work/logs/audit_eval42.md), each checked where it was
reproduced: a quoted option letter and the pronoun "I" (1, 2), DPR's tokens for answer recall
(3), ``reinforced_ir.evaluate``'s ks and MRR ties (4, 5), a k beyond the passages (6), the
top-level EM/F1 beside ``set_metrics`` (8) and golds with spaces around them (9)."""

from __future__ import annotations

import logging
import unicodedata

import pytest

from orchestrator.api import ConfigError
from stages.common.evaluate import EvaluateConfig, evaluate
from stages.common.evaluate_retrieval import EvaluateRetrievalConfig, evaluate_retrieval
from stages.lib.metrics.answer import match_gold_in_pred, picked_letter, token_f1
from stages.lib.metrics.answer_in_passages import answer_recall, answer_tokens, has_answer
from stages.schemas import EvalMetrics, Predictions, Retrieved
from tests.conftest import REPO, plan_checker


def prediction_row(qid, prediction, answers, dataset="nq", ctxs=(), gold=()):
    return {"id": qid, "dataset": dataset, "question": "q?", "answers": list(answers),
            "gold": list(gold), "ctxs": [{"id": f"d{i}", "title": "", "text": text,
                                          "score": None} for i, text in enumerate(ctxs)],
            "selected": list(range(1, len(ctxs) + 1)), "selection": "", "prediction": prediction}


# -- 1: a letter in single quotes is the letter the answer picks -------------------------------

def test_a_quoted_letter_is_picked():
    for prediction in ["The answer is 'B'", "The correct answer is ‘B’.", "Answer: 'B'",
                       "I'd go with 'B' here"]:
        assert picked_letter(prediction) == "B", prediction
        assert token_f1(prediction, ["B"]) == 1.0
        assert match_gold_in_pred(prediction, ["B"]) == 1.0
        assert match_gold_in_pred(prediction, ["C"]) == 0.0
    # an apostrophe beside a letter is still no quote
    assert [picked_letter(p) for p in ["O'Brien said C", "It's B", "B's answer", "rock 'n' roll"]
            ] == ["C", "B", None, None]


# -- 2: "I" before a lowercase word is the pronoun -----------------------------------------------

def test_the_pronoun_i_is_not_an_option():
    for prediction, gold in [("I would choose B.", "B"), ("I was going to say B", "B"),
                             ("Answer: I think B", "B"), ("I would say vitamin C", "C"),
                             ("I also think D", "D"), ("I should pick (A)", "A")]:
        assert picked_letter(prediction) == gold, prediction
        assert token_f1(prediction, [gold]) == 1.0
        assert match_gold_in_pred(prediction, [gold]) == 1.0
        assert match_gold_in_pred(prediction, ["I"]) == 0.0
    # the letters themselves are still read
    assert [picked_letter(p) for p in ["I is correct", "Answer: I", "I.", "A is correct",
                                       "A would be right", "A plant"]
            ] == ["I", "I", "I", "A", "A", None]


# -- 3: answer recall tokenises as DPR's SimpleTokenizer -----------------------------------------

def dpr_tokens(text):
    """DPR's ``SimpleTokenizer(...).tokenize(text).words(uncased=True)`` after its NFD."""
    import regex

    pattern = regex.compile(r"([\p{L}\p{N}\p{M}]+)|([^\p{Z}\p{C}])",
                            flags=regex.IGNORECASE + regex.UNICODE + regex.MULTILINE)
    return [m.group().lower() for m in pattern.finditer(unicodedata.normalize("NFD", text))]


def test_answer_tokens_are_dprs():
    for text in ["Röntgen", "José Mourinho managed Chelsea.", "Kurt Gödel",
                 "the foo_bar variable", "U.S. Army's 1st — “quoted” ½ 中文",
                 "Ｆｕｌｌ width\tand\u200bzero-width"]:
        assert answer_tokens(text) == dpr_tokens(text), text


def test_has_answer_as_dpr():
    for answer, text, found in [("Jose", "José Mourinho managed Chelsea.", False),
                                ("Pele", "Pelé scored 1,000 goals.", False),
                                ("del", "Kurt Gödel proved it.", False),
                                ("foo", "the foo_bar variable", True),
                                ("Röntgen", "Wilhelm RÖNTGEN, in 1901.", True)]:
        assert has_answer([answer], text) is found, (answer, text)


def test_answer_recall_of_an_unaccented_alias():
    scores = answer_recall(["Pele"], ["Pelé scored.", "Pele, the footballer."], [1, 2])
    assert scores == {"answer_recall@1": 0.0, "answer_recall@2": 1.0}


# -- 4: reinforced_ir.evaluate's ks are checked by rag plan --------------------------------------

def test_reinforced_ir_ks_are_checked_at_plan_time(tmp_path, monkeypatch, capsys):
    plan = plan_checker(str(REPO / "conf" / "reinforced_ir_demo.yaml"), tmp_path, monkeypatch,
                        capsys)
    code, out = plan("steps.eval_base.ks=[0,10]")
    assert code == 2 and "steps.eval_base.ks[0]: expected a value >= 1, got 0" in out
    code, out = plan("steps.eval_base.ks=[]")
    assert code == 2 and "steps.eval_base: ks is empty" in out


def test_reinforced_ir_ks_config():
    from stages.reinforced_ir.evaluate import RetrievalEvalConfig

    with pytest.raises(ConfigError, match="ks is empty"):
        RetrievalEvalConfig(ks=[])
    assert RetrievalEvalConfig().ks == [1, 10]


# -- 5: reinforced_ir.evaluate's MRR ranks ties as its other metrics do --------------------------

@pytest.mark.parametrize("run, gold, reciprocal", [
    ({"d1": 0.9, "d2": 0.9}, "d1", 0.0),       # tied: trec_eval ranks d2 first
    ({"d1": 0.9, "d2": 0.9}, "d2", 1.0),
    ({"d1": 0.9, "d2": 0.9, "d0": 0.95}, "d1", 0.0),
    ({"b": 0.5, "a": 0.5, "c": 0.5}, "a", 0.0)])
def test_mrr_breaks_ties_as_precision_and_recall_do(run, gold, reciprocal):
    from stages.lib.metrics.retrieval import retrieval_scores
    from stages.reinforced_ir.evaluate import trec_scores

    scores = trec_scores({"q": run}, {"q": {gold: 1}}, [1, 2])
    assert scores["mrr@1"] == scores["p@1"] == scores["recall@1"] == reciprocal
    shared = retrieval_scores({"q": run}, {"q": {gold: 1}}, ks=[1, 2]).mean
    assert scores["mrr@2"] == shared["mrr@2"]


# -- 6: a k beyond the passages is warned of ------------------------------------------------------

def warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_k_beyond_the_passages_is_warned_of_once(env, caplog):
    table, written, ctx = env
    rows = [prediction_row("1", "Paris", ["Paris"], ctxs=["Paris is in France."], gold=["d0"]),
            prediction_row("2", "Rome", ["Rome"], ctxs=["Rome.", "Milan."])]
    cfg = EvaluateConfig(retrieval_k=[1, 2, 20], answer_recall_k=[1, 5])
    with caplog.at_level(logging.WARNING):
        metrics = written(EvalMetrics, evaluate(table(Predictions, rows), cfg,
                                                ctx("eval_top2")).metrics)
    assert warnings(caplog) == ["retrieval_k 20, answer_recall_k 5: more than the most passages "
                                "a question has (2); @k scores those 2"]
    assert metrics["recall@20"] == metrics["recall@2"] == 1.0     # still scored, as trec_eval

    caplog.clear()
    retrieved = [{k: v for k, v in r.items() if k != "prediction"} for r in rows]
    with caplog.at_level(logging.WARNING):
        evaluate_retrieval(table(Retrieved, retrieved),
                           EvaluateRetrievalConfig(retrieval_k=[2], answer_recall_k=[1, 20]),
                           ctx("retrieval_eval"))
    assert warnings(caplog) == ["answer_recall_k 20: more than the most passages a question has "
                                "(2); @k scores those 2"]

    caplog.clear()           # every k fits; a run without passages (audit 7's concern) is quiet
    with caplog.at_level(logging.WARNING):
        evaluate(table(Predictions, rows), EvaluateConfig(retrieval_k=[1, 2]), ctx("ev"))
        evaluate(table(Predictions, [prediction_row("3", "Paris", ["Paris"], gold=["d0"])]),
                 EvaluateConfig(retrieval_k=[1, 20]), ctx("ev"))
    assert warnings(caplog) == []


# -- 8: top-level EM/F1 over the sets that report them -------------------------------------------

def test_top_level_metrics_leave_out_the_sets_scored_otherwise(env):
    table, written, ctx = env
    rows = [prediction_row("n1", "Paris", ["Paris"]), prediction_row("n2", "Rome", ["Rome"]),
            prediction_row("e1", "Because the sky scatters blue light.",
                           ["The sky scatters blue light more."], dataset="eli5"),
            prediction_row("e2", "It is due to gravity.", ["Gravity pulls it down."],
                           dataset="eli5"),
            prediction_row("f1", "SUPPORTS", ["SUPPORTS"], dataset="fever")]
    cfg = EvaluateConfig(metrics=["exact_match", "token_f1"], retrieval_k=[],
                         set_metrics={"fever": ["first_char_accuracy"], "eli5": ["rouge_l"]})
    metrics = written(EvalMetrics, evaluate(table(Predictions, rows), cfg, ctx("e")).metrics)
    assert metrics["exact_match"] == metrics["token_f1"] == 1.0      # nq's two questions
    assert metrics["num_scored"] == 5
    assert metrics["by_dataset"]["nq"]["exact_match"] == metrics["macro"]["exact_match"] == 1.0
    assert metrics["by_dataset"]["fever"]["first_char_accuracy"] == 1.0
    # without set_metrics, every set reports EM: the top level is over every question
    cfg = EvaluateConfig(metrics=["exact_match"], retrieval_k=[])
    metrics = written(EvalMetrics, evaluate(table(Predictions, rows), cfg, ctx("e")).metrics)
    assert metrics["exact_match"] == pytest.approx(3 / 5)


def test_one_set_scored_otherwise_has_its_block(env):
    table, written, ctx = env
    rows = [prediction_row("f1", "SUPPORTS", ["SUPPORTS"], dataset="fever"),
            prediction_row("f2", "refutes", ["SUPPORTS"], dataset="fever")]
    cfg = EvaluateConfig(metrics=["exact_match"], retrieval_k=[],
                         set_metrics={"fever": ["first_char_accuracy"]})
    metrics = written(EvalMetrics, evaluate(table(Predictions, rows), cfg, ctx("e")).metrics)
    assert metrics["exact_match"] is None                  # no set here is scored with EM
    assert metrics["by_dataset"]["fever"]["first_char_accuracy"] == 0.5
    assert metrics["macro"]["first_char_accuracy"] == 0.5


# -- 9: golds with spaces around them --------------------------------------------------------------

def test_golds_are_compared_stripped(env):
    from stages.rag_instruct.evaluate import RagInstructEvaluateConfig
    from stages.rag_instruct.evaluate import score_row as rag_instruct_row
    from stages.rag_instruct.scorer import letter_golds, score
    from stages.selfrag.evaluate import SelfragEvaluateConfig
    from stages.selfrag.evaluate import score_row as selfrag_row

    assert score("open_qa", "It was Paris.", [" Paris "])
    assert score("choice", "The answer is B", [" B "], {"A": "x", "B": "y"})
    assert letter_golds([" B"], {"A": "x", "B": "y"})
    row = {"id": "q", "dataset": "popqa", "prediction": "It was Paris.", "answers": [" Paris "]}
    assert selfrag_row(row, SelfragEvaluateConfig())["selfrag_match"] == 1.0
    assert rag_instruct_row(row, RagInstructEvaluateConfig())["accuracy"] == 1.0

    table, written, ctx = env
    rows = [prediction_row("1", "It was Paris.", [" Paris "])]
    cfg = EvaluateConfig(metrics=["match_gold_in_pred"], retrieval_k=[])
    metrics = written(EvalMetrics, evaluate(table(Predictions, rows), cfg, ctx("e")).metrics)
    assert metrics["match_gold_in_pred"] == 1.0
