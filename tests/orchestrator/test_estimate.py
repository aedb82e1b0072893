"""``rag plan`` and ``rag run`` say how long the steps to run took the last time they ran here
(``orchestrator/estimate.py``), from the seconds the runner keeps with each step's history."""

from __future__ import annotations

import json

from tests.conftest import rag


def test_plan_and_run_estimate_from_the_last_runs_and_name_steps_that_never_ran(toy, capsys):
    recipe, runs = str(toy / "conf/chain.yaml"), toy / "runs"
    assert rag("run", recipe, "steps.retrieve.sleep=1.0", "--no-progress", runs=runs) == 0
    (history,) = (runs / ".state").glob("chain.*.json")
    seconds = {step: entry["seconds"] for step, entry in json.loads(history.read_text()).items()}
    assert set(seconds) == {"load", "retrieve", "aggregate", "rerank", "label", "convert", "sft",
                            "sample", "reward", "dpo", "evaluate"}
    assert seconds["retrieve"] >= 1.0            # each shard sleeps 1 s: a lower bound only

    capsys.readouterr()   # what a change of retrieve would take: retrieve and everything after it
    assert rag("plan", recipe, "steps.retrieve.mul=3", "steps.retrieve.sleep=1.0", "--json",
               runs=runs) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["never_ran_here"] == []
    assert out["last_seconds"] == round(sum(v for k, v in seconds.items() if k != "load"), 1)

    assert rag("plan", recipe, "+steps.extra={stage: toy_sum, inputs: {numbers: dpo}}",
               "steps.retrieve.mul=3", "steps.retrieve.sleep=1.0", runs=runs) == 0
    last = " ".join(capsys.readouterr().out.split()[-16:])   # extra: new to this runs dir
    assert "to run; about" in last and "by their last runs here, more for extra (never ran here)" in last

    assert rag("run", recipe, "steps.retrieve.mul=3", "steps.retrieve.sleep=1.0",
               "--no-progress", runs=runs) == 0
    captured = capsys.readouterr()
    first = (captured.err + captured.out).splitlines()[0]   # before the first step's line
    assert first.startswith("10 step(s) to run: about ") and first.endswith(" by their last runs here")

    assert rag("plan", recipe, "steps.retrieve.mul=3", "steps.retrieve.sleep=1.0", runs=runs) == 0
    assert capsys.readouterr().out.rstrip().endswith("0 to run")   # nothing to estimate


def test_a_sweep_is_sized_before_its_first_member_with_shared_steps_once(toy, capsys):
    recipe, runs = str(toy / "conf/chain.yaml"), toy / "runs"
    assert rag("run", recipe, "steps.retrieve.sleep=1.0", "--no-progress", runs=runs) == 0
    (history,) = (runs / ".state").glob("chain.*.json")
    seconds = {step: entry["seconds"] for step, entry in json.loads(history.read_text()).items()}
    capsys.readouterr()
    assert rag("plan", recipe, "-m", "steps.retrieve.sleep=1.0", "steps.retrieve.mul=3,4",
               "--json", runs=runs) == 0   # two members: everything after load, twice
    once = sum(v for k, v in seconds.items() if k != "load")
    assert json.loads(capsys.readouterr().out)["last_seconds"] == round(2 * once, 1)
    assert rag("plan", recipe, "-m", "steps.retrieve.sleep=1.0", "steps.dpo.add=0.2,0.3",
               "--json", runs=runs) == 0   # two members share everything before dpo
    assert json.loads(capsys.readouterr().out)["last_seconds"] == round(
        2 * (seconds["dpo"] + seconds["evaluate"]), 1)

    assert rag("run", recipe, "-m", "steps.retrieve.sleep=1.0", "steps.retrieve.mul=3,4",
               "--no-progress", runs=runs) == 0
    header = next(line for line in capsys.readouterr().err.splitlines()
                  if line.startswith("sweep: 2 members -> "))
    assert header.endswith(" by their last runs here") and "; about " in header
