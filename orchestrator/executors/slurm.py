"""The SLURM executor: shards as a job array, a multi-GPU step as one multi-task job, via submitit.

Chosen with ``executor=slurm`` (conf/executor/slurm.yaml); job settings are keys of the
``ragline.executor`` block (``rag run R executor=slurm ragline.executor.partition=gpu``):
``partition``, ``account``, ``qos``, ``constraint``, ``time`` (minutes, or SLURM's ``D-HH:MM:SS``),
``cpus_per_task``, ``mem_gb``, ``array_parallelism``, ``sbatch`` (any other sbatch flag,
``{exclude: node3}`` -> ``#SBATCH --exclude=node3``), ``setup`` (shell lines run first in the
job, e.g. ``module load cuda``) and ``cluster`` (``slurm``; ``local`` runs the jobs as local
processes, for a machine without SLURM).

* GPUs are checked against the partition (``sinfo`` gres of its nodes), never on the submitting
  machine: a login node without GPUs submits GPU steps.
* The shards of a step are one job array, ``gpus_per_node: step.gpus`` per array task; SLURM sets
  ``CUDA_VISIBLE_DEVICES``. Light steps (one shard, no GPU) run in the runner's process.
* A step with ``gpus > 1`` and one shard is one job on as many nodes as it needs
  (``--nodes N --ntasks-per-node 1 --gpus-per-node G``); each node's task runs torchrun with G
  ranks (``orchestrator.executors.launch``); rank 0 commits the entry. A stage declared with
  ``multi_gpu="one_process"`` (tensor-parallel inference) gets one job, one process, all G GPUs.
* Ctrl-C cancels the step's jobs (``scancel``). A driver killed outright cannot cancel them, so
  every job watches a heartbeat file the driver touches every 2 s: a job whose driver is gone
  (heartbeat older than ``heartbeat_s``) kills its worker or does not start it.
* The job runs the same worker as the local executor, so locking, caching and single flight are
  unchanged; the cache directory must be on a filesystem every node shares.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.executors.base import Failed, TaskResult, read_result
from orchestrator.executors.gpus import check_node_gpus, runs_as_ranks, visible_gpus
from orchestrator.executors.launch import (FORWARD_ENV, HEARTBEAT_EVERY_S, forwarded_env,
                                          remove_task_files, step_env_names,
                                          write_task_files)
from orchestrator.task import one_line

log = logging.getLogger("ragline")


def time_minutes(value) -> int:
    """SLURM's time formats (or plain minutes) in minutes.

    >>> time_minutes(90), time_minutes("1-02:00:00"), time_minutes("45:00"), time_minutes("2:30:00")
    (90, 1560, 45, 150)
    """
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    text = str(value)
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if len(parts) == 3:
        h, m, s = parts
    elif len(parts) == 2:
        h, m, s = (parts[0], parts[1], 0) if days else (0, parts[0], parts[1])
    else:
        h, m, s = (parts[0], 0, 0) if days else (0, parts[0], 0)
    return int(days or 0) * 1440 + h * 60 + m + (1 if s else 0)


def gres_gpus(gres: str) -> int:
    """GPUs in one node's ``sinfo %G`` gres string.

    >>> gres_gpus("gpu:2"), gres_gpus("gpu:a100:4(S:0-1),shard:8"), gres_gpus("(null)")
    (2, 4, 0)
    """
    total = 0
    for item in re.split(r",(?![^()]*\))", gres):
        m = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if m:
            total += int(m.group(1))
    return total


def partition_gpus(partition: str | None) -> list[int]:
    """GPUs per node of ``partition`` (the default partition when None), from ``sinfo``."""
    argv = ["sinfo", "-h", "-N", "-o", "%N|%G|%P"]
    if partition:
        argv += ["-p", partition]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ConfigError(f"executor=slurm: cannot ask SLURM for its nodes (sinfo: {e})",
                          hint="run on a machine with the SLURM client commands") from None
    per_node: dict[str, int] = {}
    for line in out.splitlines():
        node, gres, part = line.split("|")
        if partition or part.endswith("*"):
            per_node[node] = max(per_node.get(node, 0), gres_gpus(gres))
    return list(per_node.values())


def gang_nodes(gpus: int, per_node: list[int]) -> tuple[int, int]:
    """(nodes, GPUs per node) for one multi-GPU job.

    >>> gang_nodes(2, [4, 4]), gang_nodes(16, [8, 8, 8])
    ((1, 2), (2, 8))
    """
    biggest = max(per_node, default=0)
    if gpus <= biggest:
        return 1, gpus
    n = -(-gpus // biggest) if biggest else 0
    if biggest and gpus % biggest == 0 and sum(1 for g in per_node if g >= biggest) >= n:
        return n, biggest
    raise ConfigError(f"{gpus} GPUs do not fill whole nodes of this partition "
                      f"(GPUs per node: {sorted(per_node, reverse=True)[:8]})")


def import_submitit():
    try:
        import submitit
    except ImportError:
        raise ConfigError("executor=slurm needs submitit, which is not installed",
                          hint="pip install -e '.[slurm]'") from None
    return submitit


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_EVERY_S):
        try:
            path.touch()
        except OSError:
            pass


def run_shard_job(task_file: str, log_path: str, env: dict, cwd: str, heartbeat: str,
                  stale_s: float, expected: list[str]) -> int:
    """Body of one array task on a compute node: the worker process, same as local."""
    from orchestrator.executors.launch import run_worker, worker_argv

    return run_worker(worker_argv(task_file), log_path, env, cwd, heartbeat, stale_s, expected)


def run_gang_job(task_file: str, log_path: str, env: dict, cwd: str, heartbeat: str,
                 stale_s: float, expected: list[str], nproc: int) -> int:
    """Body of one node's task of a multi-GPU job: torchrun with ``nproc`` ranks on this node."""
    import submitit

    from orchestrator.executors.launch import run_worker, torchrun_argv

    job = submitit.JobEnvironment()
    port = 20000 + int(str(job.job_id).split("_")[0]) % 20000
    argv = torchrun_argv(task_file, job.num_nodes, job.node, nproc, job.hostnames[0], port)
    return run_worker(argv, log_path, env, cwd, heartbeat, stale_s, expected)


