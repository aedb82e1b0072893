"""GPUs: those this process may hand to tasks (found without importing torch), how a step with
``gpus: N`` runs (one process per shard, or a gang of ranks), and the one check of a GPU step
against a cluster's nodes that the Ray and SLURM executors share."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from collections.abc import Callable

from orchestrator.errors import ConfigError


def gpu_driver_present() -> bool:
    """An NVIDIA driver is loaded on this machine (device nodes or the driver's /proc entry)."""
    return Path("/proc/driver/nvidia/gpus").is_dir() or any(Path("/dev").glob("nvidia[0-9]*"))


def visible_gpus() -> list[int | str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` (only where a GPU driver is
    present: on a machine without one, ``CUDA_VISIBLE_DEVICES=0`` names no real device), else
    what ``nvidia-smi`` lists. Entries are indices, or the ``GPU-``/``MIG-`` UUIDs CUDA also
    accepts (container runtimes and MIG set those), kept as given."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [int(x) if x.isdigit() else x for x in (p.strip() for p in env.split(","))
               if x.isdigit() or x.startswith(("GPU-", "MIG-"))]
        return ids if ids and gpu_driver_present() else []
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [int(x) for x in out.split() if x.strip().isdigit()]


def cpu_only_torch() -> str | None:
    """The installed torch's version when it is a CPU-only build (``2.13.0+cpu``), else None
    (a CUDA build, or no torch). Read from its metadata: torch is not imported."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("torch")
    except PackageNotFoundError:
        return None
    return installed if installed.endswith("+cpu") else None


_WARNED: list[str] = []   # the CPU-only torch warned about in this process
CUDA_TORCH = ("install a CUDA build of torch (the default torch wheel on PyPI for Linux x86_64, "
              "or pytorch.org's CUDA index)")


def warn_cpu_only_torch(steps: tuple[str, ...], gpus: int) -> None:
    """Warn, once per process (a run, a sweep, a plan), that GPU steps will meet a CPU-only
    torch: they would fail only at their first CUDA call, after their data is read and their
    model loaded. A warning, not a refusal: a stage may use the GPUs without torch."""
    version = cpu_only_torch()
    if version is None or _WARNED:
        return
    _WARNED.append(version)
    named = ", ".join(steps[:3]) + (f" and {len(steps) - 3} more" if len(steps) > 3 else "")
    who = f"steps {named} ask" if len(steps) > 1 else f"step {named} asks"
    logging.getLogger("ragline").warning(
        "%s for GPUs and this machine shows %d, but the installed torch %s is a CPU-only "
        "build: a step that puts a model on its GPUs is refused when it starts; %s and check "
        "with rag env", who, gpus,
        version, CUDA_TORCH)


def runs_as_ranks(step) -> bool:
    """A multi-GPU step of one shard runs as a gang of ranks (data-parallel training), unless its
    stage asks for one process that sees all the GPUs (``multi_gpu="one_process"``: an inference
    engine with tensor parallelism), which is placed like a shard with ``gpus`` GPUs.

    >>> from types import SimpleNamespace as S
    >>> runs_as_ranks(S(gpus=4, shards=1, stage=S(multi_gpu="ranks"))), runs_as_ranks(S(gpus=4, shards=2))
    (True, False)
    >>> runs_as_ranks(S(gpus=4, shards=1, stage=S(multi_gpu="one_process")))
    False
    """
    mode = getattr(getattr(step, "stage", None), "multi_gpu", "ranks")
    return step.gpus > 1 and step.shards == 1 and mode == "ranks"


def check_node_gpus(steps: list, gpus_per_node: Callable[[], list[int]],
                    split_gang: Callable[[int, list[int]], object],
                    too_many: Callable[[object, list[int]], ConfigError],
                    no_gpus: Callable[[object, list[int]], ConfigError] | None = None) -> None:
    """The GPU steps of ``steps`` against a cluster's GPUs per node (never this machine's: a login
    node without GPUs submits GPU steps). Asks ``gpus_per_node()`` only when a step wants GPUs.

    * ``no_gpus(step, per_node)`` is raised when no node has a GPU (when given);
    * a step that runs one process per shard (or one process over all its GPUs) must fit on one
      node, else ``too_many(step, per_node)`` is raised;
    * a gang of ranks must be split by ``split_gang(gpus, per_node)``; its ``ConfigError`` is
      raised again under the step's key.

    >>> from types import SimpleNamespace as S
    >>> def too_many(step, per_node): return ConfigError(f"{step.name}: over {max(per_node)}")
    >>> check_node_gpus([S(name="m", gpus=8, shards=4)], lambda: [4, 4], None, too_many)
    Traceback (most recent call last):
    orchestrator.errors.ConfigError: m: over 4
    """
    wanted = [s for s in steps if s.gpus]
    if not wanted:
        return
    per_node = gpus_per_node()
    for step in wanted:
        if no_gpus is not None and not any(per_node):
            raise no_gpus(step, per_node)
        if not runs_as_ranks(step):
            if step.gpus > max(per_node, default=0):
                raise too_many(step, per_node)
            continue
        try:
            split_gang(step.gpus, per_node)
        except ConfigError as e:
            raise ConfigError(f"steps.{step.name}.gpus: {e.message}",
                              hint="ask for a multiple of a node's GPU count") from None
