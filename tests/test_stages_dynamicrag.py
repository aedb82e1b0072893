"""The DynamicRAG stages called directly (``@stage`` returns the function unchanged).

Inputs are real table handles written with the orchestrator's own writer, and every output is
written back through it, so a row that does not fit the declared schema fails here.
"""


import pytest

from orchestrator.api import ConfigError, DataError
from stages.convert import ConvertConfig, convert
from stages.evaluate import EvaluateConfig, evaluate
from stages.label import LabelConfig, label
from stages.lib.prompts import format_docs
from stages.pairs import PairsConfig, pairs
from stages.reward import RewardConfig, reward
from stages.schemas import (BCTargets, Chat, EvalMetrics, PerQuestion, Predictions, Preferences,
                            Reranked, Scored, Trajectories)




def question(qid, labels, answers=("Paris",), dataset="nq", gold=()):
    ctxs = [{"id": f"{qid}-d{i}", "title": f"T{i}", "text": f"text {i}", "score": 1.0 / i,
             "relevant": r, "rerank_score": None} for i, r in enumerate(labels, start=1)]
    return {"id": qid, "dataset": dataset, "question": f"question {qid}?", "answers": list(answers),
            "gold": list(gold), "ctxs": ctxs}


def test_label(env):
    table, written, ctx = env
    rows = [question("a", [False, True, False]), question("b", [True, True, True]),
            question("c", [False, False, False]), question("d", [False, True, False])]
    cfg = LabelConfig(max_len=3, bucket_cap=1, total_cap=None, n_sft=1, seed=0)
    out = label(table(Reranked, rows), cfg, ctx("label"))
    bc = written(BCTargets, out.bc)
    # a: L=1, L=2; b: 3 true > max L 2; c: L=0 (L=1, 2 full); d: buckets 1, 2 full
    assert [(r["id"], r["sequence_length"]) for r in bc] == [("a", 1), ("a", 2), ("c", 0)]
    assert bc[0]["sequence"] == [2] and bc[2]["sequence"] == []
    sft, dpo = written(Reranked, out.sft), written(Reranked, out.dpo)
    assert len(sft) == 1 and len(dpo) == 1
    assert sorted(r["id"] for r in sft + dpo) == ["b", "d"]


def test_label_needs_relevance_labels(env):
    table, _, ctx = env
    with pytest.raises(DataError, match="relevant"):
        label(table(Reranked, [question("a", [None, None])]), LabelConfig(), ctx("label"))


def test_convert(env):
    table, written, ctx = env
    item = question("a", [False, True, False, True])
    bc_rows = [{**item, "sequence": [4, 2, 1], "sequence_length": 3},
               {**item, "sequence": [], "sequence_length": 0},
               {**item, "sequence": [4], "sequence_length": 1}]       # 4 > num_docs 3: dropped
    sft_rows = [question("s", [True, False, True], answers=["", " Paris "]),
                question("x", [True], answers=[" "])]                 # no usable answer: skipped
    extra = [{"id": "alpaca-1", "task": "alpaca",
              "messages": [{"role": "user", "content": "hi"},
                           {"role": "assistant", "content": "hello"}]}]
    cfg = ConvertConfig(num_docs=3, max_generator_docs=1, seed=0)
    rows = written(Chat, convert(table(BCTargets, bc_rows),
                                 table(Reranked, sft_rows), cfg, ctx("convert"),
                                 extra=table(Chat, extra)))
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == ["a:reranker:0", "alpaca-1", "s:generator"]
    assert [by_id[i]["task"] for i in sorted(by_id)] == ["reranker", "extra", "generator"]
    rer = by_id["a:reranker:0"]["messages"]
    assert [m["role"] for m in rer] == ["system", "user", "assistant"]
    assert rer[2]["content"] == "None"
    assert rer[1]["content"].endswith(format_docs(item["ctxs"][:3]))
    gen = by_id["s:generator"]["messages"]
    assert gen[1]["content"].endswith("Retrieved Content:\n1. Topic: T1\nContent: text 1")
    assert gen[2] == {"role": "assistant", "content": "Paris"}
    assert by_id["alpaca-1"]["messages"] == extra[0]["messages"]


def test_convert_reranker_target(env):
    table, written, ctx = env
    item = question("a", [False, True, False, True])
    rows = written(Chat, convert(table(BCTargets, [{**item, "sequence": [4, 2, 1],
                                                    "sequence_length": 3}]),
                                 table(Reranked, []), ConvertConfig(), ctx("convert")))
    assert rows[0]["messages"][2]["content"] == "[4], [2], [1]"


def trajectories_row(qid, responses, ids, answers=("Paris",)):
    row = question(qid, [True, False, False], answers=answers)
    row["trajectories"] = [{"ids": i, "selection": "", "response": r}
                           for r, i in zip(responses, ids)]
    return row


def test_reward_default_weights(env):
    table, written, ctx = env
    rows = [trajectories_row("a", ["Paris", "Lyon"], [[1], [1, 2, 3]]),
            trajectories_row("b", ["Paris", "Paris"], [[1], [2]])]
    out = written(Scored, reward(table(Trajectories, rows), RewardConfig(), ctx("reward")))
    # defaults: rouge_l, containment_em, length_penalty at 1/3 each
    # a0: (1 + 1 + 1/2) / 3; a1: (0 + 0 + 1/4) / 3; b: identical responses -> 0
    assert out[0]["rewards"] == pytest.approx([2.5 / 3, 0.25 / 3])
    assert out[1]["rewards"] == [0.0, 0.0]
    assert dict(out[0]["reward_parts"][1]) == pytest.approx(
        {"rouge_l": 0.0, "containment_em": 0.0, "length_penalty": 0.25})
    assert out[0]["trajectories"][0]["response"] == "Paris"


