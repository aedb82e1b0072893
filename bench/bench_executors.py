"""Executor overhead, measured: prints figures, asserts nothing.

    tests/engines/ray.sh start; tests/engines/slurm.sh start        # the real engines (root)
    python bench/bench_executors.py                  # 16 shards x 5 runs per executor, 100 shards once
    python bench/bench_executors.py --executors local,ray --reps 3 --big 0

For each executor (local; Ray attached to the running cluster; SLURM single node) a trivial
sharded step (``xc_map`` of tests/executors/stages.py, 16 shards of one row each) is rerun with
``--force``; the figure is the step's duration from the run record divided by the number of
shards: the per-task cost of starting, scheduling and collecting a worker. Median of ``--reps``.
Then a 100-shard step on Ray and on the local executor, computed once each (its duration from the
run record, after a run of the source alone). An engine that is
not running is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = """
defaults:
  - _self_
  - executor: local
ragline: {imports: [tests.executors.stages]}
steps:
  source: {stage: xc_source, n: SHARDS}
  map:    {stage: xc_map, inputs: {numbers: source}, shards: SHARDS}
"""
OVERRIDES = {
    "local": ["executor=local"],
    "ray": ["executor=ray", "ragline.executor.address=auto"],
    "slurm": ["executor=slurm", "ragline.executor.time=10", "ragline.executor.cpus_per_task=1",
              "ragline.executor.mem_gb=1"],
}


def engine_running(name: str) -> bool:
    if name == "local":
        return True
    if name == "ray":
        out = subprocess.run([str(REPO / "tests/engines/ray.sh"), "status"], capture_output=True,
                             text=True, env={**os.environ, "RAY_PY": sys.executable}).stdout
        return "running" in out
    return shutil.which("scontrol") is not None and \
        "UP" in subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout


def workdir(path: Path) -> Path:
    """A directory for one executor's recipe, with the repository's executor config group."""
    shutil.copytree(REPO / "conf" / "executor", path / "executor")
    return path


def step_seconds(root: Path, executor: str, shards: int, force: bool,
                 only: str | None = None) -> tuple[float, float]:
    """(duration of the map step from the run record, wall time of the whole command)."""
    recipe = root / f"bench{shards}.yaml"
    if not recipe.exists():
        recipe.write_text(RECIPE.replace("SHARDS", str(shards)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGLINE_CACHE": str(root / "cache")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [sys.executable, "-m", "orchestrator", "run", str(recipe), *OVERRIDES[executor],
           "--runs-dir", str(root / "runs")] + (["--force", "map"] if force else []) \
        + (["--only", only] if only else [])
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{executor}: {' '.join(cmd)} failed:\n{r.stdout[-2000:]}")
    status = json.loads((root / "runs" / "latest" / "status.json").read_text())
    return float(status["steps"].get("map", {}).get("duration", 0.0)), wall


def per_task(root: Path, executor: str, shards: int, reps: int) -> list[float]:
    step_seconds(root, executor, shards, force=False)  # computes the source; warms the engine
    return [step_seconds(root, executor, shards, force=True)[0] / shards for _ in range(reps)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--executors", default="local,ray,slurm")
    p.add_argument("--shards", type=int, default=16)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--big", type=int, default=100, help="shards of the Ray-vs-local step (0: skip)")
    p.add_argument("--big-on", default="local,ray", help="executors of the big step")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as tmp:
        root = Path(tmp)
        print(f"\nper-task overhead, trivial {args.shards}-shard step, median of {args.reps} "
              "(step duration / shards):")
        for name in filter(None, args.executors.split(",")):
            if not engine_running(name):
                print(f"  {name:<6} skipped: not running (tests/engines/{name}.sh start)")
                continue
            times = per_task(workdir(root / name), name, args.shards, args.reps)
            print(f"  {name:<6} {statistics.median(times) * 1000:7.0f} ms/task   "
                  f"(runs: {', '.join(f'{t * 1000:.0f}' for t in times)} ms)")
        if args.big and engine_running("ray"):
            print(f"\n{args.big}-shard step, wall time of the step:")
            for name in args.big_on.split(","):
                d = workdir(root / f"big-{name}")
                step_seconds(d, name, args.big, force=False, only="source")
                seconds, _ = step_seconds(d, name, args.big, force=False)
                print(f"  {name:<6} {seconds:7.1f} s")


if __name__ == "__main__":
    main()
