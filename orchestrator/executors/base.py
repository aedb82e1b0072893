"""The executor protocol, its task results, and the one failure policy every executor shares.

An executor runs the tasks of one step (a step's shards, or its single task) and reports, per task
key, what happened::

    class Executor(Protocol):
        name: str
        def check_resources(self, steps: list[Step]) -> None   # before anything runs; ConfigError
        def run(self, step: Step, tasks: list[Task]) -> dict[str, TaskResult]
        def cancel(self) -> None                             # stop what runs now (Ctrl-C, SIGTERM)
        jobs: dict[str, str]                                 # task key -> scheduler job id
        on_submitted: Callable[[dict[str, str]], None] | None  # set by the runner

An executor that hands tasks to a scheduler calls ``report_submitted(self, {key: job_id})`` as
soon as they are submitted: the ids land in ``jobs`` and the runner's ``on_submitted`` writes
them to the run record while the jobs run, so a killed driver's jobs can still be cancelled.

``TaskResult`` is ``Done`` (computed and committed), ``Reused`` (another process committed the key
meanwhile) or ``Failed(message, log)``. Whatever runs the task (this process, a local worker, a
SLURM job, a Ray actor) calls ``run_reporting``: the traceback goes to the task's log, the result
carries one line for the user (and the traceback, shown when ``RAGLINE_FULL_ERROR=1``), a
``RagError``'s hint, and whether the stage refused its input or config (``bad_input``: rerunning
as is fails the same way; not so a ``StageOutputError``, whose stage's code must change).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, Union

from orchestrator.errors import ConfigError, DataError, RagError
from orchestrator.task import Task, name_inputs, one_line, run_task


@dataclass(frozen=True)
class Done:
    """Computed and committed by this run."""


@dataclass(frozen=True)
class Reused:
    """Committed by another process while this run waited for the key's lock."""


@dataclass(frozen=True)
class Failed:
    message: str              # one line for the terminal
    log: str = ""             # the task's log, holding the traceback
    traceback: str = ""       # shown on the terminal with RAGLINE_FULL_ERROR=1
    jobs: list[str] = field(default_factory=list)
    bad_input: bool = False   # a DataError or ConfigError: the user must fix an input first
    hint: str = ""            # a RagError's next step (e.g. how to fix a stage's return value)


TaskResult = Union[Done, Reused, Failed]


class Executor(Protocol):
    name: str
    jobs: dict[str, str]      # task key -> scheduler job id (empty for local processes)
    on_submitted: Callable[[dict[str, str]], None] | None   # the runner's; report_submitted

    def check_resources(self, steps: list) -> None: ...

    def run(self, step, tasks: list[Task]) -> dict[str, TaskResult]: ...

    def cancel(self) -> None: ...


def report_submitted(executor, ids: dict[str, str]) -> None:
    """Task key -> job id of tasks just submitted: kept in ``executor.jobs`` and passed to the
    runner's ``executor.on_submitted`` at once (it saves them in status.json), not when the
    step ends: a driver killed meanwhile leaves the ids of the jobs still to cancel.

    >>> from types import SimpleNamespace
    >>> seen = []
    >>> ex = SimpleNamespace(jobs={}, on_submitted=seen.append)
    >>> report_submitted(ex, {"k1": "471_0", "k2": "471_1"})
    >>> ex.jobs["k2"], seen
    ('471_1', [{'k1': '471_0', 'k2': '471_1'}])
    """
    executor.jobs.update(ids)
    callback = getattr(executor, "on_submitted", None)
    if callback is None or not ids:
        return
    try:
        callback(dict(ids))
    except OSError as e:   # a full disk must not stop jobs already running; the step end retries
        logging.getLogger("ragline").warning("could not record job ids %s (%s)",
                                             ", ".join(ids.values()), e.strerror or e)


def run_reporting(task: Task, store, wait_note=None, main_process: bool = True) -> TaskResult:
    """Run one task; any failure becomes ``Failed`` with the traceback appended to its log.

    KeyboardInterrupt (Ctrl-C, or SIGTERM turned into it) is not a task failure: it propagates.
    """
    try:
        _, reused = run_task(task, store, wait_note=wait_note, main_process=main_process)
        return Reused() if reused else Done()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - any stage failure is reported, not raised
        tb = traceback.format_exc()
        if task.log:
            Path(task.log).parent.mkdir(parents=True, exist_ok=True)
            with open(task.log, "a") as f:
                f.write(f"{task.label} failed:\n{tb}")
        # a StageOutputError (the stage returned what its outputs cannot hold) is a RagError but
        # not bad input: the stage's code must change, not its input
        return Failed(name_inputs(one_line(e, task.cache_root), task.inputs), task.log, tb,
                      bad_input=isinstance(e, (DataError, ConfigError)),
                      hint=(e.hint or "") if isinstance(e, RagError) else "")


def result_to_json(result: TaskResult) -> dict:
    """A result as JSON, for a worker process or a cluster job to hand back to the runner."""
    if isinstance(result, Failed):
        return {"state": "failed", **asdict(result)}
    return {"state": "reused" if isinstance(result, Reused) else "done"}


def result_from_json(data: dict) -> TaskResult:
    if data.get("state") == "done":
        return Done()
    if data.get("state") == "reused":
        return Reused()
    return Failed(data.get("message", "failed"), data.get("log", ""), data.get("traceback", ""),
                  bad_input=data.get("bad_input") is True, hint=str(data.get("hint") or ""))


def read_result(path: Path, returncode: int, log: str, what: str = "worker") -> TaskResult:
    """The result file a worker wrote, or a failure naming the exit code when it wrote none
    (killed, out of memory, a crash before Python could report)."""
    try:
        return result_from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        pass
    if returncode < 0:
        return Failed(f"{what} killed by signal {_signal_words(-returncode)}", log)
    return Failed(f"{what} exited with code {returncode} without a result; see its log", log)


def _signal_words(number: int) -> str:
    """A signal as a failure names it; SIGKILL, what the kernel's out-of-memory killer sends,
    says where to look.

    >>> _signal_words(9), _signal_words(11)
    ('9 (SIGKILL: out of memory? see dmesg or journalctl -k)', '11 (SIGSEGV)')
    """
    import signal

    try:
        name = signal.Signals(number).name
    except ValueError:
        return str(number)
    oom = ": out of memory? see dmesg or journalctl -k" if number == signal.SIGKILL else ""
    return f"{number} ({name}{oom})"
