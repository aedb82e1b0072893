"""Orchestrator overhead, measured: prints figures, asserts nothing.

    python bench/bench_orchestrator.py            # all figures (about a minute on 2 cores)
    python bench/bench_orchestrator.py --quick    # fewer repetitions

Figures: `rag --help`; a no-op rerun of the fully cached 11-step toy chain (and how many artifact
bytes it hashed); a no-op rerun of a 32-step toy recipe shaped like the CPU demo (sharded tables,
directory artifacts of many files), with every artifact file stat-checked; planning a
1,000-member sweep of the chain (11,000 steps); per-step overhead of executing trivial steps
in-process; `rag gc` over a cache of 10,000 entries; content hashing throughput. Reference figures for DVC and
Snakemake on the same DAG shape, measured on this machine class, are printed beside them (from
../shared/research/overhead-measured.md); when `dvc` or `snakemake` is on PATH it is not re-run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHAIN = REPO / "tests" / "toy" / "conf" / "chain.yaml"
REFERENCE = {  # seconds, medians on this 2-core machine class (research/overhead-measured.md)
    "no-op rerun": "DVC repro 0.744, Snakemake 0.645",
    "plan 1000-member sweep": "Snakemake dry run 6.43, dvc status 57.4",
    "--help": "(targets: < 0.2 s)",
    "no-op 32": "(target: < 0.3 s with stat checks; DVC repro 0.744, Snakemake 0.645)",
    "gc": "(target: < 2 s)",
}


def demo_shaped_recipe(path: Path) -> Path:
    """32 steps like the CPU demo: a 4-shard table step, 2-shard directory artifacts (16 files)
    read by the next step, and a chain of table steps; ends in a metrics step."""
    steps = ["  s0: {stage: toy_gen, n: 16}",
             "  s1: {stage: toy_map, inputs: {numbers: s0}, shards: 4, mul: 2.0}"]
    i = 2
    while i < 31:
        if i % 5 == 2:
            steps.append(f"  s{i}: {{stage: toy_blob, inputs: {{numbers: s{i - 1}}}, shards: 2}}")
            steps.append(f"  s{i + 1}: {{stage: toy_read_blob, inputs: {{blob: s{i}}}}}")
            i += 2
        else:
            steps.append(f"  s{i}: {{stage: toy_map, inputs: {{numbers: s{i - 1}}}, add: {i}}}")
            i += 1
    steps.append(f"  s{i}: {{stage: toy_sum, inputs: {{numbers: s{i - 1}}}}}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("ragline: {imports: [tests.toy.stages]}\nsteps:\n" + "\n".join(steps) + "\n")
    return path


def stat_count(cache: Path) -> int:
    """Files and directories a no-op rerun stat-checks: every entry's recorded table."""
    import json

    total = 0
    for entry in (cache / "objects").glob("*/*"):
        total += len(json.loads((entry / "_entry.json").read_text()).get("files") or {})
    return total


def gc_cache(work: Path, n: int) -> tuple[Path, Path]:
    """A cache of ``n`` small committed entries; a run record keeps half of them."""
    import json

    sys.path.insert(0, str(REPO))
    from orchestrator.store import Store

    cache, runs = work / "gc-cache", work / "gc-runs"
    store = Store(cache)
    keys = []
    for i in range(n):
        key = f"{i:064x}"
        tmp = store.new_tmp(key)
        out = tmp / "outputs" / "out"
        out.mkdir(parents=True)
        (out / "metrics.json").write_text('{"x": 1}')
        (out / "_manifest.json").write_text("{}")
        store.commit(tmp, key, {"outputs": {"out": {"kind": "metrics", "type": "", "content_hash": "",
                                                    "paths": [str(out / "metrics.json")]}}})
        keys.append(key)
    run = runs / "bench" / "20260101-000000"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"steps": {"s": {"keys": keys[::2]}}}))
    return cache, runs


