"""A new user composing a recipe from the shipped stages only (docs/composing-recipes.md):
``rag stages NAME`` says how to wire each input, and each wiring mistake's message says what
was expected and what to write instead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.conftest import REPO, rag

DOC = REPO / "docs" / "composing-recipes.md"


def _doc_files() -> dict[str, str]:
    """The doc's two files: a "`name`:" line, then a fenced block."""
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^`([\w./]+)`:\n\n```\w*\n(.*?)^```", DOC.read_text(), re.M | re.S)}


@pytest.fixture
def myrag(toy):
    """The doc's recipe and prompt in a folder of their own (the cwd stays the repository)."""
    folder = toy / "myrag"
    folder.mkdir()
    for name, text in _doc_files().items():
        (folder / name).write_text(text)
    return folder / "myrag.yaml"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _plan(recipe: Path, capsys, *overrides: str) -> tuple[int, str]:
    code = rag("plan", str(recipe), *overrides, runs=recipe.parent / "runs")
    out = capsys.readouterr()
    return code, _flat(out.out + " " + out.err)


def _stages(capsys, *args: str) -> str:
    assert rag("stages", *args) == 0
    return capsys.readouterr().out


# ---------------------------------------------------------------- rag stages NAME


def test_rag_stages_says_for_each_input_whether_it_is_required_and_which_stages_write_it(capsys):
    out = _stages(capsys, "toy_map", "--import", "tests.toy.stages")
    # other tests of the suite register stages that write Numbers too: look for these two
    line = next(x for x in out.splitlines() if "numbers: Numbers  required; a step of stage" in x)
    assert "toy_gen" in line and "toy_map" in line
    out = _stages(capsys, "toy_gen", "--import", "tests.toy.stages")
    assert "path: File  optional: leave it out or null; a SOURCE (a file)" in out
    out = _stages(capsys, "retrieve")   # the stage that writes the type itself comes first
    assert "questions: Questions  required; a step of stage load_data (.train, .eval)," in out


def test_rag_stages_says_how_to_read_one_output_or_several(capsys):
    out = _stages(capsys, "toy_map", "--import", "tests.toy.stages")
    assert "outputs: out: Numbers  (its only output: wire STEP, or STEP.out)" in out
    out = _stages(capsys, "toy_split", "--import", "tests.toy.stages")
    assert "(wire STEP.low / STEP.high; an output nothing reads is fine)" in out


def test_rag_stages_shows_a_shipped_step_at_its_file_and_line(capsys):
    out = _stages(capsys, "infer_topk")
    where = re.search(r"example, (\S+):(\d+)", out)
    assert where, out
    path, line = Path(where.group(1)), int(where.group(2))
    assert path.is_absolute() and path.is_relative_to(REPO / "conf")
    key = path.read_text().splitlines()[line - 1].strip()
    block = out.split(where.group(0), 1)[1].splitlines()[1:]
    assert block[0].strip() == key and block[1].strip() == "stage: infer_topk"
    assert "${" not in "\n".join(block[:5])   # the example needs no other section


def test_rag_stages_names_the_placeholders_and_the_shipped_files_of_a_prompt_input(capsys):
    out = _stages(capsys, "infer_topk")
    assert ("prompt: GeneratorPrompt  required; a SOURCE (a prompt YAML file whose `user` may "
            "use {question}, {passages}, {style} and must use {question}, {passages})") in out
    assert f"shipped recipes wire: {REPO / 'conf/prompts/common/rag.yaml'}" in out


def test_rag_stages_reads_list_items_and_nested_sections(capsys):
    assert "retrieval_k: list[int >= 1] = [1, 3, 5, 10, 20]" in _stages(capsys, "evaluate")
    assert ("reader: EndpointConfig | None = None  (a section: backend, model, base_url,"
            in _stages(capsys, "infer_topk"))


# ---------------------------------------------------------------- the doc's recipe


def test_the_docs_recipe_plans_as_written_from_another_directory(myrag, capsys, monkeypatch):
    monkeypatch.chdir(myrag.parent.parent)      # rag.yaml is found in the recipe's folder
    code, out = _plan(myrag, capsys)
    assert code == 0 and "problem" not in out, out
    assert "7 tasks, 7 distinct" in out


