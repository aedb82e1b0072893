"""``dynamicrag.reward`` when the judge's replies carry no "Score: N" (empty answers, replies cut
off at ``judge_max_tokens``): more than a few percent of them fail the step in one line instead
of committing rewards of 0; a few are scored 0 with one warning line, not one per reply."""

import logging

import pytest

from orchestrator.api import RagError
from stages.dynamicrag.reward import RewardConfig, RewardWeights, reward
from stages.dynamicrag.schemas import Scored, Trajectories
from stages.lib.endpoint import ChatReply, EndpointConfig
from tests.stages.conftest import fake_endpoint, prompt_file
from tests.stages.dynamicrag.rows import trajectories_row


def judge_cfg() -> RewardConfig:
    return RewardConfig(weights=RewardWeights(rouge_l=0, containment_em=0, length_penalty=0,
                                              judge=1.0),
                        judge=EndpointConfig(backend="openai", model="judge-model"))


def fake_judge(monkeypatch, answer):
    """The endpoint client the stage opens answers ``answer(conversation) -> (text, finish)``,
    as a server would (the finish reason in the reply's meta)."""
    def reply(conversation, params):
        text, finish = answer(conversation)
        return ChatReply([text], meta={"finish_reasons": [finish]})

    fake_endpoint(monkeypatch, reply)


def rows(n: int) -> list[dict]:
    """``n`` questions, each with two different responses: 2n distinct judge requests."""
    return [trajectories_row(f"q{i}", ["Paris", "Lyon"], [[1], [2]]) for i in range(n)]


def test_a_judge_that_answers_nothing_fails_the_step_in_one_line(env, monkeypatch, caplog):
    table, written, ctx = env
    caplog.set_level(logging.WARNING)
    fake_judge(monkeypatch, lambda conv: ("", "stop"))
    with pytest.raises(RagError) as err:
        reward(table(Trajectories, rows(10)), judge_cfg(), ctx("reward"),
               judge_prompt=prompt_file("judge"))
    assert err.value.message == ("steps.reward.judge: 20 of 20 replies had no 'Score: N' (e.g. "
                                 "''): check judge_max_tokens / the server")
    assert "a rerun asks them again" in err.value.hint
    assert "Score: N" not in caplog.text, "no warning per reply"


def test_replies_cut_off_at_judge_max_tokens_say_so_in_the_hint(env, monkeypatch):
    table, written, ctx = env
    fake_judge(monkeypatch, lambda conv: ("The response is mostly right because", "length"))
    with pytest.raises(RagError) as err:
        reward(table(Trajectories, rows(2)), judge_cfg(), ctx("reward"),
               judge_prompt=prompt_file("judge"))
    assert err.value.message.startswith("steps.reward.judge: 4 of 4 replies had no 'Score: N' "
                                        "(e.g. 'The response is mostly right because')")
    assert err.value.hint == ("4 of them were cut off at judge_max_tokens (512): raise it, or "
                              "let them score 0: steps.reward.judge_max_unscored=0.5")


def test_the_share_of_unscored_replies_allowed_is_a_setting(env, monkeypatch):
    """The 5% is per shard (a small shard fails on one reply): judge_max_unscored lets a
    recipe allow more, each scoring 0, without recomputing a finished step (nonsemantic)."""
    table, written, ctx = env
    fake_judge(monkeypatch, lambda conv: ("I cannot grade this.", "stop")
               if "grade: Lyon" in conv[-1]["content"] else ("Score: 70", "stop"))
    with pytest.raises(RagError, match="the judge must end its reply with 'Score: N'"):
        reward(table(Trajectories, rows(2)), judge_cfg(), ctx("reward"),
               judge_prompt=prompt_file("judge"))
    from dataclasses import replace

    out = written(Scored, reward(table(Trajectories, rows(2)),
                                 replace(judge_cfg(), judge_max_unscored=0.5), ctx("reward"),
                                 judge_prompt=prompt_file("judge")))
    assert [r["rewards"] for r in out] == [pytest.approx([0.7, 0.0])] * 2


def test_a_few_unscored_replies_score_0_with_one_warning_line(env, monkeypatch, caplog):
    table, written, ctx = env
    caplog.set_level(logging.WARNING)
    fake_judge(monkeypatch, lambda conv: ("I cannot grade this.", "stop")
               if "question q0?" in conv[-1]["content"] and "grade: Lyon" in conv[-1]["content"]
               else ("Score: 70", "stop"))
    out = written(Scored, reward(table(Trajectories, rows(12)), judge_cfg(), ctx("reward"),
                                 judge_prompt=prompt_file("judge")))
    assert out[0]["rewards"] == pytest.approx([0.7, 0.0])
    assert all(r["rewards"] == pytest.approx([0.7, 0.7]) for r in out[1:])
    assert [r.getMessage() for r in caplog.records if "Score: N" in r.getMessage()] == [
        "judge: 1 of 24 replies had no 'Score: N' (e.g. 'I cannot grade this.'); they score 0"]


def test_the_threshold_is_a_few_percent():
    from stages.dynamicrag.reward_logic import MAX_UNSCORED, judge_unscored

    assert MAX_UNSCORED == 0.05
    assert judge_unscored(["Score: 1"] * 19 + [""])[1] is False          # 1 of 20: 5 %
    assert judge_unscored(["Score: 1"] * 18 + ["", "x"])[1] is True      # 2 of 20: 10 %
    assert judge_unscored([]) == (None, False)
