"""The machine, not the recipe, is wrong: a cache or runs directory that cannot be written, a full
disk, bad input found by a step, a bad -j, an unset API key, a closed stdout. Each is one line
naming the path, key or step and what to do, exit 2 when the user must fix something before a
rerun can succeed, and nothing computed is lost.

Read-only and full disks are real where the machine allows (root with mount namespaces: a
read-only bind mount, a small tmpfs); the same paths are also exercised with a monkeypatched
errno, so a machine without mounts still checks them.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, rag
from tests.faults.faultkit import needs_mount, run_mounted

CHAIN = """ragline:
  imports: [tests.toy.stages]
steps:
  gen: {stage: toy_gen, n: 8}
  mul: {stage: toy_map, inputs: {numbers: gen}, mul: 2.0}
  total: {stage: toy_sum, inputs: {numbers: mul}}
"""

FROM_FILE = """ragline:
  imports: [tests.toy.stages]
  executor: {name: local, isolate: %s}
data:
  numbers: %s
sources:
  numbers: ${data.numbers}
steps:
  load: {stage: toy_gen, inputs: {path: numbers}}
  other: {stage: toy_gen, n: 3}
  mul: {stage: toy_map, inputs: {numbers: other}}
"""

CACHE_HINT = "hint: set RAGLINE_CACHE to a writable directory"
RUNS_HINT = "hint: point --runs-dir (or ragline.runs_dir in the recipe) at a writable directory"
FULL_HINT = "free space (e.g. rag gc) and rerun: finished steps are kept"


def _recipe(tmp: Path, text: str = CHAIN, name: str = "c.yaml") -> Path:
    path = tmp / "conf" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _err(capsys) -> str:
    """stderr, its lines joined (rich wraps long lines)."""
    err = " ".join(capsys.readouterr().err.split())
    assert "internal error" not in err and "Traceback" not in err
    return err


def _status(runs: Path) -> dict:
    return json.loads((runs / "latest" / "status.json").read_text())


def _read_only(path: Path) -> str:
    return f"mount --bind {path} {path} && mount -o remount,bind,ro {path}"


# ------------------------------------------------------------------ the cache directory


def test_cache_at_a_file_is_refused_before_any_step_without_a_damage_warning(toy, capsys,
                                                                              monkeypatch):
    """Audit item 3: it warned 'sources.json is damaged', then failed the first step."""
    a_file = toy / "a_file"
    a_file.write_text("")
    monkeypatch.setenv("RAGLINE_CACHE", str(a_file))
    assert rag("run", str(_recipe(toy)), runs=toy / "runs") == 2
    err = _err(capsys)
    assert f"error: cache directory {a_file} is not writable (it is a file, not a directory)" in err
    assert CACHE_HINT in err
    assert "damaged" not in err and "running stage" not in err
    status = _status(toy / "runs")   # the record says why nothing ran
    assert status["state"] == "failed" and "is not writable" in status["error"]


def test_plan_check_refuses_a_cache_a_run_would_refuse_and_leaves_nothing(toy, capsys,
                                                                           monkeypatch):
    """Before: `rag plan --check` exited 0 where `rag run` stopped at once."""
    (toy / "a_file").write_text("")
    monkeypatch.setenv("RAGLINE_CACHE", str(toy / "a_file" / "cache"))
    assert rag("plan", str(_recipe(toy)), "--check", runs=toy / "runs") == 2
    captured = capsys.readouterr()
    out = " ".join((captured.out + captured.err).split())
    assert (f"problem: cache directory {toy / 'a_file' / 'cache'} is not writable (cannot create "
            f"it: {toy / 'a_file'} is a file); set RAGLINE_CACHE to a writable directory") in out
    assert "damaged" not in out
    monkeypatch.setenv("RAGLINE_CACHE", str(toy / "new" / "cache"))
    assert rag("plan", str(_recipe(toy)), "--check", runs=toy / "runs") == 0
    assert not (toy / "new").exists()   # the probe's folders are gone again


def test_cache_under_a_file_names_the_file_in_the_way(toy, capsys, monkeypatch):
    (toy / "a_file").write_text("")
    monkeypatch.setenv("RAGLINE_CACHE", str(toy / "a_file" / "cache"))
    assert rag("run", str(_recipe(toy)), runs=toy / "runs") == 2
    err = _err(capsys)
    assert (f"error: cache directory {toy / 'a_file' / 'cache'} is not writable (cannot create "
            f"it: {toy / 'a_file'} is a file)") in err
    assert CACHE_HINT in err


def _probe_fails(monkeypatch, code: int, where: Path) -> None:
    """No file can be created in directory ``where``, as on a read-only mount (EROFS) or in a
    directory of another user (EACCES)."""
    import tempfile

    real = tempfile.mkstemp

    def refused(*args, dir=None, **kwargs):
        if Path(dir) == where:
            raise OSError(code, os.strerror(code))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refused)


def test_unwritable_cache_is_refused_before_any_step(toy, capsys, monkeypatch):
    cache = toy / "runs" / "cache"
    _probe_fails(monkeypatch, errno.EROFS, cache)
    assert rag("run", str(_recipe(toy)), runs=toy / "runs") == 2
    err = _err(capsys)
    assert f"error: cache directory {cache} is not writable (Read-only file system)" in err
    assert CACHE_HINT in err and "running stage" not in err
    assert not (cache / "objects").exists()


def test_default_cache_hint_says_where_the_cache_is(toy, capsys, monkeypatch):
    """Without RAGLINE_CACHE the cache is <runs dir>/cache: the hint says so."""
    monkeypatch.delenv("RAGLINE_CACHE")
    runs = toy / "runs"
    _probe_fails(monkeypatch, errno.EACCES, runs / "cache")
    assert rag("run", str(_recipe(toy)), runs=runs) == 2
    err = _err(capsys)
    assert f"error: cache directory {runs / 'cache'} is not writable (Permission denied)" in err
    assert (f"hint: the cache is {runs / 'cache'}: point --runs-dir (or ragline.runs_dir in the "
            "recipe) at a writable directory, or set RAGLINE_CACHE to one") in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod'ed directory anyway")
def test_read_only_directory_as_cache_is_refused(toy, capsys, monkeypatch):
    cache = toy / "ro-cache"
    cache.mkdir()
    cache.chmod(0o555)
    monkeypatch.setenv("RAGLINE_CACHE", str(cache))
    try:
        assert rag("run", str(_recipe(toy)), runs=toy / "runs") == 2
    finally:
        cache.chmod(0o755)
    assert f"error: cache directory {cache} is not writable (Permission denied)" in _err(capsys)


@needs_mount
def test_read_only_mounted_cache_is_refused_and_still_serves_a_cached_run(toy):
    recipe = _recipe(toy)
    cache = toy / "runs" / "cache"
    cache.mkdir(parents=True)
    out = run_mounted(toy, _read_only(cache), str(recipe), "--runs-dir", str(toy / "runs"))
    assert out.returncode == 2
    assert f"error: cache directory {cache} is not writable (Read-only file system)" in out.err
    assert CACHE_HINT in out.err and "running stage" not in out.err

    assert rag("run", str(recipe), runs=toy / "runs") == 0   # now all cached
    out = run_mounted(toy, _read_only(cache), str(recipe), "--runs-dir", str(toy / "runs"))
    assert out.returncode == 0, out.stderr   # a read-only cache serves what it holds
    assert "✓ total cached" in out.err
    out = run_mounted(toy, _read_only(cache), str(recipe), "steps.mul.mul=3",
                       "--runs-dir", str(toy / "runs"))
    assert out.returncode == 2 and "is not writable (Read-only file system)" in out.err


# ------------------------------------------------------------------ the runs directory


@pytest.mark.parametrize("where, why", [
    ("a_file", "it is a file, not a directory"),
    ("a_file/runs", "cannot create it: {toy}/a_file is a file"),
])
def test_runs_dir_that_cannot_be_a_directory_is_refused(toy, capsys, where, why):
    """Audit item 2: 'internal error: NotADirectoryError', exit 1."""
    (toy / "a_file").write_text("")
    runs = toy / where
    assert rag("run", str(_recipe(toy)), runs=runs) == 2
    err = _err(capsys)
    assert f"error: runs directory {runs} is not writable ({why.format(toy=toy)})" in err
    assert RUNS_HINT in err


@needs_mount
def test_read_only_mounted_runs_dir_is_refused(toy):
    ro = toy / "ro"
    ro.mkdir()
    out = run_mounted(toy, _read_only(ro), str(_recipe(toy)), "--runs-dir", str(ro / "runs"),
                       cache=toy / "cache")
    assert out.returncode == 2
    assert (f"error: runs directory {ro / 'runs'} is not writable (cannot create it: Read-only "
            "file system)") in out.err and RUNS_HINT in out.err


# ------------------------------------------------------------------ a full disk


def test_full_disk_in_a_step_names_the_cache_and_keeps_finished_steps(toy, capsys, monkeypatch):
    import orchestrator.task as task

    real = task.write_artifact

    def full_for_mul(value, cls, path, name, key):
        if name.startswith("mul."):   # pyarrow's own words for ENOSPC
            raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No "
                                        "space left on device")
        return real(value, cls, path, name, key)

    monkeypatch.setattr(task, "write_artifact", full_for_mul)
    recipe, runs = _recipe(toy), toy / "runs"
    assert rag("run", str(recipe), runs=runs) == 1
    err = _err(capsys)
    cache = toy / "runs" / "cache"
    assert (f"✗ mul failed: cache directory {cache}: the disk is full (No space left on device); "
            f"{FULL_HINT}") in err
    assert "- total skipped (upstream 'mul' failed)" in err
    monkeypatch.setattr(task, "write_artifact", real)
    assert rag("run", str(recipe), runs=runs) == 0
    assert "✓ gen cached" in _err(capsys)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full (No space left on "
                                                        "device)"),
                                         (errno.EDQUOT, "the disk quota is exceeded (Disk quota "
                                                        "exceeded)")])
def test_full_disk_message_names_the_file_outside_the_cache(code, words):
    from orchestrator.task import one_line

    inside = OSError(code, os.strerror(code), "/c/tmp/k/out.parquet")
    assert one_line(inside, "/c") == f"cache directory /c: {words}; {FULL_HINT}"
    outside = OSError(code, os.strerror(code), "/scratch/x.bin")
    assert one_line(outside, "/c") == f"/scratch/x.bin: {words}; {FULL_HINT}"
    try:   # a stage that wraps it still gets the same line
        try:
            raise inside
        except OSError as e:
            raise RuntimeError("could not save the checkpoint") from e
    except RuntimeError as wrapped:
        assert one_line(wrapped, "/c") == f"cache directory /c: {words}; {FULL_HINT}"


def test_full_disk_outside_a_step_is_one_line_not_an_internal_error(toy, capsys, monkeypatch):
    """The run record itself cannot be written: the disk is named, no traceback."""
    from orchestrator.rundir import RunDir

    def full(self, config, text=None):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path / "config.yaml"))

    monkeypatch.setattr(RunDir, "write_config", full)
    assert rag("run", str(_recipe(toy)), runs=toy / "runs") == 1
    err = _err(capsys)
    runs = toy / "runs"
    assert f"error: runs directory {runs}: the disk is full (No space left on device) writing " \
        f"{runs}/" in err and f"/config.yaml; {FULL_HINT}" in err   # cache on that disk: gc


@needs_mount
def test_full_mounted_disk_in_a_sharded_step_and_at_the_start(toy):
    recipe = _recipe(toy, """ragline:
  imports: [tests.toy.stages]
  executor: {name: local, max_parallel: 2}
