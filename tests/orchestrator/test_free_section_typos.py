"""A key of a free section (a top-level key other than steps, sources, ragline, repeat) takes
effect only where an interpolation reads it. One that nothing reads is a note at its file:line
(rag plan lists it, rag run prints it once), also when the composition is remembered; one that a
command-line override adds is an error (exit 2) with a did-you-mean and the override to write."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, rag

from orchestrator.recipe import compose

PIPE = """\
ragline:
  imports: [tests.toy.stages]
common:
  add: 1.0
  mul: 2.0
steps:
  gen: {stage: toy_gen, n: 4}
  add: {stage: toy_map, inputs: {numbers: gen}, add: "${common.add}"}
  mul: {stage: toy_map, inputs: {numbers: add}, mul: "${common.mul}"}
"""

RECIPE = """\
defaults:
  - pipe
  - _self_

common:
  add: 3.0
  ad: 2.0
"""


def _recipe(toy, text: str = RECIPE) -> Path:
    (toy / "conf/pipe.yaml").write_text(PIPE)
    recipe = toy / "conf/r.yaml"
    recipe.write_text(text)
    return recipe


def _out(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    return " ".join(captured.out.split()), " ".join(captured.err.split())


def test_an_unread_key_in_a_recipe_is_a_plan_note_at_its_line(toy, capsys):
    recipe = _recipe(toy)
    assert rag("plan", str(recipe), runs=toy / "runs") == 0
    out, _ = _out(capsys)
    assert (f"note: {recipe}:7: common.ad is set, but no ${{common.ad}} in the recipe reads it "
            "(did you mean 'common.add'?)") in out
    assert out.count("note:") == 1   # common.add and common.mul are read

    assert rag("plan", str(recipe), "--json", runs=toy / "runs") == 0
    notes = json.loads(capsys.readouterr().out)["members"][0]["notes"]
    assert notes == [f"{recipe}:7: common.ad is set, but no ${{common.ad}} in the recipe reads it "
                     "(did you mean 'common.add'?)"]


def test_a_documentary_key_gets_a_note_saying_what_to_do(toy, capsys):
    recipe = _recipe(toy, RECIPE.replace("ad: 2.0", "author: me"))
    assert rag("plan", str(recipe), runs=toy / "runs") == 0
    assert (f"note: {recipe}:7: common.author is set, but no ${{common.author}} in the recipe "
            "reads it; rename it if it is a typo, or make it a # comment if it only documents "
            "something") in _out(capsys)[0]


def test_run_prints_the_note_once_also_when_the_composition_is_remembered(toy, capsys):
    recipe = _recipe(toy)
    note = (f"note: {recipe}:7: common.ad is set, but no ${{common.ad}} in the recipe reads it "
            "(did you mean 'common.add'?)")
    assert rag("run", str(recipe), "--no-progress", runs=toy / "runs") == 0
    assert _out(capsys)[1].count(note) == 1
    remembered = list((toy / "runs/.state/remembered").glob("*.json"))
    assert len(remembered) == 1

    assert rag("run", str(recipe), "--no-progress", runs=toy / "runs") == 0  # a no-op rerun
    assert _out(capsys)[1].count(note) == 1
    assert json.loads(remembered[0].read_text())["members"][0]["notes"] == [note[len("note: "):]]

    recipe.write_text(RECIPE.replace("ad: 2.0", "mul: 2.0"))   # fixed: the note goes away
    assert rag("run", str(recipe), "--no-progress", runs=toy / "runs") == 0
    assert "note:" not in _out(capsys)[1]


def test_an_unread_key_added_by_an_override_is_an_error_with_the_override_to_write(toy, capsys):
    recipe = _recipe(toy, RECIPE.replace("  ad: 2.0\n", ""))
    assert rag("plan", str(recipe), "+common.ad=2", runs=toy / "runs") == 2
    err = _out(capsys)[1]
    assert ("error: override '+common.ad=2': nothing in r.yaml reads common.ad "
            "(did you mean 'common.add'?) hint: write common.add=2") in err
    assert rag("plan", str(recipe), "common.add=2", runs=toy / "runs") == 0   # the hint works

    assert rag("plan", str(recipe), "+comon.add=2", runs=toy / "runs") == 2   # a section's name
    assert ("override '+comon.add=2': nothing in r.yaml reads comon (did you mean 'common'?) "
            "hint: write common.add=2") in _out(capsys)[1]

    assert rag("plan", str(recipe), "common={add: 2, ad: 3}", runs=toy / "runs") == 2
    assert ("override 'common={add: 2, ad: 3}': nothing in r.yaml reads common.ad (did you mean "
            "'common.add'?) hint: rename 'ad' to 'add' in the override") in _out(capsys)[1]


def test_without_a_close_name_the_hint_lists_the_keys_that_are_read(toy, capsys):
    recipe = _recipe(toy, RECIPE.replace("  ad: 2.0\n", ""))
    assert rag("plan", str(recipe), "+common.offset=2", runs=toy / "runs") == 2
    assert ("error: override '+common.offset=2': nothing in r.yaml reads common.offset hint: a key "
            "takes effect only where the recipe refers to it as ${common.offset}; the keys of "
            "common it reads: add, mul") in _out(capsys)[1]


def test_a_sweep_override_is_named_as_typed(toy, capsys):
    recipe = _recipe(toy, RECIPE.replace("  ad: 2.0\n", ""))
    assert rag("plan", str(recipe), "-m", "+common.ad=1,2", runs=toy / "runs") == 2
    assert ("override '+common.ad=1,2': nothing in r.yaml reads common.ad (did you mean "
            "'common.add'?) hint: write common.add=1,2") in _out(capsys)[1]


def test_a_missing_key_override_suggests_the_close_key_not_adding_a_new_one(toy, capsys):
    recipe = _recipe(toy, RECIPE.replace("  ad: 2.0\n", ""))
    assert rag("plan", str(recipe), "common.ad=2", runs=toy / "runs") == 2
    assert ("override 'common.ad=2': r.yaml has no key 'common.ad' (did you mean 'add'?) "
            "hint: write common.add=2") in _out(capsys)[1]


def test_keys_read_through_a_parent_a_relative_reference_or_an_override_are_read(toy, capsys):
    recipe = _recipe(toy, RECIPE.replace("  ad: 2.0\n", "") + "opts: {a: 1, b: 2}\n"
                     "all: ${opts}\nrel: {x: 1.5, y: '${.x}'}\n"
                     "reads: {a: '${all}', y: '${rel.y}'}\nextra: {z: 1}\n")
    members = compose(recipe, ["+steps.add.tag=${extra.z}", "+steps.mul.tag=${reads}"])
    assert members[0].notes == []
    unread = [note.split(" is set")[0] for note in compose(recipe, [])[0].notes]
    assert unread == [f"{recipe}:10: reads", f"{recipe}:11: extra"]   # without those overrides


def test_a_key_whose_reader_a_variant_removes_is_still_read(toy, capsys):
    """A variant that drops a step (``steps.mul: null``, as conf/rag_instruct/released_exemplars
    does) leaves the key that step read alone: the recipe's files still refer to it."""
    recipe = _recipe(toy)
    (toy / "conf/variant").mkdir()
    (toy / "conf/variant/nomul.yaml").write_text("# @package _global_\nsteps:\n  mul: null\n")
    members = compose(recipe, ["+variant=nomul"])
    assert [note.split(" is set")[0] for note in members[0].notes] == [f"{recipe}:7: common.ad"]
    assert members[0].config["steps"]["mul"] is None   # the step that read common.mul

    (toy / "conf/variant/extra.yaml").write_text("# @package _global_\ncommon:\n  ad2: 1\n")
    notes = compose(recipe, ["+variant=extra"])[0].notes   # located in the chosen group's file
    assert notes[1].startswith(f"{toy / 'conf/variant/extra.yaml'}:3: common.ad2 is set")


def test_shipped_recipes_have_no_unread_keys():
    recipes = sorted((REPO / "conf").glob("*.yaml"))
    assert len(recipes) >= 10     # five recipes, a paper one and a demo each
    for recipe in recipes:
        assert compose(recipe, [])[0].notes == [], recipe.name


def test_rag_dag_shows_the_note_on_stderr_and_keeps_stdout_a_graph(toy, capsys):
    recipe = _recipe(toy)
    assert rag("dag", str(recipe), "--format", "dot") == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("digraph ragline {") and "note:" not in captured.out
    assert (f"note: {recipe}:7: common.ad is set, but no ${{common.ad}} in the recipe reads it "
            "(did you mean 'common.add'?)") in " ".join(captured.err.split())
