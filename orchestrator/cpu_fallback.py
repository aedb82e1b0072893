"""A recipe whose steps ask for GPUs, on a machine without one: one refusal naming every such
step, with the overrides that run them all on the CPU, at the keys that set their GPUs.

A paper recipe sets its GPUs in one or two places (``hw.gpus: 1``, ``hw.train_gpus: 8``) that
many steps read through ``${hw.gpus}``. Refusing step by step, each hint naming that step's own
``steps.X.gpus=0``, sent a user trying the recipe on a laptop through eight runs and eight
overrides, where ``hw.gpus=0 hw.train_gpus=0`` does it in one.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import ConfigError

SHOWN = 6   # step names listed before "and N more"


def no_gpu_refusal(recipe: Path, steps: list, overrides: list[str] | None = None
                   ) -> ConfigError | None:
    """``None`` when no step of ``steps`` asks for a GPU or this machine shows one; else the
    error to stop at, before anything runs (the local executor's case: a cluster executor
    checks its own nodes). ``overrides``: the command line's."""
    from orchestrator.executors.gpus import visible_gpus
    from orchestrator.where import step_key, value_key

    wanting = [s for s in steps if s.gpus]
    if not wanting or visible_gpus():
        return None
    keys: list[str] = []
    for step in wanting:
        key = value_key(Path(recipe), f"{step_key(Path(recipe), step.name)}.gpus", overrides)
        if key not in keys:
            keys.append(key)
    hint = f"run on CPU with {' '.join(f'{k}=0' for k in keys)}, or use a GPU machine"
    if len(wanting) == 1:
        step = wanting[0]
        return ConfigError(f"steps.{step.name}.gpus: {step.gpus} GPU(s) per shard asked for, but "
                           "no CUDA GPU is visible on this machine", hint=hint)
    names = ", ".join(s.name for s in wanting[:SHOWN]) + (
        f" and {len(wanting) - SHOWN} more" if len(wanting) > SHOWN else "")
    return ConfigError(f"{len(wanting)} steps ask for GPUs ({names}), but no CUDA GPU is visible "
                       "on this machine", hint=hint)
