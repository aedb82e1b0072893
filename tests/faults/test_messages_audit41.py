"""Failure messages found unclear by a fault-injection audit (audit_faults41, N5 and N7).

- A cached table damaged with its size and mtime kept (bit rot) passes the stat check, so a
  step reading it failed with pyarrow's bare ``OSError``, and the resume command printed failed
  the same way forever. A failure that reading damaged bytes can raise now has the step's input
  entries hashed again; a damaged one is moved to ``quarantine/`` and named, so the rerun
  computes its producer again. A stage's own failure is reported as before.
- ``ulimit -f`` (EFBIG) gave a bare errno; a full runs directory named no path and pointed at
  ``rag gc``, which frees the cache; ``${oc.env:X}`` in a number field did not say that the
  environment gives text; a worker killed by SIGKILL did not hint at the OOM killer.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, rag
from tests.faults.faultkit import (entry_dir, flip_byte, needs_mount, recipe, run_mounted,
                                   status, total)

PART = "outputs/out/part-00000.parquet"
FULL_HINT = "free space (e.g. rag gc) and rerun: finished steps are kept"
OTHER_HINT = ("free space on that disk and rerun: finished steps are kept (rag gc frees only the "
              "cache's disk)")

SHARDED = """ragline:
  imports: [tests.toy.stages]
steps:
  gen: {stage: toy_gen, n: 8}
  mul: {stage: toy_map, inputs: {numbers: gen}, shards: 2}
  total: {stage: toy_sum, inputs: {numbers: mul}}
"""


def _err(capsys) -> str:
    err = " ".join(capsys.readouterr().err.split())
    assert "internal error" not in err and "Traceback" not in err
    return err


# ------------------------------------------------------------------ N5: damage the stats miss


def test_a_table_damaged_with_its_stats_kept_is_set_aside_when_its_reader_fails(
        toy, capsys, monkeypatch):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    gen = entry_dir(runs, "gen")
    quarantine = runs / "cache" / "quarantine"
    # a stage's own failure (an OSError of its own, inputs intact) is reported as it was
    monkeypatch.setenv("TOY_FAIL", "mul:0:late")
    capsys.readouterr()
    assert rag("run", str(conf), "steps.mul.mul=3", runs=runs) == 1
    assert "✗ mul failed: FileNotFoundError: toy: no such file after sleeping in mul:0" \
        in _err(capsys)
    flip_byte(gen / PART, 4)   # one byte of the page header; size and mtime put back
    # a failure unrelated to reading (RuntimeError) hashes nothing and blames nothing
    monkeypatch.setenv("TOY_FAIL", "mul:0")
    assert rag("run", str(conf), "steps.mul.mul=3", runs=runs) == 1
    assert "✗ mul failed: RuntimeError: toy failure in mul:0" in _err(capsys)
    assert gen.is_dir() and not quarantine.exists()
    monkeypatch.delenv("TOY_FAIL")
    assert rag("run", str(conf), "steps.mul.mul=3", runs=runs) == 1
    err = _err(capsys)
    # before: "✗ mul failed: OSError: Couldn't deserialize thrift: ...", and the same again on
    # every rerun of the resume command
    assert (f"✗ mul failed: step 'mul' input 'numbers' is damaged in the cache: {gen / PART} "
            "differs from what step 'gen' committed (hashed again after the stage failed: "
            "OSError: ") in err
    assert "; it was moved to quarantine, so a rerun computes step 'gen' again" in err
    assert not gen.exists() and len(list(quarantine.glob(f"{gen.name}.*"))) == 1
    assert status(runs)["steps"]["gen"]["state"] == "cached"   # nothing computed is lost
    assert rag("run", str(conf), "steps.mul.mul=3", runs=runs) == 0
    assert "✓ gen done" in _err(capsys)
    assert total(runs) == 84.0   # (0 + ... + 7) * 3


def test_shards_that_read_a_damaged_part_say_so_and_the_rerun_recomputes_it(toy, capsys):
    runs, conf = toy / "runs", recipe(toy, SHARDED)
    assert rag("run", str(conf), runs=runs) == 0
    gen = entry_dir(runs, "gen")
    flip_byte(gen / PART, 4)
    capsys.readouterr()
    assert rag("run", str(conf), "steps.mul.mul=3", runs=runs) == 1
    err = capsys.readouterr().err
    failed = [" ".join(line.split()) for line in err.splitlines() if "✗ mul[" in line]
    assert len(failed) == 2, err
    for line in failed:   # each shard read the damaged part (one set it aside, maybe both)
        assert "damaged in the cache" in line and "step 'gen'" in line, line
        assert "computes step 'gen' again" in line or "step 'gen' is computed again" in line, line
    assert not gen.exists()
    assert rag("run", str(conf), "steps.mul.mul=3", runs=runs) == 0
    assert total(runs) == 84.0


@pytest.mark.parametrize("exc, hashed", [
    (OSError("Unexpected end of stream"), True),              # pyarrow: a corrupt page
    (OSError(errno.EIO, "Input/output error"), True),
    (EOFError("Ran out of input"), True),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), True),
    (FileNotFoundError(errno.ENOENT, "No such file", "/data/x"), False),   # a wrong path
    (OSError(errno.ENOSPC, "No space left on device"), False),
    (KeyError("question"), False), (ValueError("bad value"), False),
    (RuntimeError("CUDA out of memory"), False)])
def test_only_failures_that_damaged_bytes_raise_cost_a_re_hash(exc, hashed):
    import pyarrow as pa

    from orchestrator.task import may_be_damage

    assert may_be_damage(exc) is hashed
    assert may_be_damage(pa.ArrowInvalid("Parquet magic bytes not found"))
    try:   # a stage that wraps it
        try:
            raise exc
        except BaseException as e:
            raise RuntimeError("could not read the passages") from e
    except RuntimeError as wrapped:
        assert may_be_damage(wrapped) is hashed


# ------------------------------------------------------------------ N7.1: ulimit -f (EFBIG)


def test_file_size_limit_names_the_limit_and_the_cache():
    from orchestrator.task import one_line

    line = one_line(OSError(errno.EFBIG, os.strerror(errno.EFBIG)), "/c")
    # before: "OSError: [Errno 27] File too large"
    assert line == ("cache directory /c: a file reached the file-size limit of ulimit -f (File "
                    "too large); raise the limit (ulimit -f unlimited) and rerun: finished steps "
                    "are kept")


def test_file_size_limit_in_a_real_run_names_the_limit(toy):
    conf = recipe(toy, """ragline:
  imports: [tests.toy.stages]
