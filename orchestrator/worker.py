"""Worker process: ``python -m orchestrator.worker TASK.json`` runs one task (a shard, a GPU step).

Started by the local executor with ``CUDA_VISIBLE_DEVICES`` set, stdout/stderr appended to the
task's log file. Exit 0 when the entry is committed (or was already cached); otherwise exit 1
and write the one-line reason to ``TASK.json.error`` for the runner to print. Under a
multi-process launcher (accelerate/torchrun) every rank runs the stage, and only rank 0 commits.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    from orchestrator.logs import worker_logging
    from orchestrator.store import Store
    from orchestrator.task import Task, one_line, run_task

    task_file = Path(argv[0])
    task = Task(**json.loads(task_file.read_text()))
    worker_logging(task.log)
    rank = int(os.environ.get("RANK", "0"))
    try:
        if rank != 0:
            task.force, task.key = True, f"{task.key}-rank{rank}"  # compute, never share
        entry, _ = run_task(task, Store(task.cache_root))
        if rank != 0:
            import shutil

            shutil.rmtree(entry.path, ignore_errors=True)
        return 0
    except BaseException as e:  # noqa: BLE001 - report every failure to the runner in one line
        logging.getLogger("ragline").error("%s failed:\n%s", task.label, traceback.format_exc())
        Path(f"{task_file}.error").write_text(one_line(e))
        return 1


def run_logged(task_file: str) -> int:
    """``main`` with stdout and stderr appended to the task's log (for jobs of a cluster
    scheduler, whose own output files would otherwise hold the log)."""
    import contextlib

    log_path = json.loads(Path(task_file).read_text())["log"]
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        root = logging.getLogger()
        for h in list(root.handlers):
            root.removeHandler(h)
        return main([task_file])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
