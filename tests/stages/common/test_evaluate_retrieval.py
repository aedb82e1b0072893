"""``evaluate_retrieval``: the retriever's passages scored with no generation, against gold
passage ids and gold answers, per set; and the step a user adds on the command line."""

from __future__ import annotations

import json

import pytest

from orchestrator.api import ConfigError
from orchestrator.errors import DataError
from stages.common.evaluate_retrieval import EvaluateRetrievalConfig, evaluate_retrieval
from stages.schemas import EvalMetrics, Retrieved
from tests.conftest import REPO, rag

TEXTS = {"d1": "Marie Curie won two Nobel prizes.", "d2": "Wilhelm Röntgen won in 1901.",
         "d3": "Rome is the capital of Italy."}


def retrieved_row(qid, answers, ctx_ids, gold=(), dataset="nq"):
    return {"id": qid, "dataset": dataset, "question": "q?", "answers": list(answers),
            "gold": list(gold), "ctxs": [{"id": d, "title": "", "text": TEXTS[d], "score": 1.0}
                                         for d in ctx_ids]}


def test_gold_ids_and_answers_scored_per_set(env):
    table, written, ctx = env
    rows = [retrieved_row("1", ["Röntgen"], ["d1", "d2"], gold=["d2"]),
            retrieved_row("2", ["Rome"], ["d3", "d1"], dataset="tqa"),
            retrieved_row("3", ["Paris"], ["d1"], dataset="tqa")]
    cfg = EvaluateRetrievalConfig(name="MiniLM top-2", retrieval_k=[1, 2], answer_recall_k=[1, 2])
    metrics = written(EvalMetrics, evaluate_retrieval(table(Retrieved, rows), cfg, ctx("ret")))
    assert metrics["label"] == "MiniLM top-2" and metrics["num_questions"] == 3
    assert metrics["num_gold_questions"] == 1 and metrics["avg_passages"] == pytest.approx(5 / 3)
    assert (metrics["recall@1"], metrics["recall@2"], metrics["mrr@2"]) == (0.0, 1.0, 0.5)
    assert metrics["answer_recall@1"] == pytest.approx(1 / 3)     # q2 only
    assert metrics["answer_recall@2"] == pytest.approx(2 / 3)     # q1 at rank 2 too
    assert metrics["by_dataset"]["tqa"] == {"num_questions": 2, "recall@1": None,
                                            "ndcg@1": None, "mrr@1": None, "recall@2": None,
                                            "ndcg@2": None, "mrr@2": None,
                                            "answer_recall@1": 0.5, "answer_recall@2": 0.5}
    assert metrics["macro"]["answer_recall@2"] == pytest.approx((1.0 + 0.5) / 2)
    assert list(metrics["display"].values()) == ["R@1", "R@2", "A@1", "A@2", "nDCG@2", "MRR@2"]


def test_nothing_to_score_is_one_line_naming_the_step(env):
    table, written, ctx = env
    rows = [retrieved_row("1", ["Paris"], [])]          # no passages, no gold ids
    with pytest.raises(DataError) as err:
        evaluate_retrieval(table(Retrieved, rows), EvaluateRetrievalConfig(), ctx("ret"))
    assert err.value.message == ("step 'ret': nothing to score: of 1 questions, none has both "
                                 "passages (ctxs) and gold passage ids (gold) or gold answers")
    with pytest.raises(ConfigError, match="retrieval_k and answer_recall_k are both empty"):
        EvaluateRetrievalConfig(retrieval_k=[], answer_recall_k=[])


STEP = ("+steps.retrieval_eval={stage: evaluate_retrieval, "
        "inputs: {retrieved: retrieve_eval.out}}")


def test_the_step_added_on_the_command_line_plans(tmp_path, capsys):
    """The README's command, planned: the step composes, its input type checks, and only the
    retrieval chain is upstream of it."""
    demo = str(REPO / "conf" / "dynamicrag_demo.yaml")
    assert rag("plan", demo, "--until", "retrieval_eval", STEP, runs=tmp_path / "runs") == 0
    out = capsys.readouterr().out
    assert "retrieval_eval" in out and "evaluate_retrieval" in out
    # load, encoder, index (2 shards), retrieve_eval (2 shards), retrieval_eval
    assert "7 tasks, 7 distinct (shared steps counted once), 7 to run" in out


@pytest.mark.slow
def test_the_readme_command_scores_the_demo_retriever(tmp_path, monkeypatch):
    """The README's command as written, with the demo's real MiniLM encoder (about 11 s from an
    empty cache on 2 cores): no language model is loaded."""
    monkeypatch.chdir(tmp_path)
    assert rag("run", str(REPO / "conf" / "dynamicrag_demo.yaml"), "--until", "retrieval_eval",
               STEP) == 0
    run = tmp_path / "runs" / "latest"
    metrics = json.loads((run / "artifacts" / "retrieval_eval.out" / "metrics.json").read_text())
    assert metrics["num_questions"] == 30 and metrics["recall@20"] >= metrics["recall@1"] > 0.5
    assert metrics["answer_recall@5"] > 0.5
    steps = json.loads((run / "status.json").read_text())["steps"]
    assert set(steps) == {"load", "encoder", "index", "retrieve_eval", "retrieval_eval"}
    # the README's sweep of k: the index is reused, each member retrieves and scores
    assert rag("run", str(REPO / "conf" / "dynamicrag_demo.yaml"), "--until", "retrieval_eval",
               STEP, "-m", "retrieval.k=1,3") == 0
    sweep = sorted((tmp_path / "runs" / "dynamicrag_demo").glob("*-sweep"))[-1]
    got = {}
    for member in sorted(sweep.glob("member-*")):
        status = json.loads((member / "status.json").read_text())["steps"]
        assert status["index"]["cache"] == "hit"
        scores = json.loads((member / "artifacts" / "retrieval_eval.out" / "metrics.json")
                            .read_text())
        got[member.name] = (status["retrieval_eval"]["cache"], scores["avg_passages"])
    assert list(got.values()) == [("miss", 1.0), ("miss", 3.0)]   # k=1, k=3: each its own