steps:
  small: {stage: toy_gen, n: 3}
  gen: {stage: toy_gen, n: 40000}
""")
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGLINE_CACHE": str(toy / "runs" / "cache")}
    run = f"{sys.executable} -m orchestrator run --no-progress {conf} --runs-dir {toy / 'runs'}"
    out = subprocess.run(["bash", "-c", f"ulimit -f 64; exec {run}"], cwd=REPO, env=env,
                         text=True, capture_output=True, timeout=300)
    err = " ".join(out.stderr.split())
    assert out.returncode == 1, out.stderr
    assert "internal error" not in err and "Traceback" not in err
    assert (f"✗ gen failed: cache directory {toy / 'runs' / 'cache'}: a file reached the "
            "file-size limit of ulimit -f (File too large); raise the limit (ulimit -f "
            "unlimited) and rerun: finished steps are kept") in err
    assert "✓ small done" in err


# ------------------------------------------------------------------ N7.2: a full runs directory


def _full_plan_file(monkeypatch):
    """The run record's plan.json meets a full disk as Path.write_text meets one: at the
    closing flush, an OSError that names no file."""
    real = Path.open

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def write(self, text):
            return len(text)

    def open_(self, mode="r", *args, **kw):
        f = real(self, mode, *args, **kw)
        return Full(f) if "w" in mode and self.name.startswith(".plan.json") else f

    monkeypatch.setattr(Path, "open", open_)


def test_full_runs_directory_names_it_and_the_file(toy, capsys, monkeypatch):
    runs = toy / "runs"
    _full_plan_file(monkeypatch)
    assert rag("run", str(recipe(toy)), runs=runs) == 1
    err = _err(capsys)
    # before: "error: the disk is full (No space left on device); free space (e.g. rag gc) ..."
    assert (f"error: runs directory {runs}: the disk is full (No space left on device) writing "
            f"{runs}/") in err and ".plan.json." in err
    assert err.endswith(FULL_HINT)   # runs and cache on one disk here: rag gc does free it


def test_full_runs_directory_on_another_disk_than_the_cache_does_not_suggest_gc(
        toy, capsys, monkeypatch):
    import orchestrator.errors as errors

    runs = toy / "runs"
    monkeypatch.setenv("RAGLINE_CACHE", str(toy / "elsewhere"))
    monkeypatch.setattr(errors, "same_disk", lambda path, other: False)
    _full_plan_file(monkeypatch)
    assert rag("run", str(recipe(toy)), runs=runs) == 1
    err = _err(capsys)
    assert f"error: runs directory {runs}: the disk is full (No space left on device)" in err
    assert err.endswith(OTHER_HINT) and "e.g. rag gc" not in err


@needs_mount
def test_full_mounted_runs_directory_with_the_cache_elsewhere(toy):
    runs, cache, conf = toy / "runs", toy / "cache", recipe(toy)
    runs.mkdir()
    cache.mkdir()
    tmpfs = f"mount -t tmpfs -o size=64k tmpfs {runs}"
    # full before the run: refused at the start, without pointing at rag gc
    full = f"{tmpfs} && (dd if=/dev/zero of={runs}/fill bs=4k 2>/dev/null || true)"
    out = run_mounted(toy, full, str(conf), "--runs-dir", str(runs), cache=cache)
    assert out.returncode == 2, out.stderr
    assert (f"error: runs directory {runs} is not writable (No space left on device) hint: "
            f"{OTHER_HINT}") in out.err, out.stderr
    # full during the run (the audit's case): the runs directory and the file are named
    filling = f"{tmpfs} && dd if=/dev/zero of={runs}/fill bs=1k count=40 2>/dev/null"
    out = run_mounted(toy, filling, str(conf), "--runs-dir", str(runs), cache=cache)
    assert out.returncode == 1, out.stderr
    assert (f"error: runs directory {runs}: the disk is full (No space left on device) writing "
            f"{runs}/") in out.err, out.stderr
    assert out.err.rstrip().endswith(OTHER_HINT) and "e.g. rag gc" not in out.err


# ------------------------------------------------------------------ N7.3: ${oc.env:X} is text


ENV_MUL = """ragline:
  imports: [tests.toy.stages]
