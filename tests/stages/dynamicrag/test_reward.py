"""``dynamicrag.reward`` called directly: default weights, the LLM judge, config errors."""


import pytest

from orchestrator.api import ConfigError
from stages.dynamicrag.reward import RewardConfig, RewardWeights, reward
from stages.dynamicrag.schemas import Scored, Trajectories
from stages.lib.endpoint import EndpointConfig
from tests.stages.conftest import fake_endpoint, prompt_file
from tests.stages.dynamicrag.rows import trajectories_row
from tests.stages.lib.endpoint.conftest import start_server


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


def _judge_cfg(**weights):
    return RewardConfig(weights=RewardWeights(**{"rouge_l": 0, "containment_em": 0,
                                                 "length_penalty": 0, **weights}),
                        judge=EndpointConfig(backend="openai", model="judge-model"))


def test_reward_judge_batched_through_the_endpoint_client(env, monkeypatch):
    table, written, ctx = env
    calls = fake_endpoint(monkeypatch, lambda conv, params: "Score: 90" if "Answer to grade: "
                          "Paris" in conv[-1]["content"] else "Score: 30")
    rows = [trajectories_row("a", ["Paris", "Lyon", "Lyon"], [[1], [2], [3]]),
            trajectories_row("b", ["Rome", "Paris"], [[1], [2]])]
    out = written(Scored, reward(table(Trajectories, rows), _judge_cfg(judge=0.2), ctx("reward"),
                                 judge_prompt=prompt_file("judge")))
    # one batch; the repeated (question a, Paris, Lyon) asked once
    assert [(n, params["max_tokens"]) for n, params in calls] == [(4, 512)]
    assert out[0]["rewards"] == pytest.approx([0.9, 0.3, 0.3])
    assert out[1]["rewards"] == pytest.approx([0.3, 0.9])


def test_reward_config_errors(env):
    table, _, ctx = env
    with pytest.raises(ConfigError, match="weights.judge > 0 but there is no judge section"):
        RewardConfig(weights=RewardWeights(judge=0.2))
    with pytest.raises(ConfigError, match="weights: all are 0"):
        RewardConfig(weights=RewardWeights(rouge_l=0, containment_em=0, length_penalty=0))
    rows = table(Trajectories, [trajectories_row("a", ["x", "y"], [[], []])])
    with pytest.raises(ConfigError, match="no judge_prompt input"):
        reward(rows, _judge_cfg(judge=0.2), ctx("reward"))


def test_reward_config_is_checked_at_plan_time():
    from orchestrator.stage_config import check_step_config

    with pytest.raises(ConfigError, match=r"steps.reward.weights.rouge_l"):
        check_step_config(RewardConfig, {"weights": {"rouge_l": -1}}, "steps.reward")
    with pytest.raises(ConfigError, match=r"steps.reward.weights.fluency: unknown key"):
        check_step_config(RewardConfig, {"weights": {"fluency": 1}}, "steps.reward")
    config, obj = check_step_config(RewardConfig, {"weights": {"judge": 0.2},
                                                   "judge": {"model": "gpt-4o"}}, "steps.reward")
    assert obj.judge.backend == "openai" and config["weights"]["judge"] == 0.2


@pytest.mark.slow
def test_reward_local_judge_tiny_model(env, tmp_path, monkeypatch):
    """The real in-process judge path with a random tiny model: replies without a score -> 0
    (allowed here: a step fails when more than 5% of its judge replies have no score)."""
    from stages.lib.testing.tiny import tiny_causal_lm

    monkeypatch.setattr("stages.dynamicrag.reward_logic.MAX_UNSCORED", 1.0)

    table, written, ctx = env
    path = tiny_causal_lm(tmp_path / "judge")
    cfg = RewardConfig(weights=RewardWeights(judge=0.5), judge_max_tokens=4,
                       judge=EndpointConfig(backend="transformers", model=str(path)))
    rows = [trajectories_row("a", ["Paris", "Lyon"], [[1], [1, 2, 3]])]
    out = written(Scored, reward(table(Trajectories, rows), cfg, ctx("reward"),
                                 judge_prompt=prompt_file("judge")))
    assert len(out[0]["rewards"]) == 2
    assert all(0.0 <= dict(p)["judge"] <= 1.0 for p in out[0]["reward_parts"])


# The judge against a real OpenAI-compatible server on 127.0.0.1 (helper E's test).
@pytest.fixture(scope="module")
def judge_server(tmp_path_factory):
    proc, server = start_server(tmp_path_factory.mktemp("judge") / "lm",
                                tmp_path_factory.mktemp("server"), key="sk-judge-test")
    yield server
    proc.terminate()
    proc.wait(timeout=30)


