"""What a failed run records and what its resume recomputes: the shards a ``--from``/``--force``
run recomputed before a sibling shard failed are kept by its resume command; a step refused for
an empty input is recorded like any failed step and names the producer's log; a step skipped
behind a skipped step names the failure that caused it."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

from tests.conftest import REPO, counts, rag

TOY = """ragline:
  imports: [tests.toy.stages]
scale: 2
steps:
  gen: {stage: toy_gen, n: 4}
  mul: {stage: toy_map, inputs: {numbers: gen}, mul: "${scale}", shards: 2}
  split: {stage: toy_split, inputs: {numbers: mul}}
  total: {stage: toy_sum, inputs: {numbers: mul}}
  low: {stage: toy_map, inputs: {numbers: split.low}}
"""


def _recipe(toy) -> str:
    recipe = toy / "conf" / "toy.yaml"
    recipe.write_text(TOY)
    return str(recipe)


def _out(capsys) -> str:
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())


def _status(runs) -> dict:
    return json.loads((runs / "latest" / "status.json").read_text())


def _mul(count) -> dict[str, int]:
    """How many times each shard of step mul executed."""
    return {k: n for k, n in counts(count).items() if k.startswith("mul:")}


def _resume(out: str) -> list[str]:
    """The arguments of the command a failed run's closing lines say resumes it."""
    return shlex.split(out.split("resume with: ")[1])[1:]


def test_the_resume_of_a_failed_from_run_keeps_the_shards_it_recomputed(toy, monkeypatch,
                                                                         capsys):
    """Before: the resume (the same `--from mul`) recomputed both shards of mul, one of which
    the failed run had just recomputed and committed."""
    recipe, runs, count = _recipe(toy), toy / "runs", toy / "count.txt"
    assert rag("run", recipe, runs=runs) == 0
    monkeypatch.setenv("TOY_COUNT_FILE", str(count))
    monkeypatch.setenv("TOY_FAIL", "mul:1")
    assert rag("run", recipe, "--from", "mul", runs=runs) == 1
    assert _mul(count) == {"mul:0": 1, "mul:1": 1}
    again = _resume(_out(capsys))
    assert again == ["run", recipe, "--runs-dir", str(runs), "--from", "mul"]

    count.unlink()
    monkeypatch.delenv("TOY_FAIL")
    assert rag(*again) == 0
    assert _mul(count) == {"mul:1": 1}     # shard 0 is the one the failed run recomputed
    out = _out(capsys)
    assert "mul: 1 of 2 shards kept: run " in out
    steps = _status(runs)["steps"]
    assert steps["mul"]["cache"] == "partial" and steps["mul"]["cached_shards"] == 1
    assert steps["total"]["state"] == "done"   # downstream of --from: still recomputed

    count.unlink()   # only the run that resumes a failed try keeps what the try recomputed
    assert rag("run", recipe, "--from", "mul", runs=runs) == 0
    assert _mul(count) == {"mul:0": 1, "mul:1": 1}


def test_a_second_failure_keeps_what_both_tries_recomputed(toy, monkeypatch, capsys):
    """Four shards: the first try recomputes 0 and 1, the second 2, the third only 3."""
    recipe, runs, count = _recipe(toy), toy / "runs", toy / "count.txt"
    recipe_text = TOY.replace("shards: 2", "shards: 4")
    (toy / "conf" / "toy.yaml").write_text(recipe_text)
    assert rag("run", recipe, runs=runs) == 0
    monkeypatch.setenv("TOY_COUNT_FILE", str(count))
    monkeypatch.setenv("TOY_FAIL", "mul:2,mul:3")
    assert rag("run", recipe, "--force", "mul", runs=runs) == 1
    again = _resume(_out(capsys))
    assert again[-2:] == ["--force", "mul"]
    count.unlink()
    monkeypatch.setenv("TOY_FAIL", "mul:3")
    assert rag(*again) == 1
    assert _mul(count) == {"mul:2": 1, "mul:3": 1}
    count.unlink()
    monkeypatch.delenv("TOY_FAIL")
    assert rag(*_resume(_out(capsys))) == 0
    assert _mul(count) == {"mul:3": 1}


def test_the_resume_of_an_interrupted_force_keeps_the_shards_it_recomputed(toy):
    """Before: rerunning the command after SIGTERM recomputed the shard the run had finished."""
    recipe, runs, count = _recipe(toy), toy / "runs", toy / "count.txt"
    assert rag("run", recipe, runs=runs) == 0
    command = [sys.executable, "-m", "orchestrator", "run", recipe, "--runs-dir", str(runs),
               "--force", "mul", "-j", "1", "steps.mul.sleep=3"]   # one shard after the other
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOY_COUNT_FILE": str(count)}
    proc = subprocess.Popen(command, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    end = time.time() + 120
    while "mul:1" not in counts(count):   # shard 0 is committed
        assert time.time() < end and proc.poll() is None, "mul's second shard never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    assert "terminated (SIGTERM): finished steps are cached" in out, out
    count.unlink()   # the same command again: it resumes the run it interrupted
    again = subprocess.run(command, cwd=REPO, env=env, text=True, capture_output=True,
                           timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _mul(count) == {"mul:1": 1}


def test_a_step_refused_for_an_empty_input_is_recorded_like_a_failed_step(toy, capsys):
    """Before: its record had no stage and no shards, and the message said "that step's log"
    without naming it."""
    recipe, runs = _recipe(toy), toy / "runs"
    assert rag("run", recipe, "steps.gen.n=0", runs=runs) == 2
    out = _out(capsys)
    mul = _status(runs)["steps"]["mul"]
    assert mul["state"] == "failed" and mul["stage"] == "toy_map" and mul["shards"] == 2
    assert len(mul["keys"]) == 2
    gen_log = _status(runs)["steps"]["gen"]["log"]
    assert gen_log.endswith("logs/gen.log")
    assert (f"✗ mul failed: step 'mul' input 'numbers' is empty (0 rows) from 'gen.out'; check "
            f"that step's log ({gen_log})") in out
    assert mul["error"].endswith(f"check that step's log ({gen_log}) and its inputs")


def test_a_step_skipped_behind_a_skipped_step_names_the_failure(toy, monkeypatch, capsys):
    """Before: "- low skipped (upstream 'split' failed)", though split was skipped, not failed."""
    recipe, runs = _recipe(toy), toy / "runs"
    monkeypatch.setenv("TOY_FAIL", "mul:1")
    assert rag("run", recipe, runs=runs) == 1
    out = _out(capsys)
    assert "- split skipped (upstream 'mul' failed)" in out
    assert "- low skipped (upstream 'split' skipped because 'mul' failed)" in out
    steps = _status(runs)["steps"]
    assert steps["split"]["reason"] == "upstream 'mul' failed"
    assert steps["low"]["reason"] == "upstream 'split' skipped because 'mul' failed"
