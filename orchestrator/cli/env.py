"""``rag env``: what this machine gives ragline, for a bug report or before booking GPUs.

The versions of every package ragline declares (its own metadata: the core requirements and
each extra), which extras are complete, the GPUs a run would use, the CPUs and memory, where
the runs and the cache live and the space left there, the stage packages registered and which
executors can run here. It
imports none of the packages it lists (their versions come from their metadata), so it takes
under a second (0.5 s measured on 2 cores).
"""

from __future__ import annotations

import os
from collections.abc import Callable

EXAMPLES = """examples:
  rag env                 # versions, extras, GPUs, executors, cache
  rag env --json > env.json   # for a bug report
  rag env --runs-dir /scratch/runs   # the cache and free space there

exit codes: 0 ok, 1 a core requirement is missing or too old, or torch is a CPU-only build on a
machine with GPUs (the line says what to install)."""

DIST = "ragline"


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.add_argument("--runs-dir", default=None, help="where runs and the cache live (default: ./runs)")


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def requirements(requires: list[str], extras: list[str],
                 installed: Callable[[str], str | None] | None = None) -> list[dict]:
    """One row per declared requirement: its group (``core`` or the extra that asks for it),
    name, the versions it needs, the version installed (None: not installed) and whether that
    version satisfies the need.

    >>> have = {"torch": "2.13.0+cpu", "trl": "0.19.0"}.get
    >>> for r in requirements(["torch>=2.6", "trl>=1.9", 'ray>=2.60; extra == "ray"'], ["ray"], have):
    ...     print(r["group"], r["name"], r["needs"], r["installed"], r["ok"])
    core torch >=2.6 2.13.0+cpu True
    core trl >=1.9 0.19.0 False
    ray ray >=2.60 None False
    """
    from packaging.requirements import Requirement

    installed = installed or installed_version
    rows = []
    for text in requires:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            groups = ["core"]
        else:
            groups = [e for e in extras if req.marker.evaluate({"extra": e})]
        have = installed(req.name)
        ok = have is not None and req.specifier.contains(have, prereleases=True)
        for group in groups:
            rows.append({"group": group, "name": req.name, "needs": str(req.specifier),
                         "installed": have, "ok": ok})
    return rows


def machine(runs_dir) -> dict:
    """CPUs, memory, GPUs, the runs and cache directories and the space left for them."""
    import platform
    import shutil
    import sys
    from pathlib import Path

    from orchestrator.executors.gpus import visible_gpus
    from orchestrator.store import Store

    cache = Path(Store.for_runs(runs_dir).root)
    existing = next((p for p in [cache, *cache.absolute().parents] if p.exists()), Path("/"))
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "ragline": installed_version(DIST),
        "location": str(Path(__file__).resolve().parents[2]),
        "python": platform.python_version(), "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_bytes": memory,
        "gpus": [str(g) for g in visible_gpus()],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "runs_dir": str(Path(runs_dir).absolute()), "cache": str(cache.absolute()),
        "free_bytes": shutil.disk_usage(existing).free,
        "ragline_env": {k: v for k, v in os.environ.items() if k.startswith("RAGLINE_")},
    }


def executors() -> dict[str, str]:
    """Each executor and whether it can run here: ``ray`` needs the ``ray`` package, ``slurm``
    needs ``submitit`` and ``sbatch`` on the PATH (a cluster's login node)."""
    import shutil

    ray, submitit = installed_version("ray"), installed_version("submitit")
    sbatch = shutil.which("sbatch")
    return {
        "local": "ready",
        "ray": f"ready (ray {ray})" if ray else "needs ray: pip install -e '.[ray]'",
        "slurm": (f"ready (submitit {submitit}, {sbatch})" if submitit and sbatch else
                  "needs submitit: pip install -e '.[slurm]'" if not submitit else
                  f"submitit {submitit}, but no sbatch on the PATH: run from a SLURM login node"),
    }


