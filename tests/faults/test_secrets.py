"""Values read from the environment never land on disk (issue 6 item 8; review probe 9c).

A value read with ``${oc.env:NAME}`` reaches the stage, but the saved config keeps the text
``${oc.env:NAME}``, and no file under the runs directory or the cache holds the value. Rotating
a credential (``api_key``, ``token``...) recomputes nothing; any other setting read from the
environment is keyed by its digest, so changing it recomputes the step."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.conftest import REPO, rag

RECIPE = """\
ragline:
  imports: [tests.toy.stages, tests.faults.toy_config_stages]
steps:
  load: {stage: toy_gen, n: 4}
  train:
    stage: toy_train
    inputs: {numbers: load}
    api_key: ${oc.env:RAGLINE_TEST_SECRET}
"""


def _recipe(tmp_path, monkeypatch, text: str):
    path = tmp_path / "conf" / "secret.yaml"
    path.parent.mkdir()
    path.write_text(text)
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    return path


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    return _recipe(tmp_path, monkeypatch, RECIPE)


def files_holding(value: str, *roots) -> list[str]:
    needle = value.encode()
    return [str(p) for root in roots for p in root.rglob("*")
            if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


def test_a_planted_secret_is_used_but_written_nowhere(recipe, tmp_path, monkeypatch):
    planted = f"sk-planted-{secrets.token_hex(8)}"
    monkeypatch.setenv("RAGLINE_TEST_SECRET", planted)
    runs = tmp_path / "runs"
    assert rag("run", str(recipe), runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["metrics"]["train"]["has_key"] is True  # the stage got it
    assert rag("plan", str(recipe), runs=runs) == 0
    assert files_holding(planted, runs, tmp_path / "cache") == []
    assert "${oc.env:RAGLINE_TEST_SECRET}" in (runs / "latest" / "config.yaml").read_text()


def test_rotating_a_secret_recomputes_nothing(recipe, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("RAGLINE_TEST_SECRET", "sk-first")
    assert rag("run", str(recipe), runs=runs) == 0
    monkeypatch.setenv("RAGLINE_TEST_SECRET", "sk-rotated")
    assert rag("run", str(recipe), runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert {s["cache"] for s in status["steps"].values()} == {"hit"}


def test_secrets_are_found_through_indirection():
    from omegaconf import OmegaConf

    from orchestrator.secrets import resolve_recording

    cfg = OmegaConf.create({"keys": {"openai": "${oc.env:RAGLINE_TEST_SECRET}"},
                            "steps": {"judge": {"api_key": "${keys.openai}", "header": "Bearer ${keys.openai}",
                                                "model": "m"}}})
    import os

    os.environ["RAGLINE_TEST_SECRET"] = "sk-xyz"
    try:
        resolved, found = resolve_recording(cfg)
    finally:
        del os.environ["RAGLINE_TEST_SECRET"]
    assert resolved["steps"]["judge"]["api_key"] == "sk-xyz"
    assert found == {"keys.openai": "${oc.env:RAGLINE_TEST_SECRET}",
                     "steps.judge.api_key": "${oc.env:RAGLINE_TEST_SECRET}",
                     "steps.judge.header": "Bearer ${oc.env:RAGLINE_TEST_SECRET}"}


def test_a_secret_reaches_a_worker_process_without_a_task_file_holding_it(recipe, tmp_path, monkeypatch):
    planted = f"sk-worker-{secrets.token_hex(8)}"
    monkeypatch.setenv("RAGLINE_TEST_SECRET", planted)
    runs = tmp_path / "runs"
    assert rag("run", str(recipe), "+ragline.executor={name: local, isolate: always}", runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["metrics"]["train"]["has_key"] is True
    assert files_holding(planted, runs, tmp_path / "cache") == []


TWO_LABELS = """\
ragline:
  imports: [tests.toy.stages, tests.faults.toy_config_stages]
tag: a
steps:
  load: {stage: toy_gen, n: 4}
  s1: {stage: toy_train, inputs: {numbers: load}, judge: {model: "${oc.env:RAGLINE_TEST_MODEL}"}}
  s2: {stage: toy_train, inputs: {numbers: load}, judge: {model: "run-${tag}"}}