steps:
  gen: {stage: toy_gen, n: 200}
  blob: {stage: toy_blob, inputs: {numbers: gen}, shards: 2}
  read: {stage: toy_read_blob, inputs: {blob: blob}}
""")
    cache, runs = toy / "runs" / "cache", toy / "runs"
    cache.mkdir(parents=True)
    # 256 KiB: gen's table fits; 200 one-row files (a page each) do not
    tmpfs = f"mount -t tmpfs -o size=256k tmpfs {cache}"
    out = run_mounted(toy, tmpfs, str(recipe), "--runs-dir", str(runs))
    assert out.returncode == 1, out.stderr
    assert (f"failed: cache directory {cache}: the disk is full (No space left on device); "
            f"{FULL_HINT}") in out.err
    assert "✓ gen done" in out.err and "resume with:" in out.err

    filled = f"{tmpfs} && (dd if=/dev/zero of={cache}/fill bs=4k 2>/dev/null || true)"
    out = run_mounted(toy, filled, str(recipe), "--runs-dir", str(runs))
    assert out.returncode == 2
    assert (f"error: cache directory {cache} is not writable (No space left on device) hint: "
            f"{FULL_HINT}") in out.err and "running stage" not in out.err


# ------------------------------------------------------------------ bad input found by a step


@pytest.mark.parametrize("isolate", ["never", "always"])   # in this process; in a worker
def test_bad_input_in_a_step_exits_2_and_says_to_fix_it(toy, capsys, isolate):
    """Audit item 4: exit 1 and 'resume with' the same command, which fails the same way."""
    data = toy / "numbers.txt"
    data.write_text("1\nabc\n")
    recipe = _recipe(toy, FROM_FILE % (isolate, data))
    assert rag("run", str(recipe), runs=toy / "runs") == 2
    err = _err(capsys)
    assert f"✗ load failed: {data}:2: expected a number, got 'abc'" in err
    assert ("the run failed on bad input: fix the input or setting named above, then rerun the "
            "same command (with the setting changed, if it is one): finished steps are cached"
            ) in err
    assert "resume with" not in err
    assert "✓ mul done" in err   # the independent branch ran and is kept
    data.write_text("1\n2\n")
    assert rag("run", str(recipe), runs=toy / "runs") == 0
    assert "✓ mul cached" in _err(capsys)


def test_bad_input_and_a_crash_together_keep_the_resume_wording(toy, capsys, monkeypatch):
    data = toy / "numbers.txt"
    data.write_text("abc\n")
    monkeypatch.setenv("TOY_FAIL", "mul:0")
    assert rag("run", str(_recipe(toy, FROM_FILE % ("always", data))), runs=toy / "runs") == 1
    err = _err(capsys)
    assert "✗ mul failed: RuntimeError: toy failure in mul:0" in err
    assert "the run failed. Finished steps are cached; resume with:" in err


def test_a_crash_alone_keeps_exit_1(toy, capsys, monkeypatch):
    monkeypatch.setenv("TOY_FAIL", "mul:0")
    assert rag("run", str(_recipe(toy)), runs=toy / "runs") == 1
    assert "resume with:" in _err(capsys)


def test_worker_result_carries_bad_input():
    from orchestrator.executors.base import Failed, result_from_json, result_to_json

    assert result_from_json(result_to_json(Failed("x", bad_input=True))).bad_input is True
    assert result_from_json(result_to_json(Failed("x"))).bad_input is False
    assert result_from_json({"state": "failed", "message": "old worker"}).bad_input is False


# ------------------------------------------------------------------ -j


@pytest.mark.parametrize("jobs, words", [("0", "must be >= 1, got 0"),
                                         ("-3", "must be >= 1, got -3"),
                                         ("x", "expected a whole number, got 'x'")])
def test_jobs_below_one_is_refused(toy, capsys, jobs, words):
    runs = toy / "runs"
    assert rag("run", str(_recipe(toy)), "-j", jobs, runs=runs) == 2
    assert f"argument -j/--jobs: {words}" in capsys.readouterr().err
    assert not runs.exists()
    assert rag("run", str(_recipe(toy)), "-j", "1", runs=runs) == 0


# ------------------------------------------------------------------ plan problems' hints


def test_missing_source_hint_names_the_key_the_user_overrode(toy, capsys):
    """Audit: the hint said sources.numbers=... when the user had set data.numbers=..."""
    missing = toy / "nope.txt"
    recipe = _recipe(toy, FROM_FILE % ("auto", toy / "numbers.txt"))
    assert rag("run", str(recipe), f"data.numbers={missing}", runs=toy / "runs") == 2
    err = _err(capsys)
    assert (f"error: override 'data.numbers={missing}': source 'numbers': {missing} does not "
            "exist") in err
    assert ("hint: fix the path in the recipe or override it on the command line: "
            "data.numbers=/path/to/file") in err
    assert rag("run", str(recipe), runs=toy / "runs") == 2   # set in the recipe: its own key
    assert "command line: sources.numbers=/path/to/file" in _err(capsys)


def test_unset_environment_variable_hint():
    from orchestrator.runner import problem_hint

    problem = ("steps.ask.llm.api_key_env: environment variable RAGLINE_TEST_KEY is not set (step "
               "'ask' reads it when it runs)")
    assert problem_hint(problem, {}, []) == (
        "export RAGLINE_TEST_KEY=... before `rag run`, or set steps.ask.llm.api_key_env to the "
        "variable that holds the key (null for a server that needs none)")


# ------------------------------------------------------------------ a closed stdout


def _run_into_closed_pipe(toy: Path, close_stderr: bool) -> subprocess.CompletedProcess:
    """``rag run … | head``: stdout (and stderr) is a pipe whose reader has exited."""
    read, write = os.pipe()
    os.close(read)
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGLINE_CACHE": str(toy / "runs" / "cache")}
    try:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", str(_recipe(toy)), "--no-progress",
             "--runs-dir", str(toy / "runs")], cwd=REPO, env=env, stdout=write,
            stderr=write if close_stderr else subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write)


@pytest.mark.parametrize("close_stderr", [False, True])
def test_run_goes_on_when_its_output_pipe_is_closed(toy, close_stderr):
    """Audit item 7: rich exited 1 at the next line, leaving the record 'running'."""
    out = _run_into_closed_pipe(toy, close_stderr)
    assert out.returncode == 0, out.stderr
    status = _status(toy / "runs")
    assert status["state"] == "ok" and status["metrics"]["total"]["sum"] == 56.0
    if not close_stderr:
        err = " ".join(out.stderr.split())
        assert "note: stdout is closed (its reader exited); the run goes on" in err
        assert "run record:" in err and "Exception ignored" not in err