def stage_packages() -> list[str]:
    """The ``ragline.stages`` entry points (``name = module``), found without importing them."""
    from importlib.metadata import entry_points

    return [f"{ep.name} = {ep.value}" for ep in entry_points(group="ragline.stages")]


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def main(args) -> int:
    import json
    import sys
    from importlib.metadata import PackageNotFoundError, metadata, requires

    from orchestrator.cli.common import runs_dir
    from orchestrator.executors.gpus import CUDA_TORCH, cpu_only_torch
    from orchestrator.logs import escape, report

    info = machine(runs_dir(args))
    try:
        extras = metadata(DIST).get_all("Provides-Extra") or []
        rows = requirements(requires(DIST) or [], extras)
    except PackageNotFoundError:
        extras, rows = [], []
    info["stages"] = stage_packages()
    info["executors"] = executors()
    info["requirements"] = rows
    broken = [r for r in rows if r["group"] == "core" and not r["ok"]]
    cpu_torch = cpu_only_torch() if info["gpus"] else None
    info["cpu_torch_with_gpus"] = cpu_torch is not None
    if args.json:
        sys.stdout.write(json.dumps(info, indent=1) + "\n")
        return 1 if broken or info["cpu_torch_with_gpus"] else 0

    c = report()
    gpus = info["gpus"]
    c.print(escape(f"ragline {info['ragline'] or '(not installed: pip install -e .)'}  "
                   f"{info['location']}"), soft_wrap=True)
    c.print(escape(f"python {info['python']}  {info['executable']}  {info['platform']}"),
            soft_wrap=True)
    c.print(f"cpus {info['cpus']}, memory {_gib(info['memory_bytes'])}; gpus: "
            + (escape(", ".join(gpus)) if gpus else "none visible")
            + (escape(f" (CUDA_VISIBLE_DEVICES={info['cuda_visible_devices']})")
               if info["cuda_visible_devices"] is not None else ""), soft_wrap=True)
    c.print(escape(f"runs {info['runs_dir']}, cache {info['cache']}"
                   + (" (RAGLINE_CACHE)" if "RAGLINE_CACHE" in info["ragline_env"] else "")
                   + f", {_gib(info['free_bytes'])} free there"), soft_wrap=True)
    for k, v in sorted(info["ragline_env"].items()):
        c.print(escape(f"  {k}={v}"), soft_wrap=True)
    c.print(escape("stages: " + (", ".join(info["stages"]) or "none registered")), soft_wrap=True)
    c.print(escape("executors: " + "; ".join(f"{k} {v}" for k, v in info["executors"].items())),
            soft_wrap=True)
    if not rows:
        c.print("requirements: unknown (ragline is not installed as a package: pip install -e .)")
        return 0
    _print_requirements(rows, extras)
    for r in broken:
        c.print(f"[red]✗[/] {escape(r['name'])} {escape(r['installed'] or 'is not installed')}"
                f", ragline needs {escape(r['name'] + r['needs'])}: pip install "
                f"'{escape(r['name'] + r['needs'])}'", soft_wrap=True)
    if cpu_torch:
        c.print(f"[red]✗[/] torch {escape(cpu_torch)} is a CPU-only build on a machine with "
                f"{len(gpus)} GPU(s): a step that puts a model on them is refused; {CUDA_TORCH}",
                soft_wrap=True)
    return 1 if broken or info["cpu_torch_with_gpus"] else 0


def _print_requirements(rows: list[dict], extras: list[str]) -> None:
    """The core requirements one per row, then one row per extra: complete, or what it lacks
    and the command that installs it."""
    from rich.table import Table

    from orchestrator.logs import escape, report

    table = Table(title="packages")
    for col in ("package", "needs", "installed"):
        table.add_column(col)
    for r in rows:
        if r["group"] == "core":
            mark = "" if r["ok"] else " [red]✗[/]"
            table.add_row(escape(r["name"]), escape(r["needs"]),
                          escape(r["installed"] or "not installed") + mark)
    for extra in extras:
        members = [r for r in rows if r["group"] == extra]
        lacking = [r for r in members if not r["ok"]]
        state = ("complete" if not lacking else
                 "lacks " + ", ".join(f"{r['name']}{r['needs']}" + (
                     f" (has {r['installed']})" if r["installed"] else "") for r in lacking)
                 + f": pip install -e '.[{extra}]'")
        table.add_row(escape(f"[{extra}]"), escape(", ".join(r["name"] for r in members)),
                      escape(state))
    report().print(table)
