"""Prompt files: loading, one-line errors, filling templates."""

import doctest

import pytest

from orchestrator.api import ConfigError
from stages.lib import prompts
from stages.lib.prompts import Prompt, load_prompt, messages


def test_doctests():
    assert doctest.testmod(prompts).failed == 0


def test_load_and_fill(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("system: Be brief.\nuser: |-\n  Q: {question}\n  A:\n")
    prompt = load_prompt(path)
    assert prompt.system == "Be brief." and prompt.path == str(path)
    assert messages(prompt, question="who?") == [{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": "Q: who?\nA:"}]
    assert messages(Prompt(user="{x}"), x=1) == [{"role": "user", "content": "1"}]


def test_an_edited_file_is_read_again(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("user: one\n")
    assert load_prompt(path).user == "one"
    path.write_text("user: two, longer\n")
    assert load_prompt(path).user == "two, longer"


@pytest.mark.parametrize("text, match", [
    ("system: x\n", "needs a 'user' template"),
    ("user: x\nsytem: y\n", "unknown key 'sytem'"),
    ("user: x\nstyles: [a]\n", "'styles' must map dataset names to strings"),
    ("user: x\npassage: 3\n", "'passage' must be a string"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"prompt file {path}: {match}"):
        load_prompt(path)


def test_a_yaml_error_names_its_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("system: fine\nuser: [a\n")
    with pytest.raises(ConfigError, match=f"prompt file {path}:3:1: not valid YAML \\(expected "):
        load_prompt(path)


def test_missing_file_and_unknown_placeholder(tmp_path):
    with pytest.raises(ConfigError, match="prompt file .*nope.yaml: not found"):
        load_prompt(tmp_path / "nope.yaml")
    path = tmp_path / "p.yaml"
    path.write_text("user: 'Q: {query}'\n")
    with pytest.raises(ConfigError, match=r"'user' uses \{query\}, which this stage does not fill "
                                          r"\(it fills: question\)"):
        messages(load_prompt(path), question="q")


def test_a_prompt_type_that_declares_a_placeholder_its_stage_never_fills_fails_loudly(tmp_path):
    """``fills`` cannot drift from the code: every stage's tests would hit this."""
    from orchestrator.artifacts import Ref
    from stages.lib.prompts import PromptFile, messages

    class Declared(PromptFile):
        fills = ("question", "style")

    path = tmp_path / "p.yaml"
    path.write_text("user: 'Q: {question}'\n")
    prompt = Declared(Ref("file", "", "h", [str(path)])).load()
    assert prompt.fills == ("question", "style")
    with pytest.raises(RuntimeError, match=r"declares it fills \['style'\]"):
        messages(prompt, question="who?")
    assert messages(prompt, question="who?", style="short")[-1]["content"] == "Q: who?"
