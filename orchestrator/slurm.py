"""The SLURM executor: each shard or GPU step as a SLURM job, through submitit.

Chosen with ``ragline: {executor: slurm}`` in a recipe (or ``executor=slurm`` from the command
line, see conf/executor/). Job parameters come from ``ragline.slurm``: ``partition``,
``timeout_min``, ``cpus_per_task``, ``mem_gb``, ``cluster`` (``slurm``, or ``local`` to run the
jobs as local processes, which is what the tests do) and ``extra`` (any other ``slurm_*``
parameter of submitit). GPUs per job come from the step's ``gpus``. Light steps (one shard, no
GPU) still run in the runner's process. The job runs the same task code as a local worker, so
locking, caching and single flight are unchanged; the cache directory must be on a filesystem the
nodes share.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.store import Store


class SlurmExecutor:
    def __init__(self, store: Store, settings: dict, jobs: int = 0):
        self.store = store
        self.params = dict(settings.get("slurm") or {})
        self.max_parallel = jobs or int(self.params.get("array_parallelism", 64))

    def in_process(self, step, tasks) -> bool:
        return step.gpus == 0 and step.shards == 1

    def run_workers(self, step, tasks, make_failure) -> dict[str, object]:
        import submitit

        from orchestrator.worker import run_logged

        folder = self.store.root / "tmp" / "slurm"
        ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=self.params.get("cluster"))
        extra = {f"slurm_{k}": v for k, v in (self.params.get("extra") or {}).items()}
        if self.params.get("partition"):
            extra["slurm_partition"] = self.params["partition"]
        ex.update_parameters(name=f"ragline-{step.name}",
                             timeout_min=int(self.params.get("timeout_min", 24 * 60)),
                             cpus_per_task=int(self.params.get("cpus_per_task", 8)),
                             gpus_per_node=step.gpus, tasks_per_node=1,
                             slurm_array_parallelism=self.max_parallel, **extra)
        if self.params.get("mem_gb"):
            ex.update_parameters(mem_gb=int(self.params["mem_gb"]))
        task_dir = self.store.root / "tmp" / "tasks"
        task_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for task in tasks:
            path = task_dir / f"{task.key}.slurm.json"
            path.write_text(json.dumps(task.to_json()))
            files.append(str(path))
        jobs = ex.map_array(run_logged, files)
        out: dict[str, object] = {}
        for job, task, path in zip(jobs, tasks, files):
            try:
                code = job.result()
            except Exception as e:  # noqa: BLE001 - a job killed, timed out or preempted
                code, err = 1, f"SLURM job {job.job_id} failed: {str(e).strip().splitlines()[-1]}"
            else:
                err = ""
            error_file = Path(f"{path}.error")
            if code == 0:
                out[task.key] = "done"
            else:
                msg = error_file.read_text() if error_file.is_file() else err or f"job exited {code}"
                out[task.key] = make_failure(task, f"{msg} (job {job.job_id})")
            error_file.unlink(missing_ok=True)
        return out
