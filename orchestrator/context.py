"""``StageContext``: what a running stage may know about its task (shard, GPUs, dirs, log)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class StageContext:
    """Run context of one task. See docs/writing-stages.md for the contract."""

    def __init__(self, step: str, shard_index: int, num_shards: int, workdir: Path,
                 scratch: Path, log: logging.Logger, gpus: list[int] | None = None,
                 show_progress: bool = False, is_main_process: bool = True,
                 answers: Path | None = None, forced: bool = False):
        self.step = step
        self.shard_index = shard_index
        self.num_shards = num_shards
        self.workdir = workdir
        self._scratch = scratch
        self.log = log
        self.gpus = list(gpus or [])
        self.show_progress = show_progress
        # False on the non-main ranks of a multi-process (data-parallel) task: they compute into
        # the same scratch directory and their outputs are not committed; write final files and
        # reports only where this is True.
        self.is_main_process = is_main_process
        self._device: str | None = None
        self._answers = answers
        # recomputed on purpose (--force, --from): a stage asks its LLM server again rather
        # than reading the answers other steps share (``answers``; open_client's refresh)
        self.forced = forced

    @property
    def device(self) -> str:
        """``"cuda"`` when this task was given GPUs, ``"cpu"`` when it was given none.

        A task given GPUs whose torch sees no CUDA device (a CPU-only build, or a node whose
        driver torch cannot use) is refused here, before the stage loads a model: it used to run
        on the CPU without a word, where an 8-GPU training step would take days. On Ray and
        SLURM nodes this is the first place that can tell."""
        if self._device is None:
            self._device = "cpu"
            if self.gpus:
                import torch

                if not torch.cuda.is_available():
                    raise _no_cuda(self.step, self.gpus, torch.__version__)
                self._device = "cuda"
        return self._device

    @property
    def scratch(self) -> Path:
        """A directory that survives a crash of this task (e.g. trainer checkpoints to resume).

        Every shard of a sharded step, under any ``shards:``, gets the same directory (so a
        request cache kept here is not lost when ``shards:`` changes after a crash): a sharded
        stage names its files there by content, as the request cache does, never by shard.
        """
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    @property
    def answers(self) -> Path:
        """The cache's folder of paid answers (``<cache>/answers``), shared by every step, sweep
        member and run: a remote LLM endpoint's replies kept by request (the endpoint client
        does this), so a request paid for once is not asked again when another setting of the
        step changes. ``rag gc`` removes answers unused for ``--keep-answers-days`` (30)."""
        path = self._answers if self._answers is not None else self._scratch / "answers"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def new_dir(self, name: str = "out") -> Path:
        """A fresh empty directory for a directory output."""
        path = self.workdir / "new" / name
        path.mkdir(parents=True, exist_ok=False)
        return path

    def progress(self, iterable: Iterable[T], total: int | None = None,
                 desc: str | None = None) -> Iterator[T]:
        """Iterate with a progress bar on the terminal and progress lines in the step's log."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        desc = desc or self.step
        bar = None
        if self.show_progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
        start, last, every = time.monotonic(), 0.0, 10.0
        for i, item in enumerate(iterable, 1):
            yield item
            if bar is not None:
                bar.update(1)
            now = time.monotonic()
            if now - last >= every or (total and i == total):
                last = now
                rate = i / max(now - start, 1e-9)
                frac = f"{i}/{total}" if total else str(i)
                self.log.info("%s: %s (%.1f/s)", desc, frac, rate)
        if bar is not None:
            bar.close()



def _no_cuda(step: str, gpus: list, version: str):
    """The refusal of a task given ``gpus`` whose torch sees no CUDA device."""
    import os

    from orchestrator.errors import RagError
    from orchestrator.executors.gpus import CUDA_TORCH

    cpu_only = version.endswith("+cpu")
    why = (f"torch {version} is a CPU-only build" if cpu_only else
           f"torch {version} sees no CUDA device (CUDA_VISIBLE_DEVICES="
           f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}; is the driver loaded? nvidia-smi)")
    return RagError(f"step '{step}' was given GPU(s) {', '.join(map(str, gpus))} but {why}, so "
                    "it cannot use them (refused rather than run on the CPU)",
                    hint=(CUDA_TORCH if cpu_only else "fix the node's driver or CUDA_VISIBLE_DEVICES")
                    + f"; or run it on the CPU with steps.{step}.gpus=0")
