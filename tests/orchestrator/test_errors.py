"""Error messages are features: each names where, what was expected, and what to do."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from tests.conftest import rag

from orchestrator.errors import did_you_mean
from tests.toy.stages import Numbers


@dataclass
class C:
    a: int = 1


def _err(capsys) -> str:
    return capsys.readouterr().err.replace("\n", " ")


def test_unknown_override_key_has_did_you_mean(toy, capsys):
    assert rag("run", str(toy / "conf/chain.yaml"), "scal=2", runs=toy / "runs") == 2
    err = _err(capsys)
    assert "chain.yaml has no key 'scal'" in err and "did you mean 'scale'" in err
    assert "hint: write scale=2" in err   # not +scal=2: nothing would read a new key 'scal'


def test_unknown_step_config_field(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.sft.ad=1", runs=toy / "runs") == 2
    err = _err(capsys)
    assert "steps.sft.ad: unknown key" in err and "did you mean 'add'" in err


def test_wrong_type(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.sft.add=abc", runs=toy / "runs") == 2
    assert "steps.sft.add: expected a number, got 'abc'" in _err(capsys)


def test_unknown_stage_and_line_number(toy, capsys):
    recipe = toy / "conf/chain.yaml"
    recipe.write_text(recipe.read_text().replace("stage: toy_sum", "stage: toy_summ"))
    assert rag("plan", str(recipe), runs=toy / "runs") == 2
    err = _err(capsys)
    assert "chain.yaml:" in err and "unknown stage 'toy_summ'" in err
    assert "did you mean 'toy_sum'" in err and "rag stages" in err


def test_wire_to_missing_output_and_unknown_step(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.dpo.inputs.numbers=rewrd",
               runs=toy / "runs") == 2
    assert "'rewrd' names no step or source (did you mean 'reward'?)" in _err(capsys)
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.dpo.inputs.numbers=reward.outt",
               runs=toy / "runs") == 2
    assert "step 'reward' has no output 'outt' (did you mean 'out'?)" in _err(capsys)


def test_a_null_step_is_removed_and_a_wire_to_it_says_so(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.evaluate=null", "--json",
               runs=toy / "runs") == 0
    member = json.loads(capsys.readouterr().out)["members"][0]
    assert [s["step"] for s in member["steps"]][-1] == "dpo"       # evaluate is gone
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.dpo=null", runs=toy / "runs") == 2
    err = _err(capsys)
    assert "chain.yaml:" in err
    assert "steps.evaluate.inputs.numbers: 'dpo' is a removed step (steps.dpo: null)" in err
    assert "stage 'toy_sum' needs its numbers: keep step 'dpo' or wire another" in err


def test_type_mismatch_between_steps(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"),
               "+steps.words={stage: toy_words, inputs: {numbers: load}}",
               "steps.dpo.inputs.numbers=words", runs=toy / "runs") == 2
    err = _err(capsys)
    assert "steps.dpo.inputs.numbers: 'words.out' does not fit Numbers" in err
    assert "column 'x' is missing" in err


def test_cycle_is_reported_with_its_path(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.load.inputs={}",
               "steps.retrieve.inputs.numbers=dpo", runs=toy / "runs") == 2
    err = _err(capsys)
    assert "cycle" in err and "retrieve -> " in err


def test_missing_required_input(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.dpo.inputs={}", runs=toy / "runs") == 2
    assert "steps.dpo.inputs.numbers: missing; stage 'toy_map' needs a Numbers here" in _err(capsys)


def test_shards_on_unshardable_stage(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "+steps.evaluate.shards=2", runs=toy / "runs") == 2
    assert "stage 'toy_sum' is not shardable" in _err(capsys)


def test_missing_source_file_stops_before_running(toy, capsys, monkeypatch):
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    recipe = toy / "conf/chain.yaml"
    recipe.write_text(recipe.read_text().replace(
        "load:      {stage: toy_gen, n: 8}", "load:      {stage: toy_gen, inputs: {path: numbers}}")
        + "\nsources:\n  numbers: /nonexistent/numbers.txt\n")
    assert rag("run", str(recipe), runs=toy / "runs") == 2
    err = _err(capsys)
    assert "source 'numbers': /nonexistent/numbers.txt does not exist" in err
    assert "override it on the command line: sources.numbers=/path/to/file" in err
    assert not (toy / "count.txt").exists()


@pytest.mark.parametrize("value, what", [("{pth: data.txt}", "unknown key 'pth'"),
                                         ("{}", "no 'path' key")])
def test_a_source_mapping_with_a_misspelled_key_is_refused(value, what, toy, capsys):
    """Before: {pth: …} read as "no path", so the recipe's own source was used without a word."""
    recipe = toy / "conf/chain.yaml"
    recipe.write_text(recipe.read_text().replace(
        "load:      {stage: toy_gen, n: 8}", "load:      {stage: toy_gen, inputs: {path: numbers}}")
        + "\nsources:\n  numbers: null\n")
    assert rag("plan", str(recipe), f"sources.numbers={value}", runs=toy / "runs") == 2
    assert (f"error: override 'sources.numbers={value}': sources.numbers: {what}; a source is a "
            "path, or {path: PATH}") in _err(capsys)
    data = toy / "numbers.txt"
    data.write_text("1\n2\n")
    assert rag("plan", str(recipe), f"sources.numbers={{path: {data}}}", runs=toy / "runs") == 0


