"""Bookkeeping of no-op sweeps and wide sharded steps, measured: prints figures, asserts nothing.

    python bench/bench_sweep.py            # about 2 minutes on 2 cores (building the cache)
    python bench/bench_sweep.py --members 10

A toy recipe shaped to stress what a run does for every cached step: a table step of 256
shards, a directory step of 256 shards reading it, a 20,000-file directory artifact, and a
cheap last step that the sweep varies (``steps.post.add=1,...,N``). The cache is built once;
then the figures are whole-process wall and CPU seconds (median of ``--repeats``) of

- a no-op rerun of that N-member sweep (every member finds every step cached), and
- a no-op rerun of the recipe alone,

and, with ``--shards S``, the first run of an S-shard step reading an S-shard step (each
shard checks the entries it reads) and its no-op rerun.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WIDE = """\
ragline: {imports: [tests.toy.stages], executor: {name: local, isolate: never}}
steps:
  gen:     {stage: toy_gen, n: 2560}
  wmap:    {stage: toy_map, inputs: {numbers: gen}, shards: 256, mul: 3.0}
  wblob:   {stage: toy_blob, inputs: {numbers: wmap}, shards: 256}
  bgen:    {stage: toy_gen, n: 20000}
  bigblob: {stage: toy_blob, inputs: {numbers: bgen}}
  post:    {stage: toy_map, inputs: {numbers: wmap}, add: 1.0}
"""
NESTED = """\
ragline: {{imports: [tests.toy.stages], executor: {{name: local, isolate: never}}}}
steps:
  gen: {{stage: toy_gen, n: {rows}}}
  s1:  {{stage: toy_map, inputs: {{numbers: gen}}, shards: {shards}, mul: 5.0}}
  s2:  {{stage: toy_map, inputs: {{numbers: s1}}, shards: {shards}, add: 2.0}}
"""


def timed(cmd: list[str], env: dict, n: int) -> tuple[float, float]:
    """Median wall and CPU seconds (user + sys of the child) of ``cmd`` over ``n`` runs."""
    walls, cpus = [], []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=50)
    ap.add_argument("--shards", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-sweep-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGLINE_CACHE": str(work / "cache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)   # the first run writes .pyc files, not timed
    rag = [sys.executable, "-m", "orchestrator"]
    wide = work / "wide.yaml"
    wide.write_text(WIDE)
    values = ",".join(str(i) for i in range(1, args.members + 1))
    sweep = rag + ["run", str(wide), "-m", f"steps.post.add={values}", "--runs-dir",
                   str(work / "runs"), "--no-progress"]
    single = rag + ["run", str(wide), "--runs-dir", str(work / "runs"), "--no-progress"]
    built = timed(sweep, env, 1)
    rows = [(f"build: {args.members}-member sweep, cache empty", built),
            (f"no-op rerun of the {args.members}-member sweep", timed(sweep, env, args.repeats)),
            ("no-op rerun of the recipe alone", timed(single, env, args.repeats))]
    nested = work / "nested.yaml"
    nested.write_text(NESTED.format(rows=4 * args.shards, shards=args.shards))
    run = rag + ["run", str(nested), "--runs-dir", str(work / "runs"), "--no-progress"]
    rows.append((f"first run: {args.shards} shards reading {args.shards} shards",
                 timed(run, env, 1)))
    rows.append(("no-op rerun of it", timed(run, env, args.repeats)))
    width = max(len(r[0]) for r in rows)
    sys.stdout.write(f"{'figure':<{width}}  {'wall s':>8}  {'CPU s':>8}\n")
    for name, (wall, cpu) in rows:
        sys.stdout.write(f"{name:<{width}}  {wall:8.2f}  {cpu:8.2f}\n")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    sys.stdout.write(f"load average at the end: {load} on {os.cpu_count()} cores\n")
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
