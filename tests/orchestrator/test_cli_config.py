"""``rag config``: the composed recipe (interpolations resolved, overrides applied), a section of
it, a step's every setting with the stage's defaults marked, a sweep's members; values read from
the environment shown as the text that reads them; one-line refusals."""

from __future__ import annotations

import json

import yaml

from tests.conftest import rag


def _config(toy, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = rag("config", str(toy / "conf/chain.yaml"), *args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_composed_recipe_with_overrides_and_interpolations_resolved(toy, capsys):
    code, out, _ = _config(toy, capsys, "scale=3")
    assert code == 0
    config = yaml.safe_load(out)
    assert config["scale"] == 3
    assert config["steps"]["rerank"] == {"stage": "toy_map", "inputs": {"numbers": "aggregate"},
                                         "mul": 3}                        # ${scale}, resolved
    assert config["ragline"]["executor"]["name"] == "local"             # the chosen group
    code, out, _ = _config(toy, capsys, "--key", "steps.retrieve.shards")
    assert (code, out) == (0, "4\n")


def test_it_prints_what_the_run_records_as_its_config(toy, capsys):
    code, printed, _ = _config(toy, capsys, "scale=3", "steps.dpo.add=0.2")
    assert code == 0
    assert rag("run", str(toy / "conf/chain.yaml"), "scale=3", "steps.dpo.add=0.2",
               "--no-progress", runs=toy / "runs") == 0
    (record,) = (toy / "runs" / "chain").glob("*/config.yaml")
    assert record.read_text() == printed


def test_a_step_with_every_field_and_the_defaults_marked(toy, capsys):
    code, out, _ = _config(toy, capsys, "steps.dpo.mul=2", "--step", "dpo")
    assert code == 0
    assert out == ("stage: toy_map v1\ninputs:\n  numbers: reward.out\nshards: 1\ngpus: 0\n"
                   "config:\n  add: 0.1\n  mul: 2.0\n  sleep: 0.0  # the stage's default\n")
    code, out, _ = _config(toy, capsys, "--step", "dpo", "--format", "json")
    assert json.loads(out) == {"stage": "toy_map v1", "inputs": {"numbers": "reward.out"},
                               "shards": 1, "gpus": 0,
                               "config": {"add": 0.1, "mul": 1.0, "sleep": 0.0},
                               "defaults": ["mul", "sleep"]}


def test_a_sweep_prints_each_member(toy, capsys):
    code, out, _ = _config(toy, capsys, "-m", "steps.dpo.add=1,2", "--key", "steps.dpo.add")
    assert code == 0
    assert out == ("# member 0 of 2: steps.dpo.add=1\n1\n\n"
                   "# member 1 of 2: steps.dpo.add=2\n2\n")
    code, out, _ = _config(toy, capsys, "-m", "steps.dpo.add=1,2", "--step", "dpo",
                           "--format", "json")                 # one JSON document, for jq
    assert code == 0
    assert [(m["overrides"], m["config"]["config"]["add"], m["config"]["defaults"])
            for m in json.loads(out)] == [(["steps.dpo.add=1"], 1.0, ["mul", "sleep"]),
                                          (["steps.dpo.add=2"], 2.0, ["mul", "sleep"])]


def test_a_value_read_from_the_environment_is_never_printed(toy, capsys, monkeypatch):
    monkeypatch.setenv("TOY_LABEL", "s3cret-value")
    code, out, _ = _config(toy, capsys, "steps.evaluate.label=${oc.env:TOY_LABEL}")
    assert code == 0 and "s3cret" not in out
    assert yaml.safe_load(out)["steps"]["evaluate"]["label"] == "${oc.env:TOY_LABEL}"
    code, out, _ = _config(toy, capsys, "steps.evaluate.label=${oc.env:TOY_LABEL}",
                           "--step", "evaluate")
    assert code == 0 and "s3cret" not in out and "label: ${oc.env:TOY_LABEL}" in out


def test_an_unknown_key_or_step_is_one_line_with_the_closest_name(toy, capsys):
    code, _, err = _config(toy, capsys, "--key", "steps.dpo.ad")
    assert code == 2
    assert ("error: chain.yaml: no key 'steps.dpo.ad': no 'ad' under steps.dpo (did you mean "
            "'add'?); steps.dpo has: stage, inputs, add") in err
    code, _, err = _config(toy, capsys, "--key", "scale.x")
    assert code == 2 and "no 'x' under scale; scale is the value 1.0" in err
    code, _, err = _config(toy, capsys, "--step", "dop")
    assert code == 2
    assert "error: chain.yaml: no step 'dop' (did you mean 'dpo'?); steps: load, retrieve," in err
    code, _, err = _config(toy, capsys, "--step", "")   # was the whole recipe, exit 0
    assert code == 2 and "error: chain.yaml: no step ''; steps: load, retrieve," in err


def test_a_round_of_a_repeat_block_shows_what_its_template_sets(toy, capsys):
    (toy / "conf" / "rounds.yaml").write_text(
        "ragline: {imports: [tests.toy.stages]}\n"
        "steps:\n  load: {stage: toy_gen, n: 2}\n"
        "repeat:\n  round:\n    times: 2\n    first: {train: load}\n"
        "    steps:\n      train: {stage: toy_map, inputs: {numbers: train@prev}, add: 1.0}\n")
    capsys.readouterr()
    assert rag("config", str(toy / "conf/rounds.yaml"), "--step", "train_2") == 0
    assert capsys.readouterr().out == (
        "stage: toy_map v1\ninputs:\n  numbers: train_1.out\nshards: 1\ngpus: 0\n"
        "config:\n  add: 1.0\n  mul: 1.0  # the stage's default\n"
        "  sleep: 0.0  # the stage's default\n")
