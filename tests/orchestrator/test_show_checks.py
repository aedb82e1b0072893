"""``rag show`` checks the cache entry it prints as a cache hit does (a file changed after commit
is refused and quarantined; an entry in quarantine is said to be there, not removed by gc),
says that a step still running is running, labels a shard's manifest as a run labels its tasks,
and the commands its hints print keep ``--runs-dir``. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import time
from pathlib import Path

from tests.conftest import rag
from tests.faults.faultkit import rewrite_table

RECIPE = """\
ragline:
  imports: [tests.toy.stages]
steps:
  gen: {stage: toy_gen, n: 4}
  mul: {stage: toy_map, inputs: {numbers: gen}, mul: 2.0, shards: 2}
  split: {stage: toy_split, inputs: {numbers: mul}}
  total: {stage: toy_sum, inputs: {numbers: mul}}
"""


def _words(text: str) -> str:
    return " ".join(text.split())


def _ran(toy: Path, runs: Path) -> tuple[Path, Path]:
    """(recipe, run directory) of one finished run of RECIPE."""
    recipe = toy / "conf" / "toy.yaml"
    recipe.write_text(RECIPE)
    assert rag("run", str(recipe), "--no-progress", runs=runs) == 0
    return recipe, (runs / "latest").resolve()


def _edit(path: Path, text: str) -> None:
    os.chmod(path, 0o644)
    path.write_text(text)


def test_show_refuses_an_artifact_changed_after_commit_and_then_names_the_quarantine(
        toy, capsys):
    """Before: the edited sum (99) was printed with exit 0; once `rag plan` had quarantined
    the entry, `rag show` said it was "removed by rag gc, or the cache moved"."""
    runs = toy / "runs"
    recipe, run = _ran(toy, runs)
    command = json.loads((run / "status.json").read_text())["command"]
    entry = (run / "artifacts" / "total.out").resolve()
    _edit(entry / "metrics.json", '{"sum": 99, "count": 4}')
    capsys.readouterr()
    assert rag("show", "total", runs=runs) == 1
    captured = capsys.readouterr()
    err = _words(captured.err)
    assert "99" not in captured.out
    assert (f"error: total of run {run.name} is damaged in the cache (artifact changed on disk "
            "after commit: outputs/out/metrics.json); not shown hint: recompute it by rerunning "
            f"the run's command (its other steps are reused): {command}") in err
    assert not entry.exists() and list((runs / "cache" / "quarantine").glob("*/_quarantine.json"))

    assert rag("show", "total", "--json", runs=runs) == 1   # found in quarantine, not "gc"
    err = _words(capsys.readouterr().err)
    assert (f"error: total of run {run.name} is in the cache's quarantine, not in the cache: it "
            "was found damaged (artifact changed on disk after commit: outputs/out/metrics.json)"
            ) in err
    assert "rag gc" not in err
    assert rag("run", str(recipe), "--no-progress", runs=runs) == 0   # the hint: recomputed
    capsys.readouterr()
    assert rag("show", "total", "--json", runs=runs) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["sum"] == 12.0


def test_show_checks_every_shard_of_a_sharded_artifact(toy, capsys):
    """Before: the second shard's rows, rewritten with other valid numbers, were printed, exit 0."""
    runs = toy / "runs"
    _, run = _ran(toy, runs)
    part = (run / "artifacts" / "mul.out" / "shard-00001").resolve() / "part-00000.parquet"
    rewrite_table(part, 10.0)
    capsys.readouterr()
    assert rag("show", "mul", runs=runs) == 1
    err = _words(capsys.readouterr().err)
    assert (f"error: mul of run {run.name} is damaged in the cache (artifact changed on disk "
            "after commit: outputs/out/part-00000.parquet); not shown") in err


def _as_if_running(run: Path, pid: int) -> None:
    """Make a finished run's record read as a run (process ``pid``) whose step mul is running
    and whose later steps have not started; their artifact links are removed."""
    status = json.loads((run / "status.json").read_text())
    status.update(state="running", finished=None, pid=pid, host=socket.gethostname(),
                  started=time.time())
    status["steps"]["mul"].update(state="running")
    for step in ("split", "total"):
        del status["steps"][step]
    (run / "status.json").write_text(json.dumps(status))
    shutil.rmtree(run / "artifacts" / "mul.out")
    for name in ("split.low", "split.high", "total.out"):
        (run / "artifacts" / name).unlink()


