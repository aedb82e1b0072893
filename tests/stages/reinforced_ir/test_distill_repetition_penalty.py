"""distill's ``repetition_penalty``: the original ranks each group with its instruct generator's
``generate`` (data_generation/agent/vllm_instruct.py), whose vLLM repetition_penalty defaults to
1.1 and which the distill step (utils.get_distill_data) never overrides. Before, the setting did
not exist. Unset, the requests are those from before (no penalty field: the endpoint's cache
keys, tests/stages/lib/endpoint/test_repetition_penalty.py) and the step's cache key is
unchanged; set, every request carries it, and the paper recipe sets 1.1."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from orchestrator.api import ConfigError
from orchestrator.artifacts import Ref
from stages.reinforced_ir.distill import DistillConfig, distill
from stages.reinforced_ir.schemas import DistillPrompt, RetrieverData
from stages.schemas import Model
from tests.conftest import REPO
from tests.stages.conftest import fake_endpoint

PROMPT = REPO / "conf" / "prompts" / "reinforced_ir" / "rankgpt.yaml"
ROWS = [{"id": f"q{i}", "query": f"claim {i}", "augmentation": f"answer {i}", "pos": [f"p{i}"],
         "neg": [f"n{i}a", f"n{i}b"], "neg_answer": [], "pos_scores": [], "neg_scores": []}
        for i in range(3)]


def test_the_penalty_reaches_every_request_and_is_not_sent_unset(model_env, monkeypatch):
    art, ctx = model_env
    calls = fake_endpoint(monkeypatch, lambda conversation, params: "[2] > [0] > [1]")
    prompt = DistillPrompt(Ref("file", DistillPrompt.type_name(), "h", [str(PROMPT)]))
    for cfg in (DistillConfig(repetition_penalty=1.1), DistillConfig()):
        out = distill(art(RetrieverData, ROWS), prompt, cfg, ctx("distill_1"),
                      model=art(Model, "unused"))
        assert [(r["pos"], r["neg"]) for r in out] == [
            ([f"n{i}b"], [f"p{i}", f"n{i}a"]) for i in range(3)]   # the teacher's order
    assert [(n, params["repetition_penalty"], params["temperature"]) for n, params in calls] \
        == [(3, 1.1, 0.0), (3, None, 0.0)]


@pytest.mark.parametrize("bad", [0.0, -1.1, math.nan])
def test_a_penalty_that_is_not_above_0_is_refused_naming_the_key(bad):
    with pytest.raises(ConfigError) as err:
        DistillConfig(repetition_penalty=bad)
    assert err.value.message == (f"repetition_penalty: expected a number > 0 (1.0 = no "
                                 f"penalty), got {bad!r}")
    assert "1.1" in err.value.hint


def _distill_steps(recipe: str) -> dict:
    from orchestrator.dag import build_dag
    from orchestrator.recipe import compose

    member = compose(REPO / "conf" / recipe, [])[0]
    dag = build_dag(Path(REPO / "conf" / recipe), member.values, member.secrets)
    return {n: s for n, s in dag.steps.items() if n.startswith("distill_")}


def test_the_paper_recipe_ranks_with_1_1_and_the_demo_key_is_unchanged():
    """The paper recipe's teacher ranks under the original's 1.1 in every round; the demo leaves
    it unset, so the field stays out of its cache key (``added``): its results stay cached."""
    paper, demo = _distill_steps("reinforced_ir_llama3.yaml"), _distill_steps(
        "reinforced_ir_demo.yaml")
    assert set(paper) == set(demo) == {"distill_1", "distill_2"}
    assert all(s.semantic["repetition_penalty"] == 1.1 for s in paper.values())
    assert all("repetition_penalty" not in s.semantic for s in demo.values())