def test_malformed_input_line_names_file_and_line(toy, capsys):
    data = toy / "numbers.txt"
    data.write_text("1\n2\nthree\n")
    recipe = toy / "conf/chain.yaml"
    recipe.write_text(recipe.read_text().replace(
        "load:      {stage: toy_gen, n: 8}", "load:      {stage: toy_gen, inputs: {path: numbers}}")
        + f"\nsources:\n  numbers: {data}\n")
    assert rag("run", str(recipe), runs=toy / "runs") == 2   # bad input: fix it, then rerun
    err = _err(capsys)
    assert f"{data}:3: expected a number, got 'three'" in err
    assert "Traceback" not in err


def test_empty_input_table(toy, capsys):
    assert rag("run", str(toy / "conf/chain.yaml"), "steps.load.n=0", runs=toy / "runs") == 2
    err = _err(capsys)
    assert "step 'retrieve' input 'numbers' is empty (0 rows) from 'load.out'" in err


def test_gpu_asked_for_where_none_exists(toy, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert rag("run", str(toy / "conf/chain.yaml"), "steps.retrieve.gpus=1", runs=toy / "runs") == 2
    err = _err(capsys)
    assert "steps.retrieve.gpus: 1 GPU(s) per shard asked for, but no CUDA GPU is visible" in err
    assert "steps.retrieve.gpus=0" in err


def test_sweep_value_without_multirun(toy, capsys):
    """The hint was `rag run RECIPE -m steps.dpo.add=range(1,3)`: for `rag plan` too, with
    RECIPE to fill in and parentheses the shell cannot take unquoted."""
    assert rag("run", str(toy / "conf/chain.yaml"), "steps.dpo.add=1,2", runs=toy / "runs") == 2
    assert "is a sweep; add -m" in _err(capsys)
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.dpo.add=range(1,3)") == 2
    assert ("hint: add -m before the overrides, quoted for the shell: "
            "-m 'steps.dpo.add=range(1,3)'") in _err(capsys)


@pytest.mark.parametrize("override, message", [
    ("steps.sft.add=${oc.env:RAGLINE_TEST_UNSET}",
     "steps.sft.add: ${oc.env:RAGLINE_TEST_UNSET} reads the environment variable "
     "RAGLINE_TEST_UNSET, which is not set hint: export RAGLINE_TEST_UNSET=VALUE before running "
     "rag, or give it a default: ${oc.env:RAGLINE_TEST_UNSET,DEFAULT}"),
    ("scale=${scale}", "scale: the value refers to itself (OmegaConf: Recursive interpolation "
                       "detected) hint: write the value itself, or a reference to another key"),
    ("steps.sft.add=${oc.evn:X}", "steps.sft.add: no resolver 'oc.evn' in ${oc.evn:…} (did you "
                                  "mean 'oc.env'?) hint: the resolvers here: "),
    ("foo=1", "chain.yaml has no key 'foo' hint: rag config "),
])
def test_interpolation_and_new_key_errors_say_what_to_do(override, message, toy, capsys,
                                                         monkeypatch):
    """Before: OmegaConf's own words ("KeyError raised while resolving interpolation", "Recursive
    interpolation detected", "Unsupported interpolation type oc.evn") with no hint; and foo=1
    hinted +foo=1, which then failed as a key nothing reads."""
    monkeypatch.delenv("RAGLINE_TEST_UNSET", raising=False)
    assert rag("plan", str(toy / "conf/chain.yaml"), override, runs=toy / "runs") == 2
    assert message in " ".join(_err(capsys).split())


def test_recipe_not_found(toy, capsys):
    assert rag("plan", "conf/dynamicrag_dmeo.yaml", runs=toy / "runs") == 2
    assert "recipe 'conf/dynamicrag_dmeo.yaml' not found" in _err(capsys)


def test_did_you_mean():
    assert did_you_mean("retreive", ["retrieve", "rerank"]) == " (did you mean 'retrieve'?)"
    assert did_you_mean("zzz", ["retrieve"]) == ""


@pytest.mark.parametrize("bad", ["no_annotation", "two_configs", "bad_return", "bad_shard"])
def test_stage_definition_errors_say_how_to_fix(bad):
    from orchestrator.api import stage

    with pytest.raises(TypeError) as e:
        if bad == "no_annotation":
            @stage("bad1")
            def f(x): ...
        elif bad == "two_configs":
            @stage("bad2")
            def f(a: C, b: C) -> Numbers: ...
        elif bad == "bad_return":
            @stage("bad3")
            def f(a: C) -> int: ...
        else:
            @stage("bad4", shard_by="nope")
            def f(numbers: Numbers) -> Numbers: ...
    msg = str(e.value)
    assert {"no_annotation": "has no type annotation", "two_configs": "two config dataclasses",
            "bad_return": "return annotation must be an artifact type",
            "bad_shard": "shard_by='nope' must name a Table input"}[bad] in msg


def test_missing_required_config_value_names_the_key():
    from omegaconf import MISSING

    from orchestrator.stage_config import check_step_config
    from orchestrator.errors import ConfigError

    @dataclass
    class NeedsModel:
        model: str = MISSING
        k: int = 5

    with pytest.raises(ConfigError) as e:
        check_step_config(NeedsModel, {"k": 3}, "steps.rerank")
    assert "steps.rerank.model: missing value (str required)" in str(e.value)
    assert "steps.rerank.model=..." in str(e.value)
    assert check_step_config(NeedsModel, {"model": "m"}, "steps.rerank")[0] == {"model": "m", "k": 5}


def test_a_key_is_never_located_in_a_sibling_recipe(toy, capsys):
    """A sibling recipe that writes the key deeper (``steps.sft.ad``) is not composed into this
    one, so the error never points at the sibling; the override that set the key is named."""
    conf = toy / "conf"
    (conf / "sibling.yaml").write_text("steps:\n  sft:\n    ad: 1\n")
    assert rag("plan", str(conf / "chain.yaml"), "+steps.sft.ad=1", runs=toy / "runs") == 2
    err = _err(capsys)
    assert "sibling.yaml" not in err
    assert "error: override '+steps.sft.ad=1': steps.sft.ad: unknown key" in err


@pytest.mark.parametrize("multirun", [False, True])
def test_a_bad_value_from_an_override_names_the_override_not_the_recipe_line(toy, capsys,
                                                                            multirun):
    """The recipe's line for step dpo is not where ``steps.dpo.add=abc`` is fixed (in a sweep:
    the member's value)."""
    values = ["-m", "steps.dpo.add=0.1,abc"] if multirun else ["steps.dpo.add=abc"]
    assert rag("plan", str(toy / "conf/chain.yaml"), *values, runs=toy / "runs") == 2
    err = _err(capsys)
    assert "error: override 'steps.dpo.add=abc': steps.dpo.add: expected a number, got 'abc'" in err
    assert "chain.yaml:" not in err


def test_a_group_choice_typo_lists_the_options(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "executor=lokal", runs=toy / "runs") == 2
    err = _err(capsys)
    assert "Could not find 'executor/lokal' (did you mean 'local'?); the options in 'executor' " \
           "are: isolated, local, ray, slurm" in err   # the toy's and the shipped conf/'s


@pytest.mark.parametrize("multirun", [False, True])
def test_a_mistyped_step_in_an_override_gets_a_suggestion_both_ways(toy, capsys, multirun):
    """``steps.dpoo.add=3`` (and ``-m steps.dpoo.add=3,4``): did you mean 'dpo'; a truly new
    step is told it needs a stage, not to write +steps.X.add (which then fails for that)."""
    sweep = ["-m", "steps.dpoo.add=3,4"] if multirun else ["steps.dpoo.add=3"]
    assert rag("plan", str(toy / "conf/chain.yaml"), *sweep, runs=toy / "runs") == 2
    assert "chain.yaml has no key 'steps.dpoo' (did you mean 'dpo'?)" in _err(capsys)
    assert rag("plan", str(toy / "conf/chain.yaml"), "stepss.dpo.add=3", runs=toy / "runs") == 2
    assert "has no key 'stepss' (did you mean 'steps'?)" in _err(capsys)
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.brand_new.add=3", runs=toy / "runs") == 2
    assert "hint: a new step needs its stage: +steps.brand_new={stage: NAME}" in _err(capsys)


def test_run_without_a_recipe_asks_for_the_recipe_only(capsys):
    assert rag("run") == 2
    assert capsys.readouterr().err == ("rag run: error: the following arguments are required: recipe "
                                       "(`rag run --help` shows the usage)\n")


def test_negative_counts_are_refused(toy, capsys):
    assert rag("plan", str(toy / "conf/chain.yaml"), "ragline.executor.max_parallel=-3",
               runs=toy / "runs") == 2
    assert "ragline.executor.max_parallel: expected a whole number, 0 or more, got -3" in _err(capsys)
    assert rag("gc", "--keep-runs", "-1", runs=toy / "runs") == 2
    assert "argument --keep-runs: must be >= 0, got -1" in _err(capsys)


def test_a_step_added_on_the_command_line_is_blamed_on_its_override(toy, capsys):
    """Before: the error was put at the recipe's `steps:` line, where nothing of the step is."""
    assert rag("plan", str(toy / "conf/chain.yaml"), "+steps.new.stage=toy_map",
               runs=toy / "runs") == 2
    assert ("error: override '+steps.new.stage=toy_map': steps.new.inputs.numbers: missing; "
            "stage 'toy_map' needs a Numbers here") in _err(capsys)


def test_adding_a_null_step_is_refused_with_the_step_meant(toy, capsys):
    """Before: +steps.evalute=null was taken without a word and removed nothing."""
    assert rag("plan", str(toy / "conf/chain.yaml"), "+steps.evalute=null", runs=toy / "runs") == 2
    assert ("error: override '+steps.evalute=null': there is no step 'evalute' to remove (did you "
            "mean 'evaluate'?)") in _err(capsys)