def test_show_of_a_step_still_running_says_so_and_points_at_status(toy, capsys):
    """Before: "run … has no artifact 'mul'" with the hint "artifacts: gen"."""
    runs = toy / "runs"
    _, run = _ran(toy, runs)
    _as_if_running(run, os.getpid())   # this process: alive
    capsys.readouterr()
    assert rag("show", "mul", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert (f"error: step 'mul' is still running in run {run.name}: its output is not written "
            f"yet hint: rag status --runs-dir {runs} shows its progress") in err
    assert rag("show", "total", runs=runs) == 2
    assert (f"error: step 'total' has not started yet in run {run.name}, which is still running"
            ) in _words(capsys.readouterr().err)
    _as_dead = json.loads((run / "status.json").read_text())
    _as_dead["pid"] = 2 ** 22 + 7   # above pid_max: no such process, the run was killed
    (run / "status.json").write_text(json.dumps(_as_dead))
    assert rag("show", "mul", runs=runs) == 2
    assert (f"error: step 'mul' interrupted in run {run.name}: it has no output"
            ) in _words(capsys.readouterr().err)


def test_show_labels_a_shards_manifest_as_the_run_labels_its_tasks(toy, capsys):
    """Before: "manifest (shard 1 of 2)", 1-based, where the run prints mul[1/2] for the
    second of two shards (and its log is mul.shard-00001.log)."""
    runs = toy / "runs"
    _ran(toy, runs)
    capsys.readouterr()
    assert rag("show", "mul", runs=runs) == 0
    out = capsys.readouterr().out
    assert "manifest (of the first shard, mul[0/2]):" in out and "shard 1 of" not in out


def _hint(err: str) -> list[str]:
    """The arguments of the command a hint prints (``hint: … rag show …``), after ``rag``."""
    return shlex.split(err.split("hint: ")[1].split(": ")[-1])[1:]


def test_the_commands_show_suggests_keep_the_runs_dir_and_work_as_printed(toy, capsys):
    """Before: the hints said `rag show split.high` and `rag show total --run toy/…`, which
    read ./runs and failed with "not found" (exit 2)."""
    runs = toy / "my runs"   # a space: the hint quotes it
    recipe, good = _ran(toy, runs)
    capsys.readouterr()
    assert rag("show", "split", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert f"hint: rag show split.high --runs-dir '{runs}'" in err
    assert rag(*_hint(err)) == 0

    assert rag("run", str(recipe), "steps.gen.n=-1", "--no-progress", runs=runs) != 0
    capsys.readouterr()
    assert rag("show", "total", runs=runs) == 2   # the latest run stopped early
    err = _words(capsys.readouterr().err)
    assert (f"hint: the newest run that has it: rag show total --run toy/{good.name} "
            f"--runs-dir '{runs}'") in err
    assert rag(*_hint(err)) == 0


def _rot(path: Path) -> None:
    """Bit rot: the bytes changed, the size and mtime kept, so only reading the file tells."""
    st = path.stat()
    os.chmod(path, 0o644)
    path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_damage_only_reading_finds_is_one_line_whose_fix_keeps_the_runs_dir(toy, capsys):
    """The stat check passes; reading the file fails. Before: the hint said `rag run RECIPE
    --force total`, which reads ./runs and its cache, not the runs directory given."""
    runs = toy / "my runs"
    _, run = _ran(toy, runs)
    for step, file in (("total", "metrics.json"), ("gen", "part-00000.parquet")):
        path = (run / "artifacts" / f"{step}.out").resolve() / file
        _rot(path)
        capsys.readouterr()
        assert rag("show", step, runs=runs) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[0].startswith(f"error: {path}: ") and lines[0].endswith(
            "; the cached artifact is damaged")
        assert lines[1:] == [f"  hint: recompute it with rag run RECIPE --force {step} "
                             f"--runs-dir '{runs}'"]
