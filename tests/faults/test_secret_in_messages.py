"""A value read from the environment that a step's config refuses is named by the text that
reads it (``${oc.env:NAME}``), never quoted: such a value may be a password inside a URL
(secrets audit F16: ``base_url: 'proxyuser:PW@host/v1' is not an http(s) URL``)."""

from __future__ import annotations

import secrets

from tests.conftest import rag
from tests.faults.test_secrets import RECIPE as SECRET_RECIPE
from tests.faults.test_secrets import _recipe

RECIPE = SECRET_RECIPE.replace("api_key: ${oc.env:RAGLINE_TEST_SECRET}",
                               "lr: ${oc.env:RAGLINE_TEST_LR}")


def test_a_refused_value_from_the_environment_is_named_not_quoted(tmp_path, monkeypatch, capsys):
    recipe = _recipe(tmp_path, monkeypatch, RECIPE)
    planted = f"notanumber-{secrets.token_hex(8)}"
    monkeypatch.setenv("RAGLINE_TEST_LR", planted)
    capsys.readouterr()
    assert rag("plan", str(recipe), runs=tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "steps.train.lr: expected a number, got '${oc.env:RAGLINE_TEST_LR}'" in err
    assert planted not in err
    # a backslash and both quotes: messages quote the value escaped (repr)
    odd = f"pa\\ss'wo\"rd-{secrets.token_hex(4)}"
    monkeypatch.setenv("RAGLINE_TEST_LR", odd)
    assert rag("plan", str(recipe), runs=tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "${oc.env:RAGLINE_TEST_LR}" in err and odd[-8:] not in err
    # the same value given on the command line
    monkeypatch.setenv("RAGLINE_TEST_LR", "0.1")
    monkeypatch.setenv("RAGLINE_TEST_OTHER", planted)
    assert rag("plan", str(recipe), "steps.train.lr=${oc.env:RAGLINE_TEST_OTHER}",
               runs=tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "got '${oc.env:RAGLINE_TEST_OTHER}'" in err and planted not in err


def test_a_worker_without_the_variable_says_which_one(monkeypatch):
    """A worker on a node whose environment lacks a variable the step reads: one line naming
    it, not OmegaConf's "InterpolationResolutionError: KeyError raised while resolving"."""
    import pytest

    from orchestrator.errors import ConfigError
    from orchestrator.secrets import reveal

    monkeypatch.delenv("RAGLINE_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError, match=r"^judge.api_key: environment variable "
                                          r"RAGLINE_TEST_UNSET is not set where this step runs"):
        reveal({"judge": {"api_key": ""}}, {"judge.api_key": "${oc.env:RAGLINE_TEST_UNSET}"})


def test_a_text_that_fails_for_another_reason_does_not_blame_a_set_variable():
    import pytest

    from orchestrator.errors import ConfigError
    from orchestrator.secrets import reveal

    with pytest.raises(ConfigError) as err:
        reveal({"a": ""}, {"a": "${oc.env:HOME}/x/${nowhere}"})
    assert "cannot be read again" in err.value.message and "not set" not in err.value.message


def test_a_literal_dollar_brace_stays_literal_on_the_worker(monkeypatch):
    """``\\${...}`` in a recipe is a literal ``${...}``; the text a worker resolves again kept it
    live: ``${oc.env:TAG}-\\${oc.env:PW}`` resolved the password there."""
    from omegaconf import OmegaConf

    from orchestrator.secrets import resolve_recording, reveal

    monkeypatch.setenv("RAGLINE_TEST_TAG", "t1")
    monkeypatch.setenv("RAGLINE_TEST_PW", "pw-value")
    cfg = OmegaConf.create({"a": "${oc.env:RAGLINE_TEST_TAG}-\\${oc.env:RAGLINE_TEST_PW}"})
    resolved, found = resolve_recording(cfg)
    assert resolved["a"] == "t1-${oc.env:RAGLINE_TEST_PW}"
    assert reveal({"a": ""}, found) == {"a": "t1-${oc.env:RAGLINE_TEST_PW}"}


def test_unsaid_replaces_the_longest_value_first_and_once():
    from orchestrator.secrets import unsaid

    message = "got '/data/ckpt-long1' (ckpt-long1)"
    config = {"a": "/data/ckpt-long1", "b": "ckpt-long1"}
    texts = {"a": "${oc.env:ROOT}/${oc.env:CKPT}", "b": "${oc.env:CKPT}"}
    assert unsaid(message, config, texts) == "got '${oc.env:ROOT}/${oc.env:CKPT}' (${oc.env:CKPT})"