def test_reward_judge_asks_a_real_server_once_per_triple_and_resumes(env, judge_server,
                                                                     monkeypatch, tmp_path):
    """judge: openai against a local OpenAI-compatible server: one request per distinct
    (question, gold, response); the step rerun (same scratch: a resumed task) asks none."""
    table, written, ctx = env
    monkeypatch.setenv("JUDGE_KEY", "sk-judge-test")
    monkeypatch.setattr("stages.dynamicrag.reward_logic.MAX_UNSCORED", 1.0)   # a random judge
    cfg = RewardConfig(weights=RewardWeights(judge=0.5),
                       judge=EndpointConfig(base_url=judge_server.base_url, model="tiny",
                                            api_key_env="JUDGE_KEY", max_tokens=4))
    rows = [trajectories_row("a", ["Paris", "Lyon", "Lyon"], [[1]] * 3),
            trajectories_row("b", ["Rome", "Paris"], [[1]] * 2, answers=("Rome", "Roma"))]
    step = ctx("reward")
    first = written(Scored, reward(table(Trajectories, rows), cfg, step,
                                   judge_prompt=prompt_file("judge")))
    assert judge_server.stats()["served"] == 2 + 4     # a: Paris, Lyon; b: 2 responses x 2 golds
    again = written(Scored, reward(table(Trajectories, rows), cfg, step,
                                   judge_prompt=prompt_file("judge")))
    assert judge_server.stats()["served"] == 6 and judge_server.stats()["repeats"] == 0
    assert [r["rewards"] for r in again] == [r["rewards"] for r in first]
    assert not any(b"sk-judge-test" in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_reward_bertscore_model_that_cannot_load_is_a_one_line_error(env, tmp_path):
    """A BERTScore model that cannot be loaded (here a folder without weights; on a node
    without network, roberta-large from the hub) stops the step naming its key."""
    pytest.importorskip("bert_score")
    table, _, ctx = env
    broken = tmp_path / "roberta-large"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "roberta", "num_hidden_layers": 24}')
    cfg = RewardConfig(weights=RewardWeights(bertscore=0.2), bertscore_model=str(broken))
    rows = table(Trajectories, [trajectories_row("a", ["Paris", "Lyon"], [[1], [2]])])
    with pytest.raises(ConfigError, match=r"steps.reward.bertscore_model: cannot load"):
        reward(rows, cfg, ctx("reward"))


def test_a_judge_answer_is_paid_once_across_steps_with_other_settings(env, judge_server,
                                                                     monkeypatch, tmp_path):
    """The answers of a server were kept in the step's scratch, named by its cache key, and
    deleted when it committed: changing a reward weight (or sweeping one) asked every judge
    request again, answers a failed run had bought included. They are now kept in the cache's
    ``answers/`` folder by server and request, shared by steps, sweep members and runs."""
    import logging

    from orchestrator.api import StageContext

    table, written, _ = env
    monkeypatch.setenv("JUDGE_KEY", "sk-judge-test")
    monkeypatch.setattr("stages.dynamicrag.reward_logic.MAX_UNSCORED", 1.0)   # a random judge
    judge = EndpointConfig(base_url=judge_server.base_url, model="tiny", api_key_env="JUDGE_KEY",
                           max_tokens=4)
    rows = table(Trajectories, [trajectories_row("a", ["Paris", "Lyon"], [[1]] * 2)])
    served = judge_server.stats()["served"]
    for i, weight in enumerate((0.5, 0.25)):    # two cache keys: two scratch folders
        ctx = StageContext("reward", 0, 1, tmp_path / f"work{i}", tmp_path / f"scratch{i}",
                           logging.getLogger("test.reward"), answers=tmp_path / "answers")
        reward(rows, RewardConfig(weights=RewardWeights(judge=weight), judge=judge), ctx,
               judge_prompt=prompt_file("judge"))
        assert judge_server.stats()["served"] == served + 2      # asked by the first only
    assert len(list((tmp_path / "answers").glob("127.0.0.1-*/*/*.json"))) == 2
    # --force (ctx.forced) asks the server again; its answers replace the shared ones
    ctx = StageContext("reward", 0, 1, tmp_path / "work2", tmp_path / "scratch2",
                       logging.getLogger("test.reward"), answers=tmp_path / "answers",
                       forced=True)
    reward(rows, RewardConfig(weights=RewardWeights(judge=0.5), judge=judge), ctx,
           judge_prompt=prompt_file("judge"))
    assert judge_server.stats()["served"] == served + 4
