"""Composition: sweeps, config groups, interpolation."""

from __future__ import annotations

from orchestrator.recipe import compose, expand_sweep


def test_expand_sweep_is_the_cartesian_product():
    assert expand_sweep(["a=1,2", "b=x,y"], True) == [
        ["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"]]
    assert expand_sweep(["a=range(0,3)"], True) == [["a=0"], ["a=1"], ["a=2"]]


def test_compose_with_groups_and_interpolation(toy):
    recipe = toy / "conf/chain.yaml"
    cfg = compose(recipe, ["scale=3", "executor=isolated"])[0].config
    assert cfg["steps"]["rerank"]["mul"] == 3  # interpolation resolved after the override
    assert cfg["ragline"]["executor"]["isolate"] == "always"  # config group chosen by override
