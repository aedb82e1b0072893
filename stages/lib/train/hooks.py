"""What a training run needs from the step that runs it: logger, progress, scratch, device, rank."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ProgressFn = Callable[[int, int], None]


def launcher_rank() -> int:
    """Global rank set by ``accelerate launch``/``torchrun`` (0 without a launcher)."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def single_process_launch(environ=os.environ) -> Iterator[None]:
    """The ``torch.distributed`` variables of a world of one, while a run that no launcher
    started is inside (restored on exit); a process a launcher started keeps its own.

    A step with ``gpus: 1`` runs in-process, without ``torchrun``; DeepSpeed, missing any of
    ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``, looks for an MPI
    launcher instead (and fails without ``mpi4py``).

    >>> env = {}
    >>> with single_process_launch(env):
    ...     sorted(env), env["WORLD_SIZE"]
    (['LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE'], '1')
    >>> env
    {}
    """
    if any(k in environ for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE")):
        yield   # torchrun / accelerate launch set the rest
        return
    single = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    added = {k: v for k, v in single.items() if k not in environ}
    if "MASTER_PORT" not in environ:
        added["MASTER_PORT"] = str(free_port())
    environ.update(added)
    try:
        yield
    finally:
        for k in added:
            environ.pop(k, None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a rendezvous of one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TrainHooks:
    """The run's surroundings, as opposed to its hyper-parameters (``TrainArgs``).

    ``checkpoint_dir``: persistent scratch for resumable checkpoints, shared by every rank
    (``None``: a temporary directory, nothing to resume). ``device``: ``"cuda"``/``"cpu"``
    (``None``: cuda when available). ``is_main``: this process writes the output (rank 0).
    ``progress(step, total)`` is called after every optimizer step; ``callbacks`` are extra
    ``transformers.TrainerCallback`` instances.
    """

    log: logging.Logger = field(default_factory=lambda: logging.getLogger("stages.lib.train"))
    progress: ProgressFn | None = None
    checkpoint_dir: Path | None = None
    device: str | None = None
    is_main: bool = field(default_factory=lambda: launcher_rank() == 0)
    callbacks: list[Any] = field(default_factory=list)

    @classmethod
    def from_context(cls, ctx: Any) -> TrainHooks:
        """Hooks for a stage: its log, progress lines, ``scratch/trainer``, device and rank."""
        return cls(log=ctx.log, progress=progress_callback(ctx.progress, f"{ctx.step} steps"),
                   checkpoint_dir=ctx.scratch / "trainer", device=ctx.device,
                   is_main=getattr(ctx, "is_main_process", launcher_rank() == 0))


def progress_callback(wrap: Callable, desc: str) -> ProgressFn:
    """Adapt an iterable wrapper such as ``ctx.progress(iterable, total=, desc=)`` to a
    ``progress(step, total)`` callable."""
    state: dict[str, Any] = {"it": None, "done": 0}

    def progress(step: int, total: int) -> None:
        if state["it"] is None:
            state["it"] = iter(wrap(range(total), total=total, desc=desc))
        while state["done"] < min(step, total):
            next(state["it"], None)
            state["done"] += 1
        if step >= total:
            for _ in state["it"]:  # finish the bar (its last log line)
                pass

    return progress