class SlurmExecutor:
    name = "slurm"

    def __init__(self, store, cfg: dict, jobs: int = 0):
        import_submitit()  # fail before anything runs, with the extra to install
        self.store = store
        self.cfg = dict(cfg)
        self.cluster = cfg.get("cluster") or "slurm"
        if self.cluster not in ("slurm", "local", "debug"):
            raise ConfigError(f"ragline.executor.cluster: '{self.cluster}' is not slurm, local or debug",
                              hint="slurm submits with sbatch; local runs the jobs as local processes")
        if self.cluster == "slurm" and not (shutil.which("sbatch") and shutil.which("sinfo")):
            raise ConfigError("executor=slurm: no sbatch/sinfo on this machine",
                              hint="run from a SLURM login node, or set ragline.executor.cluster=local")
        self.array_parallelism = jobs or int(cfg.get("array_parallelism") or 64)
        self.stale_s = float(cfg.get("heartbeat_s") or 120)
        self.env_patterns = [*FORWARD_ENV, *(cfg.get("env") or [])]
        self.jobs: dict[str, str] = {}
        self._active: list = []

    # -- checks --------------------------------------------------------------------------------
    def gpus_per_node(self) -> list[int]:
        """GPUs per node where the jobs will run: the partition's, or this machine's for
        ``cluster: local``."""
        if self.cluster != "slurm":
            return [len(visible_gpus())]
        return partition_gpus(self.cfg.get("partition"))

    def check_resources(self, steps: list) -> None:
        """GPU steps against the partition's nodes (``sinfo`` gres), never this machine's devices:
        a login node without GPUs submits GPU steps."""
        part = self.cfg.get("partition")
        where = f"partition '{part}'" if part else "the default partition"

        def no_gpus(step, per_node: list[int]) -> ConfigError:
            return ConfigError(f"steps.{step.name}.gpus: {step.gpus} GPU(s) asked for, but {where} "
                               "has no node with GPUs (sinfo gres)",
                               hint="set ragline.executor.partition to a GPU partition")

        def too_many(step, per_node: list[int]) -> ConfigError:
            return ConfigError(f"steps.{step.name}.gpus: {step.gpus} GPUs per shard asked for, "
                               f"but the nodes of {where} have at most {max(per_node)}",
                               hint=f"lower it: steps.{step.name}.gpus={max(per_node)}")

        check_node_gpus(steps, self.gpus_per_node, gang_nodes, too_many, no_gpus)

    # -- submitting ----------------------------------------------------------------------------
    def submitter(self, step, folder: Path, nodes: int, gpus_per_node: int):
        """A submitit executor with this step's sbatch settings."""
        ex = import_submitit().AutoExecutor(folder=str(folder / "%j"), cluster=self.cluster)
        ex.update_parameters(**sbatch_parameters(self.cfg, step.name, nodes, gpus_per_node,
                                                 self.array_parallelism))
        return ex

    def run(self, step, tasks: list) -> dict[str, TaskResult]:
        folder = Path(tasks[0].log).parent / "slurm"  # submitit's job files, in the run record
        beat = folder / f"heartbeat.{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            beat.touch()
            files = write_task_files(tasks)
        except OSError as e:  # a read-only or full disk: the step fails, the run goes on
            return {t.key: Failed(one_line(e), t.log) for t in tasks}
        stop = threading.Event()
        threading.Thread(target=_heartbeat, args=(beat, stop), daemon=True).start()
        # the jobs get RAGLINE_*, HF_*, the env: list and what the step reads from the
        # environment sbatch exports; their arguments, pickled into job files kept in the run
        # record, hold the names only (no value is written down): the log names any missing
        expected = sorted({*forwarded_env(self.env_patterns),
                           *(n for n in step_env_names(step) if n in os.environ)})
        env = {} if step.gpus else {"CUDA_VISIBLE_DEVICES": ""}   # hide the login node's GPUs
        common = (env, os.getcwd(), str(beat), self.stale_s, expected)
        try:
            if runs_as_ranks(step):
                nodes, per = gang_nodes(step.gpus, self.gpus_per_node())
                t = tasks[0]
                ex = self.submitter(step, folder, nodes, per)
                self._active = [ex.submit(run_gang_job, str(files[t.key]), t.log, *common, per)]
            else:
                ex = self.submitter(step, folder, 1, step.gpus)
                with ex.batch():  # one job array
                    for t in tasks:
                        self._active.append(ex.submit(run_shard_job, str(files[t.key]), t.log, *common))
            for job, t in zip(self._active, tasks):
                self.jobs[t.key] = str(job.job_id)
            return {t.key: self._result(job, t, files[t.key]) for job, t in zip(self._active, tasks)}
        except KeyboardInterrupt:
            self.cancel()
            raise
        finally:
            stop.set()
            self._active = []
            beat.unlink(missing_ok=True)
            remove_task_files(files)

    def _result(self, job, task, task_file: Path) -> TaskResult:
        try:
            code = max(job.results())
        except Exception as e:  # noqa: BLE001 - a job killed, timed out, preempted or failed
            result = read_result(Path(f"{task_file}.result"), 1, task.log, f"SLURM job {job.job_id}")
            if isinstance(result, Failed) and "without a result" in result.message:
                line = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                return Failed(f"SLURM job {job.job_id} failed: {line}", task.log)
            return result
        return read_result(Path(f"{task_file}.result"), code, task.log, f"SLURM job {job.job_id}")

    def cancel(self) -> None:
        """Ctrl-C or SIGTERM: scancel this run's jobs."""
        for job in list(self._active):
            try:
                job.cancel(check=False)
            except Exception:  # noqa: BLE001 - already gone
                pass