def test_reward_judge_batched_through_generator(env, monkeypatch):
    table, written, ctx = env
    calls = []

    class FakeJudge:
        def chat(self, conversations, **kwargs):
            calls.append(len(conversations))
            return [["Score: 90" if "Answer to grade: Paris" in c[0]["content"] else "Score: 30"]
                    for c in conversations]

        def close(self):
            pass

    import stages.lib.generate as generate
    monkeypatch.setattr(generate, "openai_generator", lambda *a, **k: FakeJudge())
    rows = [trajectories_row("a", ["Paris", "Lyon", "Lyon"], [[1], [2], [3]]),
            trajectories_row("b", ["Rome", "Paris"], [[1], [2]])]
    cfg = RewardConfig(weight_rouge_l=0, weight_containment_em=0, weight_length_penalty=0,
                       weight_judge=0.2, judge="openai")
    out = written(Scored, reward(table(Trajectories, rows), cfg, ctx("reward")))
    assert calls == [4]          # one batch; the repeated (question a, Paris, Lyon) asked once
    assert out[0]["rewards"] == pytest.approx([0.9, 0.3, 0.3])
    assert out[1]["rewards"] == pytest.approx([0.3, 0.9])


def test_reward_config_errors(env):
    table, _, ctx = env
    rows = table(Trajectories, [trajectories_row("a", ["x", "y"], [[], []])])
    with pytest.raises(ConfigError, match="judge"):
        reward(rows, RewardConfig(weight_judge=0.2), ctx("reward"))
    with pytest.raises(ConfigError, match="all weights are 0"):
        reward(rows, RewardConfig(weight_rouge_l=0, weight_containment_em=0,
                                  weight_length_penalty=0), ctx("reward"))


def test_pairs(env):
    table, written, ctx = env
    rows = []
    for qid, rewards in [("g", [0.9, 0.1]), ("eq", [0.5, 0.5]), ("r", [0.2, 0.8])]:
        row = trajectories_row(qid, ["Paris", "Lyon"], [[1], [2, 3]])
        row["rewards"] = rewards
        row["reward_parts"] = [{}, {}]
        rows.append(row)
    out = written(Preferences, pairs(table(Scored, rows), PairsConfig(generator_cap=1),
                                     ctx("pairs")))
    assert [(r["id"], r["task"]) for r in out] == [("g", "generator"), ("r", "reranker")]
    assert out[0]["chosen"] == [{"role": "assistant", "content": "Paris"}]
    assert out[0]["rejected"] == [{"role": "assistant", "content": "Lyon"}]
    assert out[1]["chosen"][0]["content"] == "[2], [3]"
    assert out[1]["rejected"][0]["content"] == "[1]"


def prediction_row(qid, prediction, answers, gold=(), ctx_ids=(), selected=(), dataset="nq"):
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
    # retrieval over question 1 only: d2 at rank 2
    assert metrics["num_retrieval_questions"] == 1
    assert metrics["recall@1"] == 0.0 and metrics["recall@2"] == 1.0
    assert metrics["mrr@2"] == 0.5
    assert all(not isinstance(v, (dict, list)) for k, v in metrics.items() if k != "by_dataset")
    assert metrics["by_dataset"]["nq"]["num_questions"] == 1
    assert metrics["by_dataset"]["tqa"]["exact_match"] == pytest.approx(0.0)
    assert [r["id"] for r in per_q] == ["1", "2", "3"]
    assert per_q[2]["exact_match"] is None and per_q[1]["recall@2"] is None
    assert [(r["dataset"], r["num_selected"]) for r in per_q] == [("nq", 1), ("tqa", 3), ("tqa", 0)]
    assert per_q[0]["mrr@2"] == 0.5


def test_evaluate_without_gold_ids_and_default_label(env):
    table, written, ctx = env
    rows = [prediction_row("1", "Paris", ["Paris"], ctx_ids=["d1"])]
    out = evaluate(table(Predictions, rows), EvaluateConfig(metrics=["rouge_l"]), ctx("eval_nq"))
    metrics = written(EvalMetrics, out.metrics)
    assert metrics["label"] == "eval_nq" and metrics["rouge_l"] == 1.0
    assert "recall@1" not in metrics
    with pytest.raises(ConfigError, match="unknown metrics"):
        evaluate(table(Predictions, rows), EvaluateConfig(metrics=["em"]), ctx("e"))


@pytest.mark.slow
def test_reward_local_judge_tiny_model(env, tmp_path):
    """The real in-process judge path with a random tiny model: replies without a score -> 0."""
    from stages.lib.tiny import tiny_causal_lm

    table, written, ctx = env
    path = tiny_causal_lm(tmp_path / "judge")
    cfg = RewardConfig(weight_judge=0.5, judge="local", model=str(path), judge_max_tokens=4)
    rows = [trajectories_row("a", ["Paris", "Lyon"], [[1], [1, 2, 3]])]
    out = written(Scored, reward(table(Trajectories, rows), cfg, ctx("reward")))
    assert len(out[0]["rewards"]) == 2
    assert all(0.0 <= dict(p)["judge"] <= 1.0 for p in out[0]["reward_parts"])
