"""``rag plan`` refuses out-of-range sizes of the Reinforced-IR steps before anything runs.

Before, they were accepted and failed (or worse, did not) much later: ``n_passages: 0`` or a
negative count stopped ``synthesize`` with a bare ``ValueError`` from ``random.sample``,
``keep: 0`` in ``mine`` kept *every* candidate negative (the loop never reached 0), and
``batch_size: 0`` stopped the retriever's training with ``range() arg 3 must not be zero``.
"""

from __future__ import annotations

import pytest

from tests.conftest import REPO, plan_checker

DEMO = str(REPO / "conf" / "reinforced_ir_demo.yaml")


@pytest.fixture
def plan(tmp_path, monkeypatch, capsys):
    """``plan(*overrides) -> (exit code, stdout + stderr)`` of ``rag plan DEMO ... --check``."""
    return plan_checker(DEMO, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize("override, key, got", [
    ("steps.synthesize.n_passages=0", "steps.synthesize.n_passages", "0"),
    ("steps.synthesize.n_passages=-3", "steps.synthesize.n_passages", "-3"),
    ("repeat.round.steps.augment.n=0", "repeat.round.steps.augment.n (step augment_1)", "0"),
    ("repeat.round.steps.mine.keep=0", "repeat.round.steps.mine.keep (step mine_1)", "0"),
    ("repeat.round.steps.retriever.batch_size=0",
     "repeat.round.steps.retriever.batch_size (step retriever_1)", "0"),
    ("repeat.round.steps.distill.group_size=0",
     "repeat.round.steps.distill.group_size (step distill_1)", "0"),
])
def test_out_of_range_sizes_are_refused_by_the_plan(plan, override, key, got):
    code, out = plan(override)
    assert code == 2
    assert f"{key}: expected a value >= 1, got {got}" in out


def test_the_demo_plans(plan):
    code, out = plan()
    assert code == 0 and "error" not in out


def test_the_paper_recipe_gives_every_retriever_step_a_gpu():
    """The retriever's training, its feedback (embedding every query, augmentation and source
    passage) and its evaluations run on the shard GPU (``hw.gpus``). Before, they had no
    ``gpus:``, so on the 8-GPU machine the paper recipe trained Contriever on the CPU."""
    from orchestrator.recipe import compose
    from orchestrator.repeat import expand_repeats

    def steps(recipe):
        return expand_repeats(compose(REPO / "conf" / recipe, [])[0].config)["steps"]

    paper = steps("reinforced_ir_llama3.yaml")
    for name in ("eval_base", "eval_base_aug", "feedback_1", "retriever_1", "eval_1",
                 "eval_aug_2", "retriever_2"):
        assert paper[name].get("gpus") == 1, name
    assert steps("reinforced_ir_demo.yaml")["retriever_1"]["gpus"] == 0
