"""Code changes are noticed: editing a stage's body without bumping its version is flagged by
`rag plan` and `rag run`, and `ragline.cache.on_code_change` decides (warn, rerun, ignore)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.faults.faultkit import recipe, total

STAGES = '''from orchestrator.api import stage
from tests.toy.stages import Numbers


@stage("cc_add", version=1)
def cc_add(numbers: Numbers) -> Numbers:
    return [{{"id": r["id"], "x": r["x"] + {add}}} for r in numbers.rows()]
'''
RECIPE = """ragline:
  imports: [tests.toy.stages, ccstages]{settings}
steps:
  gen: {{stage: toy_gen, n: 4}}
  add: {{stage: cc_add, inputs: {{numbers: gen}}}}
  total: {{stage: toy_sum, inputs: {{numbers: add}}}}
"""
NOTE = "code changed since this was computed; `--force add` or bump the version"


def rag_cli(mods: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process (a fresh import of the edited stage module)."""
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=mods, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          timeout=300)


def project(toy: Path, settings: str = "") -> tuple[Path, Path, Path]:
    mods = toy / "mods"
    mods.mkdir()
    (mods / "ccstages.py").write_text(STAGES.format(add=1))
    return mods, recipe(toy, RECIPE.format(settings=settings)), toy / "runs"


def edit(mods: Path, add: int) -> None:
    path = mods / "ccstages.py"
    st = os.stat(path)
    path.write_text(STAGES.format(add=add))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime, whatever the clock
    for cache in (mods / "__pycache__").glob("*.pyc"):
        cache.unlink()


def plan_add(mods: Path, conf: Path, runs: Path) -> dict:
    out = rag_cli(mods, "plan", str(conf), "--runs-dir", str(runs), "--json")
    assert out.returncode == 0, out.stderr
    return {s["step"]: s for s in json.loads(out.stdout)["members"][0]["steps"]}["add"]


def run(mods: Path, conf: Path, runs: Path, *args: str) -> subprocess.CompletedProcess:
    out = rag_cli(mods, "run", str(conf), "--runs-dir", str(runs), "--no-progress", *args)
    assert out.returncode == 0, out.stderr
    return out


def test_code_change_without_version_bump_warns_by_default(toy):
    mods, conf, runs = project(toy)
    run(mods, conf, runs)
    assert total(runs) == 10.0  # (0+1+2+3) + 4*1
    edit(mods, 1000)
    step = plan_add(mods, conf, runs)
    assert (step["state"], step["cause"]) == ("FRESH", f"cached; {NOTE}")
    out = run(mods, conf, runs)
    assert f"step 'add': {NOTE}" in " ".join(out.stderr.split())
    assert total(runs) == 10.0  # warn: reused
    run(mods, conf, runs, "--force", "add")
    assert total(runs) == 4006.0
    step = plan_add(mods, conf, runs)
    assert (step["state"], step["cause"]) == ("FRESH", "cached")  # the entry has the new code


def test_code_change_is_still_flagged_when_the_dag_comes_from_its_snapshot(toy):
    """The second plan after an edit reads the DAG snapshot and imports no stage module."""
    mods, conf, runs = project(toy)
    run(mods, conf, runs)
    edit(mods, 1000)
    assert plan_add(mods, conf, runs)["cause"] == f"cached; {NOTE}"
    assert plan_add(mods, conf, runs)["cause"] == f"cached; {NOTE}"


def test_comment_and_formatting_changes_are_not_code_changes(toy):
    mods, conf, runs = project(toy)
    run(mods, conf, runs)
    path = mods / "ccstages.py"
    path.write_text(path.read_text().replace("    return", "    # a comment\n    return"))
    step = plan_add(mods, conf, runs)
    assert (step["state"], step["cause"]) == ("FRESH", "cached")


def test_on_code_change_ignore(toy):
    mods, conf, runs = project(toy, "\n  cache: {on_code_change: ignore}")
    run(mods, conf, runs)
    edit(mods, 1000)
    step = plan_add(mods, conf, runs)
    assert (step["state"], step["cause"]) == ("FRESH", "cached")


def test_on_code_change_rerun(toy):
    mods, conf, runs = project(toy, "\n  cache: {on_code_change: rerun}")
    run(mods, conf, runs)
    edit(mods, 1000)
    step = plan_add(mods, conf, runs)
    assert (step["state"], step["cause"]) == (
        "STALE", "code changed since this was computed (cache.on_code_change: rerun)")
    run(mods, conf, runs)
    assert total(runs) == 4006.0
    assert plan_add(mods, conf, runs)["cause"] == "cached"


SHARDED = '''import os

from orchestrator.api import StageContext, stage
from tests.toy.stages import Numbers


@stage("cc_add", version=1, shard_by="numbers")
def cc_add(numbers: Numbers, ctx: StageContext) -> Numbers:
    if os.environ.get("CC_FAIL") == str(ctx.shard_index):
        raise RuntimeError("this shard fails")
    return [{{"id": r["id"], "x": r["x"] + {add}}} for r in numbers.rows()]
'''


def resume_after_an_edit(toy: Path, settings: str) -> tuple[Path, Path, Path]:
    """Shard 0 of 2 computed by the old code, shard 1 failed; then the stage is edited."""
    mods, conf, runs = project(toy, settings)
    (mods / "ccstages.py").write_text(SHARDED.format(add=1))
    conf.write_text(conf.read_text().replace("inputs: {numbers: gen}}", "inputs: {numbers: gen}, shards: 2}"))
    os.environ["CC_FAIL"] = "1"
    try:
        failed = rag_cli(mods, "run", str(conf), "--runs-dir", str(runs), "--no-progress")
    finally:
        del os.environ["CC_FAIL"]
    assert failed.returncode == 1, failed.stderr
    path = mods / "ccstages.py"
    st = os.stat(path)
    path.write_text(SHARDED.format(add=1000))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    for cache in (mods / "__pycache__").glob("*.pyc"):
        cache.unlink()
    return mods, conf, runs


def test_a_resumed_step_whose_cached_shards_came_from_other_code_is_flagged(toy):
    mods, conf, runs = resume_after_an_edit(toy, "")
    step = plan_add(mods, conf, runs)
    assert (step["state"], step["cause"]) == ("MISSING", f"1/2 shards cached; its cached shards: {NOTE}")
    plan = json.loads(rag_cli(mods, "plan", str(conf), "--runs-dir", str(runs), "--json").stdout)
    assert plan["tasks_to_run"] == 2      # add's failed shard and total; add's shard 0 is reused
    out = run(mods, conf, runs)
    assert f"step 'add': its cached shards: {NOTE}" in " ".join(out.stderr.split())
    assert total(runs) == 2008.0  # warn: shard 0 (rows 0, 1) +1 is reused beside shard 1's +1000


def test_under_rerun_a_resumed_step_recomputes_the_shards_of_other_code(toy):
    mods, conf, runs = resume_after_an_edit(toy, "\n  cache: {on_code_change: rerun}")
    step = plan_add(mods, conf, runs)
    assert (step["state"], step["cause"]) == (
        "STALE", "code changed since this was computed (cache.on_code_change: rerun)")
    run(mods, conf, runs)
    assert total(runs) == 4006.0
    assert plan_add(mods, conf, runs)["cause"] == "cached"   # the next run is a no-op
