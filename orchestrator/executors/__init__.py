"""Executors: where a step's tasks run. One protocol (``base.Executor``), one failure policy.

``make_executor`` reads the recipe's ``ragline.executor`` block (config group conf/executor/,
``name: local | slurm | ray``) and returns a ``Router``: light steps (no GPU, one shard) run in the
runner's process, everything else goes to the configured executor. ``isolate: always`` sends
every step to it, ``never`` keeps sharded CPU steps in-process too.
"""

from __future__ import annotations

from orchestrator.errors import ConfigError, did_you_mean
from orchestrator.executors.base import Done, Executor, Failed, Reused, TaskResult  # noqa: F401

EXECUTORS = ("local", "slurm", "ray")
KEYS = {"local": {"name", "isolate", "max_parallel"},
        "slurm": {"name", "isolate", "cluster", "partition", "account", "qos", "constraint", "time",
                  "timeout_min", "cpus_per_task", "mem_gb", "array_parallelism", "sbatch", "extra",
                  "setup", "heartbeat_s", "env"},
        "ray": {"name", "isolate", "address", "num_cpus", "num_gpus", "cpus_per_task",
                "autoscaling", "env"}}


def executor_settings(settings: dict) -> dict:
    """The executor block, from ``ragline.executor`` (a mapping, or just a name) and the older
    top-level ``ragline.isolate``/``max_parallel``/``slurm`` keys (the mapping wins).

    >>> executor_settings({"executor": {"name": "slurm", "partition": "gpu"}, "isolate": "auto"})
    {'name': 'slurm', 'isolate': 'auto', 'partition': 'gpu'}
    """
    block = settings.get("executor")
    block = dict(block) if isinstance(block, dict) else {"name": block or "local"}
    legacy = {k: settings[k] for k in ("isolate", "max_parallel") if k in settings}
    if block.get("name", "local") != "local":
        legacy.pop("max_parallel", None)  # a local-executor setting
    if block.get("name", "local") == "slurm":
        legacy.update(settings.get("slurm") or {})
    out = {"name": block.pop("name", None) or "local", **legacy, **block}
    _check(out)
    return out


def _check(block: dict) -> None:
    name = block["name"]
    if name not in EXECUTORS:
        raise ConfigError(f"ragline.executor.name: unknown executor '{name}'"
                          f"{did_you_mean(str(name), EXECUTORS)}",
                          hint=f"use one of: {', '.join(EXECUTORS)}")
    for key in block:
        if key not in KEYS[name]:
            raise ConfigError(f"ragline.executor.{key}: not a setting of the {name} executor"
                              f"{did_you_mean(key, KEYS[name])}",
                              hint=f"{name} takes: {', '.join(sorted(KEYS[name]))}")
    if block.get("isolate", "auto") not in ("auto", "always", "never"):
        raise ConfigError(f"ragline.executor.isolate: expected auto, always or never, got "
                          f"{block['isolate']!r}")
    for key, kinds in (("max_parallel", int), ("array_parallelism", int),
                       ("cpus_per_task", (int, float)), ("num_cpus", (int, float)),
                       ("num_gpus", (int, float))):   # Ray takes fractions of a CPU
        value = block.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)
                                  or value < 0):
            expected = "a whole number" if kinds is int else "a number"
            raise ConfigError(f"ragline.executor.{key}: expected {expected}, 0 or more, got "
                              f"{value!r}")
    if not isinstance(block.get("autoscaling", False), bool):
        raise ConfigError(f"ragline.executor.autoscaling: expected true or false, got "
                          f"{block['autoscaling']!r}")
    if name == "slurm":
        _check_slurm(block)


def _check_slurm(block: dict) -> None:
    """The job settings sbatch would refuse mid-run, refused before any step runs (and by
    ``rag plan --check``): ``time`` in a form sbatch takes, ``mem_gb`` a number above 0."""
    from orchestrator.executors.slurm import time_minutes

    for key in ("time", "timeout_min"):
        if block.get(key) is None:
            continue
        try:
            time_minutes(block[key])
        except ValueError:
            raise ConfigError(f"ragline.executor.{key}: {block[key]!r} is not minutes, MM:SS, "
                              "HH:MM:SS or D-HH:MM:SS",
                              hint=f"e.g. ragline.executor.{key}=8:00:00 (8 hours) or 480 "
                                   "(minutes)") from None
    mem = block.get("mem_gb")
    if mem is not None and (isinstance(mem, bool) or not isinstance(mem, (int, float))
                            or mem <= 0):
        raise ConfigError(f"ragline.executor.mem_gb: expected a number of GB above 0, got {mem!r}",
                          hint="e.g. ragline.executor.mem_gb=32, or null for the partition's "
                               "default")


class Router:
    """Light steps in-process, the rest to ``heavy``; itself an ``Executor``."""

    def __init__(self, inprocess, heavy, isolate: str = "auto"):
        self.inprocess, self.heavy, self.isolate = inprocess, heavy, isolate
        self.name = heavy.name
        self.jobs = heavy.jobs
        self.connects = getattr(heavy, "connects", False)  # check_resources attaches to a cluster

    @property
    def on_submitted(self):
        return getattr(self.heavy, "on_submitted", None)

    @on_submitted.setter
    def on_submitted(self, callback) -> None:   # the runner's: job ids to the run record
        self.heavy.on_submitted = callback

    def in_process(self, step) -> bool:
        if self.isolate == "always":
            return False
        if self.isolate == "never":
            return step.gpus == 0
        return step.gpus == 0 and step.shards == 1

    def check_resources(self, steps: list) -> None:
        self.heavy.check_resources([s for s in steps if not self.in_process(s)])

    def run(self, step, tasks) -> dict[str, TaskResult]:
        return (self.inprocess if self.in_process(step) else self.heavy).run(step, tasks)

    def cancel(self) -> None:
        self.heavy.cancel()
        self.inprocess.cancel()


def make_executor(store, settings: dict, jobs: int = 0, wait_note=None) -> Router:
    """The executor a recipe's ``ragline`` settings name (``ConfigError`` before anything runs)."""
    from orchestrator.executors.inprocess import InProcessExecutor

    block = executor_settings(settings)
    if block["name"] == "slurm":
        from orchestrator.executors.slurm import SlurmExecutor

        heavy = SlurmExecutor(store, block, jobs)
    elif block["name"] == "ray":
        from orchestrator.executors.ray import RayExecutor

        heavy = RayExecutor(store, block, jobs)
    else:
        from orchestrator.executors.local import LocalExecutor

        heavy = LocalExecutor(store, block, jobs)
    return Router(InProcessExecutor(store, wait_note), heavy, block.get("isolate", "auto"))
