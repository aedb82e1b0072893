"""The in-process executor: light tasks (no GPU, one shard) run in the runner's own process."""

from __future__ import annotations

from orchestrator.executors.base import Failed, TaskResult, run_reporting
from orchestrator.logs import task_log
from orchestrator.task import Task, one_line


class InProcessExecutor:
    name = "inprocess"

    def __init__(self, store, wait_note=None):
        self.store = store
        self.wait_note = wait_note
        self.jobs: dict[str, str] = {}

    def check_resources(self, steps: list) -> None:
        return None

    def run(self, step, tasks: list[Task]) -> dict[str, TaskResult]:
        out: dict[str, TaskResult] = {}
        for task in tasks:
            try:
                with task_log(task.log):
                    out[task.key] = run_reporting(task, self.store, self.wait_note)
            except OSError as e:  # the log itself cannot be written (read-only or full disk)
                out[task.key] = Failed(one_line(e), task.log)
        return out

    def cancel(self) -> None:
        return None  # Ctrl-C interrupts the stage itself; its temporary directory is removed
