"""A damaged step history (``runs/.state/<recipe>.<hash>.json``) is a one-line warning naming the
file, never a crash: the cache is still used, a changed step plans as MISSING instead of STALE,
and the next run rewrites the file."""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import rag


def _history(runs):
    files = list((runs / ".state").glob("*.json"))
    assert len(files) == 1, files
    return files[0]


def _plan(capsys, conf, runs, *overrides) -> dict[str, tuple[str, str]]:
    capsys.readouterr()
    assert rag("plan", str(conf), *overrides, "--json", runs=runs) == 0
    steps = json.loads(capsys.readouterr().out)["members"][0]["steps"]
    return {s["step"]: (s["state"], s["cause"]) for s in steps}


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("damage, why", [
    (lambda text: text[: len(text) // 2], "(JSONDecodeError: "),       # a truncated file
    (lambda text: "[]", "(not a mapping of step -> {key, material})"),  # valid JSON, wrong shape
    (lambda text: '{"sft": "abc"}', "(not a mapping of step -> {key, material})"),
    (lambda text: "\udcff", "(UnicodeDecodeError: "),                   # not UTF-8
], ids=["truncated", "list", "bad-record", "not-utf8"])
def test_damaged_history_warns_once_naming_the_file_and_plan_and_run_still_work(
        toy, capsys, caplog, damage, why):
    runs, conf = toy / "runs", toy / "conf/chain.yaml"
    assert rag("run", str(conf), runs=runs) == 0
    path = _history(runs)
    assert _plan(capsys, conf, runs, "steps.sft.add=5")["sft"] == ("STALE", "config: add 1.0 -> 5.0")
    path.write_bytes(damage(path.read_text()).encode("utf-8", "surrogateescape"))

    caplog.clear()
    steps = _plan(capsys, conf, runs, "steps.sft.add=5")
    warned = _warnings(caplog)
    assert len(warned) == 1
    assert warned[0].startswith(f"{path} is damaged {why}")
    assert warned[0].endswith("; cached steps are still reused, but a step to recompute is planned "
                              "as MISSING (never computed) instead of STALE with its cause until "
                              "the next run rewrites the file")
    assert "\n" not in warned[0]
    assert steps["convert"] == ("FRESH", "cached")         # the cache is still used
    assert steps["sft"] == ("MISSING", "never computed")   # no history to explain it with

    caplog.clear()
    assert rag("run", str(conf), runs=runs) == 0           # a no-op run rewrites the history
    assert len(_warnings(caplog)) == 1
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert {s["cache"] for s in status["steps"].values()} == {"hit"}
    caplog.clear()
    assert _plan(capsys, conf, runs, "steps.sft.add=5")["sft"] == ("STALE", "config: add 1.0 -> 5.0")
    assert _warnings(caplog) == []


def test_missing_history_is_silent(toy, capsys, caplog):
    runs, conf = toy / "runs", toy / "conf/chain.yaml"
    caplog.clear()
    assert _plan(capsys, conf, runs)["load"] == ("MISSING", "never computed")
    assert _warnings(caplog) == []
