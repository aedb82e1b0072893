"""The local executor: one worker process per task, GPUs handed out through CUDA_VISIBLE_DEVICES.

Eight shards on eight GPUs with ``gpus: 1`` run as eight workers, each seeing one device; with
``gpus: 2`` four run at a time on disjoint pairs. A step with ``gpus: N > 1`` and one shard runs
as N ranks under ``torchrun --standalone`` (data-parallel training; rank 0 commits).
On a machine without GPUs, shards run on CPU, ``max_parallel`` at a time (default: one per core),
with the cores split between them.

Workers run in their own process group and die with the runner (``PR_SET_PDEATHSIG``, which the
worker sets first thing, exiting if the runner is already gone; for torchrun a shim sets it and
then execs torchrun, ``executors/pdeathsig.py``): a SIGKILLed ``rag run`` leaves no worker
holding a GPU or a lock. ``cancel()`` (Ctrl-C, SIGTERM) sends SIGTERM to every group, waits
``RAGLINE_STOP_GRACE_S`` (default 10 s) and then SIGKILLs what is left.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.executors.base import Failed, TaskResult, read_result
from orchestrator.executors.gpus import runs_as_ranks, visible_gpus, warn_cpu_only_torch
from orchestrator.executors.pdeathsig import bound_to_parent
from orchestrator.task import Task, one_line


def check_gpus(steps: list, have: list[int]) -> None:
    """A step that asks for more GPUs than this machine shows fails before anything runs."""
    for step in steps:
        g, name = step.gpus, step.name
        if not g:
            continue
        if not have:
            raise ConfigError(f"steps.{name}.gpus: {g} GPU(s) per shard asked for, but no CUDA "
                              "GPU is visible on this machine",
                              hint=f"run on CPU with steps.{name}.gpus=0, or use a GPU machine")
        if g > len(have):
            raise ConfigError(f"steps.{name}.gpus: {g} GPUs per shard asked for, only {len(have)} "
                              "visible", hint=f"lower it: steps.{name}.gpus={len(have)}")


class LocalExecutor:
    name = "local"

    def __init__(self, store, settings: dict, jobs: int = 0):
        self.store = store
        self.max_parallel = jobs or int(settings.get("max_parallel") or 0) or (os.cpu_count() or 1)
        self.jobs: dict[str, str] = {}
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    def check_resources(self, steps: list) -> None:
        if any(s.gpus for s in steps):
            have = visible_gpus()
            check_gpus(steps, have)
            warn_cpu_only_torch(tuple(s.name for s in steps if s.gpus), len(have))

    def slots(self, step) -> list[list[int]]:
        """Disjoint GPU sets, one per concurrently running shard; CPU: ``max_parallel`` empty sets."""
        if step.gpus == 0:
            return [[] for _ in range(max(1, min(self.max_parallel, step.shards)))]
        gpus, g = visible_gpus(), step.gpus
        return [gpus[i * g:(i + 1) * g] for i in range(len(gpus) // g)]

    def command(self, step, task_file: Path) -> list[str]:
        """One worker; a multi-GPU step (one shard) as ``gpus`` ranks under torchrun, on a free
        rendezvous port (``--standalone``), each rank seeing every GPU of the slot, unless its
        stage asks for one process over all of them (``multi_gpu="one_process"``: an inference
        engine with tensor parallelism)."""
        if runs_as_ranks(step):
            return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", str(step.gpus), "-m", "orchestrator.worker", str(task_file)]
        return [sys.executable, "-m", "orchestrator.worker", str(task_file)]

    def run(self, step, tasks: list[Task]) -> dict[str, TaskResult]:
        slots = self.slots(step)
        free: queue.Queue = queue.Queue()
        for s in slots:
            free.put(s)
        threads = max(1, (os.cpu_count() or 1) // len(slots)) if step.gpus == 0 else None
        self._cancelled.clear()
        pool = ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix=f"ragline-{step.name}")
        try:
            futures = {t.key: pool.submit(self._run_one, step, t, free, threads) for t in tasks}
            return {key: f.result() for key, f in futures.items()}
        except BaseException:
            self.cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_one(self, step, task: Task, free: queue.Queue, threads: int | None) -> TaskResult:
        gpus = free.get()
        task_file = Path(task.log).with_suffix(".task.json")
        result_file = Path(f"{task_file}.result")
        try:
            if self._cancelled.is_set():
                return Failed("cancelled", task.log)
            task.gpus = gpus
            env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(map(str, gpus)))
            if threads:
                env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
            try:
                task_file.parent.mkdir(parents=True, exist_ok=True)
                task_file.write_text(json.dumps(task.to_json()))
                result_file.unlink(missing_ok=True)
                with open(task.log, "ab") as logf:
                    proc = self._start(step, task_file, logf, env)
            except OSError as e:  # a read-only or full disk: a failed task, not a crashed run
                return Failed(one_line(e), task.log)
            rc = proc.wait()
            with self._lock:
                self._procs.discard(proc)
            return read_result(result_file, rc, task.log)
        finally:
            for f in (task_file, result_file):
                try:
                    f.unlink(missing_ok=True)
                except OSError:
                    pass
            free.put(gpus)

    def _start(self, step, task_file: Path, logf, env: dict) -> subprocess.Popen:
        with self._lock:
            if self._cancelled.is_set():
                raise OSError("cancelled")
            # The worker asks for PR_SET_PDEATHSIG itself and exits if RAGLINE_DRIVER_PID is no
            # longer its parent (no preexec_fn: in this threaded process it can hang the child
            # between fork and exec, and Popen, holding the lock cancel() needs, with it).
            # torchrun, which is not our worker, is started through the pdeathsig shim.
            argv = self.command(step, task_file)
            if runs_as_ranks(step):
                argv = bound_to_parent(argv, signal.SIGTERM)
            proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                    env={**env, "RAGLINE_DRIVER_PID": str(os.getpid())},
                                    start_new_session=True)
            self._procs.add(proc)
        return proc

    def cancel(self) -> None:
        """Stop every running worker: SIGTERM to its group, then SIGKILL after the grace time."""
        self._cancelled.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + float(os.environ.get("RAGLINE_STOP_GRACE_S", "10"))
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
