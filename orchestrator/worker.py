"""Worker process: ``python -m orchestrator.worker TASK.json`` runs one task (a shard, a GPU step).

Started by the local executor in its own process group, with ``CUDA_VISIBLE_DEVICES`` set and
stdout/stderr appended to the task's log. It writes ``TASK.json.result`` (done, reused, or the
failure's one line and traceback) and exits 0, or 1 for a failed task. It dies with its parent
(``PR_SET_PDEATHSIG``), and SIGTERM stops it like Ctrl-C: the stage is interrupted, its temporary
directory removed and the key's lock released. Under a multi-process launcher (accelerate,
torchrun) every rank runs the stage into the same scratch directory; only rank 0 commits.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent (thread) exits; no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def driver_gone() -> bool:
    """True when the runner that started this worker died before ``die_with_parent`` ran (the
    runner names itself in ``RAGLINE_DRIVER_PID``; under torchrun the parent is torchrun)."""
    driver = os.environ.get("RAGLINE_DRIVER_PID")
    if not driver or "LOCAL_RANK" in os.environ:
        return False
    return os.getppid() != int(driver)


def stop_on_sigterm() -> None:
    """SIGTERM (the runner stopping us, our parent gone, a scheduler) behaves like Ctrl-C."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str], local: bool = True) -> int:
    from orchestrator.executors.base import Failed, result_to_json, run_reporting
    from orchestrator.logs import worker_logging
    from orchestrator.store import Store
    from orchestrator.task import Task

    if local:  # a cluster job keeps its scheduler's own signal handling
        die_with_parent()
        stop_on_sigterm()
        if driver_gone():
            return 143
    task_file = Path(argv[0])
    task = Task(**json.loads(task_file.read_text()))
    if not task.gpus:   # a SLURM job or Ray task: its scheduler, not the driver, chose the GPUs
        from orchestrator.executors.gpus import visible_gpus

        task.gpus = visible_gpus()
    worker_logging(task.log)
    rank = int(os.environ.get("RANK", "0"))
    try:
        result = run_reporting(task, Store(task.cache_root), main_process=rank == 0)
    except KeyboardInterrupt:
        logging.getLogger("ragline").warning("%s: stopped", task.label)
        return 143
    if rank == 0:
        Path(f"{task_file}.result").write_text(json.dumps(result_to_json(result)))
    return 1 if isinstance(result, Failed) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
