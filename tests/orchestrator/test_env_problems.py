"""An API key that a step will need is checked when the run starts, not when the step is
reached: ``rag plan`` names the unset variable as a problem (``--check`` exits 2), ``rag run``
refuses before any step runs, and a step already cached needs no key."""

from __future__ import annotations

import json

from tests.conftest import rag

RECIPE = """\
ragline:
  imports: [tests.toy.stages]
steps:
  load: {stage: toy_gen, n: 4}
  ask:
    stage: toy_ask
    inputs: {numbers: load}
    llm: {backend: %s, model: toy, api_key_env: RAGLINE_TEST_KEY}
"""


def recipe(toy, backend="openai"):
    path = toy / "conf" / "ask.yaml"
    path.write_text(RECIPE % backend)
    return str(path)


def problems(toy, capsys, path):
    capsys.readouterr()
    assert rag("plan", path, "--json", runs=toy / "runs") == 0
    return json.loads(capsys.readouterr().out)["members"][0]["problems"]


def test_an_unset_key_is_a_problem_at_plan_time_and_stops_the_run_before_any_step(
        toy, capsys, monkeypatch):
    path = recipe(toy)
    monkeypatch.delenv("RAGLINE_TEST_KEY", raising=False)
    assert problems(toy, capsys, path) == [
        "steps.ask.llm.api_key_env: environment variable RAGLINE_TEST_KEY is not set (step "
        "'ask' reads it when it runs)"]
    assert rag("plan", path, "--check", runs=toy / "runs") == 2

    assert rag("run", path, runs=toy / "runs") == 2
    err = capsys.readouterr().err
    assert "environment variable RAGLINE_TEST_KEY is not set" in err
    assert ("hint: export RAGLINE_TEST_KEY=... before `rag run`, or set steps.ask.llm.api_key_env "
            "to the variable that holds the key") in " ".join(err.split())
    assert not (toy / "runs" / "cache" / "entries").exists() or not any(
        (toy / "runs" / "cache" / "entries").rglob("*.json"))   # nothing ran, not even load


def test_a_set_key_or_a_cached_step_or_a_local_backend_needs_nothing(toy, capsys, monkeypatch):
    path = recipe(toy)
    monkeypatch.setenv("RAGLINE_TEST_KEY", "secret")
    assert problems(toy, capsys, path) == []
    assert rag("run", path, runs=toy / "runs") == 0
    monkeypatch.delenv("RAGLINE_TEST_KEY")
    assert problems(toy, capsys, path) == []      # 'ask' is cached: the run needs no key
    assert rag("run", path, runs=toy / "runs") == 0
    assert problems(toy, capsys, recipe(toy, backend="transformers")) == []


def test_a_section_the_config_leaves_unused_needs_no_key():
    """Demos carry the paper's endpoint sections switched off (teacher: reference, a judge
    weight of 0): a run must not be refused for their keys."""
    from orchestrator.stage_config import needed_env
    from stages.dynamicrag.reward import RewardConfig, RewardWeights
    from stages.lib.endpoint.config import EndpointConfig
    from stages.rag_instruct.synthesize import SynthesizeConfig
    from stages.selfrag.judge import JudgeConfig

    key = {"api_key_env": "OPENAI_API_KEY"}
    assert needed_env(SynthesizeConfig(teacher="reference"), "s") == {}
    assert needed_env(SynthesizeConfig(), "s") == {"s.llm.api_key_env": "OPENAI_API_KEY"}
    assert needed_env(JudgeConfig(teacher="reference"), "j") == {}
    assert needed_env(JudgeConfig(), "j") == {"j.llm.api_key_env": "OPENAI_API_KEY"}
    judge = EndpointConfig(model="gpt-4o")
    assert needed_env(RewardConfig(judge=judge), "r") == {}           # weights.judge is 0
    assert needed_env(RewardConfig(weights=RewardWeights(judge=0.2), judge=judge), "r") == {
        "r.judge.api_key_env": "OPENAI_API_KEY"}
    assert judge.needed_env() == key