"""


def test_a_value_that_only_contains_an_env_value_is_its_own_setting(tmp_path, monkeypatch):
    """``run-${tag}`` is not read from the environment because ``RAGLINE_TEST_MODEL=run``: each
    step gets its own value and its own key (it once shared s1's output)."""
    recipe = _recipe(tmp_path, monkeypatch, TWO_LABELS)
    monkeypatch.setenv("RAGLINE_TEST_MODEL", "run")
    runs = tmp_path / "runs"
    assert rag("run", str(recipe), runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["metrics"]["s1"]["judge"] == "run" and status["metrics"]["s2"]["judge"] == "run-a"
    assert status["steps"]["s2"]["cache"] == "miss"
    assert "model: run-a" in (runs / "latest" / "config.yaml").read_text()


def test_a_setting_read_from_the_environment_is_keyed_by_its_digest(tmp_path, monkeypatch):
    recipe = _recipe(tmp_path, monkeypatch, TWO_LABELS)
    runs = tmp_path / "runs"
    for model, cache in (("judge-first", "miss"), ("judge-second", "miss"), ("judge-second", "hit")):
        monkeypatch.setenv("RAGLINE_TEST_MODEL", model)
        assert rag("run", str(recipe), runs=runs) == 0
        status = json.loads((runs / "latest" / "status.json").read_text())
        assert status["steps"]["s1"]["cache"] == cache and status["metrics"]["s1"]["judge"] == model
        assert status["steps"]["s2"]["cache"] == ("miss" if model == "judge-first" else "hit")
    held = files_holding("judge-second", runs, tmp_path / "cache")   # the stage reports it, as
    assert held and {p.rsplit("/", 1)[1] for p in held} == {"metrics.json", "status.json"}  # metrics


def test_a_credential_written_as_a_value_is_refused_without_echoing_it(recipe, tmp_path, capsys):
    """``steps.train.api_key=sk-...`` (or ``api_key: sk-...`` in the recipe) was saved in eight
    files, the cache's ``_entry.json`` among them, and keyed (rotating it recomputed the step).
    It is refused before anything is written, in a line that names the key, not the value."""
    runs = tmp_path / "runs"
    literal = f"sk-literal-{secrets.token_hex(8)}"
    capsys.readouterr()
    assert rag("run", str(recipe), f"steps.train.api_key={literal}", runs=runs) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert "steps.train.api_key: a credential written as a value" in text
    assert "api_key: ${oc.env:API_KEY}" in text and literal not in text
    assert files_holding(literal, tmp_path) == []
    recipe.write_text(recipe.read_text().replace("${oc.env:RAGLINE_TEST_SECRET}", literal))
    assert rag("plan", str(recipe), runs=runs) == 2
    assert literal not in capsys.readouterr().err


def test_an_override_replaces_an_unset_variable_without_reading_it(recipe, tmp_path, monkeypatch):
    """The recipe reads RAGLINE_TEST_SECRET, unset here; the command line reads the key from
    another variable. Applying the override resolved the old value first: "internal error:
    InterpolationResolutionError", exit 1."""
    monkeypatch.delenv("RAGLINE_TEST_SECRET", raising=False)
    monkeypatch.setenv("RAGLINE_TEST_OTHER", "sk-other")
    override = "steps.train.api_key=${oc.env:RAGLINE_TEST_OTHER}"
    assert rag("run", str(recipe), override, runs=tmp_path / "runs") == 0


@pytest.mark.parametrize("override", ["steps.train.api_key=c2stTElUQkFTRTY0S0VZ==",
                                      "steps.train.api_key=sk-LIT,comma99"],
                         ids=["unparsable", "a-sweep"])
def test_a_key_hydra_cannot_parse_or_reads_as_a_sweep_is_not_echoed(recipe, tmp_path, capsys,
                                                                    override):
    capsys.readouterr()
    assert rag("run", str(recipe), override, runs=tmp_path / "runs") == 2
    out = capsys.readouterr()
    assert "steps.train.api_key=***" in out.err
    assert override.split("=", 1)[1].split(",")[0][:10] not in out.out + out.err


@pytest.mark.parametrize("args, shown", [
    (["+api_key=sk-top-SECRET99"], "'+api_key=***': nothing in secret.yaml reads api_key"),
    (["+judge.api_key=sk-top-SECRET99"], "'+judge.api_key=***': nothing in secret.yaml reads"),
    (["+steps.train.llm={api_key: sk-top-SECRET99}"], "'+steps.train.llm={api_key: ***}'"),
    (["+steps.train={x: {token: sk-top-SECRET99}}"], "to change it write steps.train={x: "
                                                      "{token: ***}}"),
    (["-m", "+api_key=sk-top-SECRET99,sk-two-SECRET99"], "'+api_key=***': nothing in"),
], ids=["top-level", "a-new-section", "in-a-dict", "in-a-hint", "a-sweep-member"])
def test_an_override_holding_a_key_is_not_echoed_in_any_refusal(recipe, tmp_path, capsys,
                                                                 monkeypatch, args, shown):
    """Before: a refused override was quoted as typed (key and all) where it was a new top-level
    key or section (nothing reads it), or a ``{...}`` value holding a key."""
    monkeypatch.setenv("RAGLINE_TEST_SECRET", "sk-from-the-environment")
    capsys.readouterr()
    assert rag("plan", str(recipe), *args, runs=tmp_path / "runs") == 2
    out = capsys.readouterr()
    said = " ".join((out.out + out.err).split())
    assert shown in said
    assert "SECRET99" not in said
