"""``dynamicrag.reward`` called directly: default weights, the LLM judge, config errors."""


import pytest

from orchestrator.api import ConfigError
from stages.dynamicrag.reward import RewardConfig, reward
from stages.dynamicrag.schemas import Scored, Trajectories


def question(qid, labels, answers=("Paris",), dataset="nq", gold=()):
    ctxs = [{"id": f"{qid}-d{i}", "title": f"T{i}", "text": f"text {i}", "score": 1.0 / i,
             "relevant": r, "rerank_score": None} for i, r in enumerate(labels, start=1)]
    return {"id": qid, "dataset": dataset, "question": f"question {qid}?", "answers": list(answers),
            "gold": list(gold), "ctxs": ctxs}


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

    import stages.lib.models.generation as generate
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


@pytest.mark.slow
def test_reward_local_judge_tiny_model(env, tmp_path):
    """The real in-process judge path with a random tiny model: replies without a score -> 0."""
    from stages.lib.testing.tiny import tiny_causal_lm

    table, written, ctx = env
    path = tiny_causal_lm(tmp_path / "judge")
    cfg = RewardConfig(weight_judge=0.5, judge="local", model=str(path), judge_max_tokens=4)
    rows = [trajectories_row("a", ["Paris", "Lyon"], [[1], [1, 2, 3]])]
    out = written(Scored, reward(table(Trajectories, rows), cfg, ctx("reward")))
    assert len(out[0]["rewards"]) == 2
    assert all(0.0 <= dict(p)["judge"] <= 1.0 for p in out[0]["reward_parts"])
