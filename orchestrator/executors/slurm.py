"""The SLURM executor: each shard or GPU step as a SLURM job, through submitit.

Chosen with ``executor=slurm`` on the command line (the config group conf/executor/slurm.yaml,
``ragline.executor.name: slurm``). Job parameters come from the same block: ``partition``,
``timeout_min``, ``cpus_per_task``, ``mem_gb``, ``cluster`` (``slurm``, or ``local`` to run the
jobs as local processes, which is what the tests do), ``array_parallelism`` and ``extra`` (any
other ``slurm_*`` parameter of submitit). GPUs per job come from the step's ``gpus``. Light steps
(one shard, no GPU) still run in the runner's process. The job runs the same task code as a local
worker (``orchestrator.worker.run_logged``), so locking, caching and single flight are unchanged;
the cache and the runs directory must be on a filesystem the nodes share.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.executors.base import Failed, TaskResult, read_result
from orchestrator.task import Task, one_line


def import_submitit():
    try:
        import submitit
    except ImportError:
        raise ConfigError("executor=slurm needs submitit, which is not installed",
                          hint="pip install -e '.[slurm]'") from None
    return submitit


class SlurmExecutor:
    name = "slurm"

    def __init__(self, store, settings: dict, jobs: int = 0):
        import_submitit()  # fail before anything runs, with the extra to install
        self.store = store
        self.params = dict(settings)
        self.max_parallel = jobs or int(self.params.get("array_parallelism") or 64)
        self.jobs: dict[str, str] = {}
        self._running: list = []

    def check_resources(self, steps: list) -> None:
        return None  # the login node may have no GPU; the partition's are checked by SLURM

    def _executor(self, step):
        submitit = import_submitit()
        folder = self.store.root / "tmp" / "slurm"
        ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=self.params.get("cluster"))
        extra = {f"slurm_{k}": v for k, v in (self.params.get("extra") or {}).items()}
        if self.params.get("partition"):
            extra["slurm_partition"] = self.params["partition"]
        ex.update_parameters(name=f"ragline-{step.name}",
                             timeout_min=int(self.params.get("timeout_min") or 24 * 60),
                             cpus_per_task=int(self.params.get("cpus_per_task") or 8),
                             gpus_per_node=step.gpus, tasks_per_node=1,
                             slurm_array_parallelism=self.max_parallel, **extra)
        if self.params.get("mem_gb"):
            ex.update_parameters(mem_gb=int(self.params["mem_gb"]))
        return ex

    def run(self, step, tasks: list[Task]) -> dict[str, TaskResult]:
        from orchestrator.worker import run_logged

        files = []
        try:
            for task in tasks:
                path = Path(task.log).with_suffix(".task.json")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(task.to_json()))
                files.append(path)
        except OSError as e:  # a read-only or full disk: the step fails, the run goes on
            return {t.key: Failed(one_line(e), t.log) for t in tasks}
        jobs = self._executor(step).map_array(run_logged, [str(f) for f in files])
        self._running = list(jobs)
        out: dict[str, TaskResult] = {}
        for job, task, path in zip(jobs, tasks, files):
            self.jobs[task.key] = str(job.job_id)
            out[task.key] = self._result(job, task, path)
        self._running = []
        return out

    def _result(self, job, task: Task, path: Path) -> TaskResult:
        try:
            code = job.result()
        except Exception as e:  # noqa: BLE001 - a job killed, timed out or preempted
            lines = str(e).strip().splitlines()
            result: TaskResult = Failed(f"SLURM job {job.job_id} failed: "
                                        f"{lines[-1] if lines else type(e).__name__}", task.log)
        else:
            result = read_result(Path(f"{path}.result"), code, task.log, f"SLURM job {job.job_id}")
        if isinstance(result, Failed) and f"job {job.job_id}" not in result.message:
            result = Failed(f"{result.message} (job {job.job_id})", result.log, result.traceback)
        for f in (path, Path(f"{path}.result")):
            f.unlink(missing_ok=True)
        return result

    def cancel(self) -> None:
        for job in self._running:
            try:
                job.cancel(check=False)
            except Exception:  # noqa: BLE001 - best effort: the job may be gone already
                pass
