"""Shared by the fault-injection tests: small recipes on the toy stages, and ways to damage a cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHAIN = """ragline:
  imports: [tests.toy.stages, tests.faults.toy_faults]
steps:
  gen: {stage: toy_gen, n: 8}
  mul: {stage: toy_map, inputs: {numbers: gen}}
  total: {stage: toy_sum, inputs: {numbers: mul}}
"""

BLOB = """ragline:
  imports: [tests.toy.stages, tests.faults.toy_faults]
steps:
  gen: {stage: toy_gen, n: 4}
  blob: {stage: toy_blob, inputs: {numbers: gen}}
  read: {stage: toy_read_blob, inputs: {blob: blob}}
"""


def recipe(root: Path, text: str = CHAIN, name: str = "c.yaml") -> Path:
    path = root / "conf" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def status(runs: Path) -> dict:
    return json.loads((runs / "latest" / "status.json").read_text())


def total(runs: Path) -> float:
    return status(runs)["metrics"]["total"]["sum"]


def artifact_dir(runs: Path, step: str, output: str = "out") -> Path:
    """The directory holding a step's output in the cache (for a directory artifact: its data/)."""
    return (runs / "latest" / "artifacts" / f"{step}.{output}").resolve()


def entry_dir(runs: Path, step: str) -> Path:
    """The cache entry (objects/ab/KEY) of an unsharded step of the latest run."""
    path = artifact_dir(runs, step)
    while path.parent.name != path.name[:2] or path.parent.parent.name != "objects":
        path = path.parent
    return path


def writable(path: Path) -> Path:
    os.chmod(path, os.stat(path).st_mode | 0o200)
    return path


def rewrite_table(part: Path, factor: float) -> None:
    """Rewrite a cached Parquet part with valid but different numbers (x * factor)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(part)
    x = pa.array([v * factor for v in table.column("x").to_pylist()], pa.float64())
    table = table.set_column(table.schema.get_field_index("x"), "x", x)
    pq.write_table(table, writable(part), compression="zstd")


def flip_byte(path: Path, offset: int = 4) -> None:
    """Bit rot: one byte changed, size and mtime put back, so only a content re-hash can tell."""
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    writable(path).write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def truncate(path: Path, size: int | None = None) -> None:
    data = path.read_bytes()
    writable(path).write_bytes(data[: len(data) // 2 if size is None else size])


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def can_mount() -> bool:
    """Root with mount namespaces: a test can make a read-only or a tiny (full) file system."""
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                          capture_output=True).returncode == 0


needs_mount = pytest.mark.skipif(not can_mount(), reason="needs root and mount namespaces")


def run_mounted(tmp: Path, mount: str, *args: str, cache: Path | None = None):
    """``rag run ARGS`` in a private mount namespace prepared by ``mount`` (gone when it exits);
    ``.err`` is stderr with its lines joined, checked for a traceback or an internal error."""
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "RAGLINE_CACHE": str(cache or tmp / "runs" / "cache")}
    run = " ".join([sys.executable, "-m", "orchestrator", "run", "--no-progress", *args])
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          f"{mount} && exec {run}"], cwd=REPO, env=env, text=True,
                         capture_output=True, timeout=300)
    out.err = " ".join(out.stderr.split())
    assert "internal error" not in out.err and "Traceback" not in out.err, out.stderr
    return out