steps:
  gen: {stage: toy_gen, n: 4}
  mul: {stage: toy_map, inputs: {numbers: gen}, mul: "READ"}
"""


@pytest.mark.parametrize("value, words", [
    ("2", "; the environment gives text: write ${oc.decode:${oc.env:RAGLINE_T41_MUL}} to read "
          "it as a number"),
    ("two", "; the environment variable RAGLINE_T41_MUL holds text that is not a number")])
def test_environment_variable_in_a_number_field_says_it_is_text(toy, capsys, monkeypatch,
                                                                value, words):
    monkeypatch.setenv("RAGLINE_T41_MUL", value)
    conf = recipe(toy, ENV_MUL.replace("READ", "${oc.env:RAGLINE_T41_MUL}"))
    assert rag("plan", str(conf), runs=toy / "runs") == 2
    err = _err(capsys)
    assert ("steps.mul.mul: expected a number, got '${oc.env:RAGLINE_T41_MUL}'" + words) in err
    if value == "two":
        assert "two" not in err.replace("RAGLINE_T41_MUL", "")   # its value is never quoted
    else:   # what the message says to write works
        conf = recipe(toy, ENV_MUL.replace("READ", "${oc.decode:${oc.env:RAGLINE_T41_MUL}}"))
        assert rag("run", str(conf), runs=toy / "runs") == 0


# ------------------------------------------------------------------ N7.4: SIGKILL


def test_worker_killed_by_sigkill_hints_at_the_oom_killer(tmp_path):
    from orchestrator.executors.base import read_result

    failed = read_result(tmp_path / "no.result", -9, "w.log")
    assert failed.message == ("worker killed by signal 9 (SIGKILL: out of memory? see dmesg or "
                              "journalctl -k)")
    assert read_result(tmp_path / "no.result", -11, "w.log").message == \
        "worker killed by signal 11 (SIGSEGV)"
