"""Shared fixtures: a copy of the toy recipe in a temporary directory, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``pytest -n auto``: one worker a core this process may use, at most 8 (each worker builds
    the session's tiny models again, and many tests start processes of their own)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A toy recipe directory (``conf/chain.yaml``) and a runs dir, with cwd at the repo root."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "tests" / "toy" / "conf", conf)
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "runs" / "cache"))
    return tmp_path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread: with two threads on a busy 2-core machine each
    small matmul waits on the other (measured: up to 100x slower generation)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def env(tmp_path):
    """(table, written, ctx) for calling a stage function directly: ``table(cls, rows)`` makes an
    input handle; ``written(cls, value)`` round-trips an output through the artifact writer (rows
    for a table, the dict for metrics, the Ref otherwise); ``ctx(step)`` is a StageContext."""
    import logging

    from orchestrator.api import StageContext
    from orchestrator.artifacts import write_artifact

    counter = iter(range(10_000))

    def table(cls, rows):
        return cls(write_artifact(rows, cls, tmp_path / f"in{next(counter)}", "test.in", "key"))

    def written(cls, value):
        ref = write_artifact(value, cls, tmp_path / f"out{next(counter)}", "test.out", "key")
        if cls.kind == "table":
            return cls(ref).rows()
        return cls(ref).read() if cls.kind == "metrics" else ref

    def ctx(step):
        return StageContext(step, 0, 1, tmp_path / f"work{next(counter)}", tmp_path / "scratch",
                            logging.getLogger(f"test.{step}"))

    return table, written, ctx


def rag(*args: str, runs: Path | None = None) -> int:
    """Run the CLI in this process; returns the exit code."""
    from orchestrator.cli import main

    argv = list(args)
    if runs is not None and argv and argv[0] in ("run", "plan", "dag"):
        argv += ["--runs-dir", str(runs)]
    if runs is not None and argv and argv[0] in ("status", "show", "gc"):
        argv += ["--runs-dir", str(runs)]
    return main(argv)


def plan_checker(recipe: str, tmp_path: Path, monkeypatch, capsys):
    """``check(*overrides) -> (exit code, stdout + stderr)`` of ``rag plan RECIPE ... --check``
    run from the repository with a cache of its own under ``tmp_path``."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "runs" / "cache"))

    def check(*overrides: str) -> tuple[int, str]:
        capsys.readouterr()
        code = rag("plan", recipe, *overrides, "--check", runs=tmp_path / "runs")
        captured = capsys.readouterr()
        return code, captured.out + captured.err
    return check


def run_paper_recipe(root: Path, recipe: str, overrides: list[str], server, api_key: str) -> Path:
    """``rag run conf/RECIPE OVERRIDES`` from ``root`` with its own cache and the endpoint's key
    set, then ``server`` (the test chat server's process) stopped; the runs directory. A failed
    run fails the calling fixture with the tail of every step's log."""
    runs = root / "runs"
    mp = pytest.MonkeyPatch()
    try:
        mp.chdir(root)
        mp.setenv("RAGLINE_CACHE", str(runs / "cache"))
        mp.setenv("OPENAI_API_KEY", api_key)
        code = rag("run", str(REPO / "conf" / recipe), *overrides, "--no-progress", runs=runs)
    finally:
        mp.undo()
        server.terminate()
        server.wait(timeout=30)
    assert code == 0, "\n".join(p.read_text()[-3000:] for p in (runs / "latest" / "logs").glob("*.log"))
    return runs


def rag_process(*args: str, cwd: Path = REPO, env: dict | None = None, **kw) -> subprocess.Popen:
    """Start the CLI as a separate process (for kills and concurrency)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "orchestrator", *args], cwd=cwd, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def counts(path: Path) -> dict[str, int]:
    """How many times each (step, shard) executed, from a toy_map count file."""
    out: dict[str, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            step, shard, _ = line.split()
            out[f"{step}:{shard}"] = out.get(f"{step}:{shard}", 0) + 1
    return out