MISTAKES = {  # the first cell of the doc's table -> (old text, new text) in the recipe
    "`questions: load.corpus` (wrong type)": ("questions: load.eval,", "questions: load.corpus,"),
    "`questoins: retrieve`": ("questions: retrieve,", "questoins: retrieve,"),
    "no `prompt:`": (", prompt: rag_prompt}", "}"),
    "`questions: load` (several outputs)": ("questions: load.eval,", "questions: load,"),
    "`prompt: sources.rag_prompt`": ("prompt: rag_prompt}", "prompt: sources.rag_prompt}"),
    "`stage: retreive`": ("stage: retrieve\n", "stage: retreive\n"),
    "`max_new_tokens: 16` under `retrieve`": ("    k: 5\n  infer:", "    k: 5\n    max_new_tokens: 16\n  infer:"),
    "a step without `stage:`": ("  index:\n    stage: index\n", "  index:\n"),
    "`inputs: [infer]`": ("inputs: {predictions: infer}", "inputs: [infer]"),
    "two steps reading each other": ("  evaluate:\n", "  agg1:\n    stage: aggregate\n    inputs: "
                                     "{primary: agg2}\n  agg2:\n    stage: aggregate\n    inputs: "
                                     "{primary: agg1}\n  evaluate:\n"),
    "`{context}` in the prompt's `user`": ("{passages}\n\n  Question", "{context}\n\n  Question"),
}


def _table() -> dict[str, str]:
    section = DOC.read_text().split("## What a mistake says", 1)[1].split("\n## ", 1)[0]
    return {m.group(1).strip(): m.group(2) for m in
            re.finditer(r"^\| (.+?) \| (.+) \|$", section, re.M) if not m.group(1).startswith("-")}


def test_the_docs_table_of_mistakes_covers_each_row():
    assert set(_table()) - {"mistake"} == set(MISTAKES)


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_the_docs_table_of_mistakes_quotes_what_rag_plan_says(mistake, myrag, capsys):
    old, new = MISTAKES[mistake]
    target = myrag.parent / ("rag.yaml" if "{context}" in mistake else "myrag.yaml")
    assert old in target.read_text()
    target.write_text(target.read_text().replace(old, new, 1))
    code, out = _plan(myrag, capsys)
    assert code == (0 if "{context}" in mistake else 2), out
    for quoted in re.findall(r"`([^`]+)`", _table()[mistake]):
        for part in (p.strip() for p in quoted.split("…")):
            assert _flat(part) in out, f"{mistake}: the doc quotes {part!r}; rag plan said: {out}"


# ---------------------------------------------------------------- wiring messages


def test_a_wire_of_the_wrong_type_names_its_type_and_the_outputs_that_fit(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"),
               "+steps.words={stage: toy_words, inputs: {numbers: load}}",
               "steps.dpo.inputs.numbers=words", runs=toy / "runs") == 2
    err = _flat(capsys.readouterr().err)
    assert "'words.out' does not fit Numbers (it is Words): column 'x' is missing" in err
    assert "hint: wire an output of type Numbers: load, retrieve, aggregate" in err
    assert "`rag stages toy_map` says what each input takes" in err


def test_inputs_that_are_not_a_mapping_show_the_mapping_to_write(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.dpo.inputs=[reward]",
               runs=toy / "runs") == 2
    err = _flat(capsys.readouterr().err)
    assert "steps.dpo.inputs: expected a mapping {INPUT: STEP, STEP.OUTPUT or SOURCE}, got a list" in err
    assert "hint: steps.dpo.inputs: {numbers: ...}" in err


def test_a_missing_file_input_says_to_wire_a_source(myrag, capsys):
    recipe = myrag.read_text().replace(", prompt: rag_prompt}", "}")
    myrag.write_text(recipe)
    code, out = _plan(myrag, capsys)
    assert code == 2
    assert "hint: add inputs: {prompt: SOURCE} to step 'infer'" in out
    assert "a SOURCE is a name under sources: with its path" in out