def demo_row(work: Path, env: dict, rag: list[str], n: int) -> tuple:
    """No-op rerun of the 32-step demo-shaped recipe, every artifact file stat-checked."""
    demo = demo_shaped_recipe(work / "conf" / "demo32.yaml")
    cmd = rag + ["run", str(demo), "--runs-dir", str(work / "demo-runs"), "--no-progress"]
    env = {**env, "RAGLINE_CACHE": str(work / "demo-runs" / "cache")}
    subprocess.run(cmd, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    checked = stat_count(work / "demo-runs" / "cache")
    return (f"no-op rerun, 32 steps, {checked} files+dirs stat-checked", timed(cmd, env, n),
            REFERENCE["no-op 32"])


def gc_rows(work: Path, env: dict, rag: list[str], quick: bool) -> list[tuple]:
    """rag gc over 10,000 entries: a dry run (scan and decide), then removing half of them."""
    n = 2000 if quick else 10_000
    cache, runs = gc_cache(work, n)
    env = {**env, "RAGLINE_CACHE": str(cache)}
    cmd = rag + ["gc", "--runs-dir", str(runs)]
    return [(f"rag gc --dry-run, {n:,} entries", timed(cmd + ["--dry-run"], env, 3), REFERENCE["gc"]),
            (f"rag gc, {n:,} entries, removing {n // 2:,}", timed(cmd, env, 1), REFERENCE["gc"])]


def hashing_row(work: Path, hash_file) -> tuple:
    """Content hashing throughput, 1 GiB from page cache."""
    big = work / "big.bin"
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(1024):
            f.write(block)
    hash_file(big)  # page cache warm
    t = time.perf_counter()
    hash_file(big)
    dt = time.perf_counter() - t
    return ("content hashing, 1 GiB from page cache (GB/s)", (1 << 30) / dt / 1e9,
            "sha256 1.42, BLAKE3 3.2, xxh3 6.5, read 7.8")


CPU: dict[float, float] = {}  # wall median -> CPU seconds (user + sys) of that command, median


def timed(cmd: list[str], env: dict, n: int, before_each=None) -> float:
    """Median wall seconds of ``cmd``; its median CPU seconds are kept in ``CPU`` (on a shared,
    loaded machine wall time mostly measures waiting for a core; CPU time does not).
    ``before_each``: called before every repetition, untimed (e.g. to remove remembered state)."""
    import resource

    times, cpus = [], []
    for _ in range(n):
        if before_each is not None:
            before_each()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    wall = statistics.median(times)
    CPU[wall] = statistics.median(cpus)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 3 if args.quick else 10
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-"))
    runs = work / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGLINE_CACHE": str(runs / "cache")}
    # An installed ragline has compiled bytecode; with PYTHONDONTWRITEBYTECODE set, every module
    # edited since its .pyc was written would be compiled again on every run, and the figures
    # would measure the compiler. The first (untimed) run of each command writes the .pyc files.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    rag = [sys.executable, "-m", "orchestrator"]
    rag_bin = shutil.which("rag")
    rows = []

    help_cmd = [rag_bin, "--help"] if rag_bin else rag + ["--help"]
    rows.append(("rag --help", timed(help_cmd, env, n), REFERENCE["--help"]))

    run_cmd = (([rag_bin] if rag_bin else rag) + ["run", str(CHAIN), "--runs-dir", str(runs),
                                                  "--no-progress"])
    subprocess.run(run_cmd, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows.append(("no-op rerun, 11 steps (14 tasks)", timed(run_cmd, env, n), REFERENCE["no-op rerun"]))

    # Artifact bytes hashed by a no-op rerun: count calls of the hashing function in-process.
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    os.environ["RAGLINE_CACHE"] = str(runs / "cache")
    import orchestrator.artifacts as artifacts
    import orchestrator.hashing as hashing
    from orchestrator.cli import main as rag_main

    hashed = []
    real = hashing.hash_file
    hashing.hash_file = artifacts.hash_file = lambda p: hashed.append(os.path.getsize(p)) or real(p)
    rag_main(["run", str(CHAIN), "--runs-dir", str(runs), "--no-progress"])
    hashing.hash_file = artifacts.hash_file = real
    rows.append(("  bytes hashed by that no-op rerun", float(sum(hashed)), "(target: 0)"))

    rows.append(demo_row(work, env, ([rag_bin] if rag_bin else rag), n))

    sweep = ([rag_bin] if rag_bin else rag) + ["plan", str(CHAIN), "-m", "steps.dpo.add=range(0,1000)",
                                               "--runs-dir", str(work / "sweep-runs")]
    forget = lambda: shutil.rmtree(work / "sweep-runs", ignore_errors=True)  # noqa: E731
    rows.append(("plan 1,000-member sweep (11,000 steps), cold",
                 timed(sweep, env, 3 if not args.quick else 2, before_each=forget),
                 REFERENCE["plan 1000-member sweep"]))
    # a plan remembers compositions only where the runs directory exists (a plan in a fresh
    # directory writes nothing): without it this row timed the cold path again
    (work / "sweep-runs").mkdir(exist_ok=True)
    timed(sweep, env, 1)   # composes and remembers
    rows.append(("plan 1,000-member sweep, compose cached", timed(sweep, env, 3), ""))

    # Per-step overhead: 200 trivial steps executed in-process (run + write + hash + commit + record).
    recipe = work / "conf" / "long.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    steps = ["  s0: {stage: toy_gen, n: 4}"]
    steps += [f"  s{i}: {{stage: toy_map, inputs: {{numbers: s{i - 1}}}, add: 1}}" for i in range(1, 200)]
    recipe.write_text("ragline: {imports: [tests.toy.stages]}\nsteps:\n" + "\n".join(steps) + "\n")
    rag_main(["plan", str(recipe), "--runs-dir", str(work / "long-runs")])  # warm imports
    t = time.perf_counter()
    rag_main(["run", str(recipe), "--runs-dir", str(work / "long-runs"), "--no-progress"])
    total = time.perf_counter() - t
    import json

    status = json.loads((work / "long-runs" / "latest" / "status.json").read_text())
    ran = sum(1 for s in status["steps"].values() if s.get("state") == "done")
    rows.append((f"per executed step, in-process ({ran} steps, incl. write+hash+commit)",
                 total / max(ran, 1), "(target: < 0.05)"))

    rows += gc_rows(work, env, ([rag_bin] if rag_bin else rag), args.quick)
    rows.append(hashing_row(work, real))

    width = max(len(r[0]) for r in rows)
    sys.stdout.write(f"{'figure':<{width}}  {'value':>10}  {'CPU s':>7}  reference\n")
    for name, value, ref in rows:
        unit = "" if "GB/s" in name or "bytes" in name else " s"
        cpu = f"{CPU[value]:7.3f}" if value in CPU else " " * 7
        sys.stdout.write(f"{name:<{width}}  {value:>8.3f}{unit:2}  {cpu}  {ref}\n")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    sys.stdout.write(f"load average at the end: {load} on {os.cpu_count()} cores\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
