"""A prompt file is checked when the plan is made, not when the step that reads it starts:
``rag plan`` names the step input, the source, the file and what is wrong (``--check`` exits
2), ``rag run`` refuses before any step runs, and one file read by several steps is explained
once (``Artifact.check_source``, ``plan.source_problems``)."""

from __future__ import annotations

import json

from tests.conftest import rag

RECIPE = """\
ragline:
  imports: [tests.toy.stages]
sources:
  prompt: %s
steps:
  load: {stage: toy_gen, n: 4}
  slow: {stage: toy_map, inputs: {numbers: load}}
  first: {stage: toy_prompted, inputs: {numbers: slow, prompt: prompt}}
  second: {stage: toy_prompted, inputs: {numbers: load, prompt: prompt}}
"""


def recipe(toy, prompt_text: str):
    (toy / "conf" / "prompt.yaml").write_text(prompt_text)
    path = toy / "conf" / "prompted.yaml"
    path.write_text(RECIPE % (toy / "conf" / "prompt.yaml"))
    return str(path)


def problems(toy, capsys, path):
    capsys.readouterr()
    assert rag("plan", path, "--json", runs=toy / "runs") == 0
    return json.loads(capsys.readouterr().out)["members"][0]["problems"]


def nothing_ran(toy) -> bool:
    entries = toy / "runs" / "cache" / "entries"
    return not entries.exists() or not any(entries.rglob("*.json"))


def test_a_placeholder_the_stage_does_not_fill_stops_the_plan_and_the_run(toy, capsys):
    path = recipe(toy, "user: 'Count: {count}'\n")
    prompt = toy / "conf" / "prompt.yaml"
    assert problems(toy, capsys, path) == [
        f"steps.second.inputs.prompt (source 'prompt'): prompt file {prompt}:1: 'user' uses "
        "{count}, which this stage does not fill (it fills: n); use only those placeholders; "
        "write {{ and }} for a literal brace",
        "steps.first.inputs.prompt (source 'prompt'): as steps.second.inputs.prompt"]
    assert rag("plan", path, "--check", runs=toy / "runs") == 2
    assert rag("run", path, runs=toy / "runs") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'user' uses {count}, which this stage does not fill" in err
    assert "hint: fix that file (or point the source at another), then rerun" in err
    assert nothing_ran(toy)     # refused before 'load' ran ('first' reads it after 'slow')


def test_a_fixed_file_plans_clean_and_runs(toy, capsys):
    path = recipe(toy, "system: 'Reply as JSON: {\"n\": 1}'\nuser: 'Count: {n}'\n")
    assert problems(toy, capsys, path) == []        # the system message is used as written
    assert rag("run", path, runs=toy / "runs") == 0
    assert problems(toy, capsys, path) == []        # cached: nothing checked, nothing to say


def test_yaml_errors_unknown_keys_and_stray_braces_are_named(toy, capsys):
    prompt = toy / "conf" / "prompt.yaml"
    cases = {
        "user: |\n  a\n b: c\n": f"prompt file {prompt}:3:2: not valid YAML",
        "usr: 'Count: {n}'\n": f"prompt file {prompt}: unknown key 'usr' (did you mean 'user'?)",
        "user: 'Count: {n'\n": f"prompt file {prompt}:1: 'user' is not a valid template",
        "user: 'x'\npassage: '{i}. {body}'\n": "'passage' uses {body}, which this stage does "
                                               "not fill (it fills: i, title, text, id)",
    }
    for text, expected in cases.items():
        found = problems(toy, capsys, recipe(toy, text))
        assert len(found) == 2 and expected in found[0], (text, found)