def sbatch_parameters(cfg: dict, step: str, nodes: int, gpus_per_node: int,
                      array_parallelism: int) -> dict:
    """submitit parameters from the ``ragline.executor`` block.

    >>> p = sbatch_parameters({"partition": "gpu", "time": "2:00:00", "sbatch": {"exclude": "n3"}},
    ...                       "sft", 2, 8, 64)
    >>> p["slurm_partition"], p["timeout_min"], p["nodes"], p["gpus_per_node"], p["slurm_additional_parameters"]
    ('gpu', 120, 2, 8, {'exclude': 'n3'})
    """
    params = dict(name=f"ragline-{step}",
                  timeout_min=time_minutes(cfg.get("time") or cfg.get("timeout_min") or 1440),
                  cpus_per_task=int(cfg.get("cpus_per_task") or 1), nodes=nodes, tasks_per_node=1,
                  slurm_array_parallelism=array_parallelism)
    if gpus_per_node:
        params["gpus_per_node"] = gpus_per_node
    if cfg.get("mem_gb"):
        params["mem_gb"] = cfg["mem_gb"]
    for key in ("partition", "account", "qos", "constraint"):
        if cfg.get(key):
            params[f"slurm_{key}"] = cfg[key]
    if cfg.get("setup"):
        params["slurm_setup"] = list(cfg["setup"])
    extra = {**(cfg.get("extra") or {}), **(cfg.get("sbatch") or {})}
    if extra:
        params["slurm_additional_parameters"] = {str(k).replace("-", "_"): v for k, v in extra.items()}
    return params