def test_a_wire_naming_sources_dot_name_says_to_write_the_bare_name(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "+sources.numbers=/x.txt",
               "steps.load.inputs={path: sources.numbers}", runs=toy / "runs") == 2
    err = _flat(capsys.readouterr().err)
    assert "'sources.numbers' names no step or source" in err
    assert "a source by its bare name (NAME, not sources.NAME); sources here: numbers" in err


def test_a_file_input_wired_to_a_step_says_a_file_is_a_source(myrag, capsys):
    myrag.write_text(myrag.read_text().replace("prompt: rag_prompt}", "prompt: generator}"))
    code, out = _plan(myrag, capsys)
    assert code == 2
    assert "'generator.out' does not fit GeneratorPrompt: it is a dir (Model), expected a file" in out
    assert "hint: a GeneratorPrompt is a file: wire a SOURCE (a name under sources: with its path)" in out


def test_a_source_without_a_path_names_the_override_that_sets_it(myrag, capsys):
    code, out = _plan(myrag, capsys, "sources.rag_prompt=null")
    assert code == 0
    assert ("steps.infer.inputs.prompt: source 'rag_prompt' has no path; set it under sources: in "
            "the recipe, or on the command line: sources.rag_prompt=PATH") in out


def test_a_cycle_names_the_wire_that_closes_it_and_where_it_was_set(toy, capsys):
    """Before: the recipe's path and a hint to run `rag dag RECIPE`, which failed the same way;
    the override that made the cycle was not named."""
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.load.inputs={}",
               "steps.retrieve.inputs.numbers=dpo", runs=toy / "runs") == 2
    assert ("error: override 'steps.retrieve.inputs.numbers=dpo': steps.retrieve.inputs.numbers: "
            "the steps form a cycle: retrieve -> dpo -> reward -> sample -> sft -> convert -> "
            "label -> rerank -> aggregate -> retrieve (each reads the next) hint: a step cannot "
            "read its own output, even through other steps: wire steps.retrieve.inputs.numbers "
            "to a step that does not read retrieve") in _flat(capsys.readouterr().err)


def test_an_input_written_as_a_config_key_is_told_to_go_under_inputs(toy, capsys):
    recipe = toy / "conf" / "ni.yaml"
    recipe.write_text("ragline:\n  imports: [tests.toy.stages]\nsteps:\n  load: {stage: toy_gen, n: 4}\n"
                      "  map: {stage: toy_map, numbers: load}\n")
    assert rag("plan", str(recipe), runs=toy / "runs") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (f"error: {recipe}:5: steps.map.numbers: 'numbers' is an input of stage 'toy_map', not "
            "a config key hint: write it under inputs: steps.map: {inputs: {numbers: load}}") in err


def test_a_reference_to_a_section_the_recipe_lacks_says_what_to_set(toy, capsys):
    """A step copied from a shipped recipe often reads ${retrieval.k} of a section left behind."""
    recipe = toy / "conf" / "ik.yaml"
    recipe.write_text("ragline:\n  imports: [tests.toy.stages]\nsteps:\n  load: {stage: toy_gen, n: 4}\n"
                      '  map: {stage: toy_map, inputs: {numbers: load}, add: "${common.add}"}\n')
    assert rag("plan", str(recipe), runs=toy / "runs") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (f"error: {recipe}:5: steps.map.add: ${{common.add}} reads a key the recipe does not "
            "set hint: set it in the recipe (common: {add: ...}) or write the value itself") in err


def test_a_cycle_begins_at_its_first_step_in_recipe_order(toy, capsys):
    """A step listed before the cycle that reads it made the search enter the cycle at `b`, and
    blame b's wire, though `a`, written first, is the one that reads a later step."""
    recipe = toy / "conf" / "cyc.yaml"
    recipe.write_text("ragline:\n  imports: [tests.toy.stages]\nsteps:\n"
                      "  z: {stage: toy_sum, inputs: {numbers: b}}\n"
                      "  a: {stage: toy_map, inputs: {numbers: b}}\n"
                      "  b: {stage: toy_map, inputs: {numbers: a}}\n")
    assert rag("plan", str(recipe), runs=toy / "runs") == 2
    assert (f"error: {recipe}:5: steps.a.inputs.numbers: the steps form a cycle: a -> b -> a"
            in _flat(capsys.readouterr().err))
