"""Overriding the steps of a ``repeat:`` block: the unrolled steps (``augment_1``) are set through
the block's template, ``repeat.B.steps.S.KEY=v`` changes a stage field the template leaves at its
default without a ``+``, and a bad value there is blamed on the override (or on the template's
line in the file), not on the recipe's ``steps:`` line."""

from __future__ import annotations

from tests.conftest import rag

RECIPE = """\
ragline: {imports: [tests.toy.stages]}
repeat:
  rounds:
    times: 2
    first: {model: base}
    steps:
      augment: {stage: toy_map, inputs: {numbers: model@prev}, add: ADD}
      model: {stage: toy_map, inputs: {numbers: augment}}
steps:
  base: {stage: toy_gen, n: 2}
  final: {stage: toy_sum, inputs: {numbers: model@last}}
"""


def _plan(toy, capsys, *args: str, add: str = "1") -> tuple[int, str]:
    recipe = toy / "conf" / "rounds.yaml"
    recipe.write_text(RECIPE.replace("ADD", add))
    capsys.readouterr()
    code = rag("plan", str(recipe), *args, runs=toy / "runs")
    return code, " ".join(capsys.readouterr().err.split())


def test_an_unrolled_step_is_set_through_its_template(toy, capsys):
    code, err = _plan(toy, capsys, "steps.augment_1.add=2")
    assert code == 2
    assert ("override 'steps.augment_1.add=2': step 'augment_1' is unrolled from the repeat block "
            "'rounds', whose steps are set for every round at once, under "
            "repeat.rounds.steps.augment") in err
    assert "hint: write repeat.rounds.steps.augment.add=2 (every round)" in err
    assert "did you mean" not in err


def test_a_template_field_at_its_default_is_overridden_without_plus(toy, capsys):
    assert _plan(toy, capsys, "repeat.rounds.steps.model.mul=3")[0] == 0
    assert _plan(toy, capsys, "-m", "repeat.rounds.steps.model.mul=2,3")[0] == 0   # a sweep too
    code, err = _plan(toy, capsys, "repeat.rounds.steps.model.mull=3")
    assert code == 2
    assert ("override 'repeat.rounds.steps.model.mull=3': repeat.rounds.steps.model.mull (step "
            "model_1): unknown key (did you mean 'mul'?)") in err   # named as written


def test_a_bad_template_value_is_blamed_on_the_override_or_its_line(toy, capsys):
    recipe = toy / "conf" / "rounds.yaml"
    code, err = _plan(toy, capsys, "repeat.rounds.steps.augment.add=x")
    assert code == 2
    assert ("error: override 'repeat.rounds.steps.augment.add=x': repeat.rounds.steps.augment.add "
            "(step augment_1): expected a number, got 'x'") in err
    code, err = _plan(toy, capsys, add="x")
    assert code == 2
    assert (f"error: {recipe}:7: repeat.rounds.steps.augment.add (step augment_1): expected a "
            "number, got 'x'") in err
